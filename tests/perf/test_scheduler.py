"""The scheduler simulation: conservation, KV capacity, queue order, preemption, the closed-form jump, step records.

Most tests use the synthetic model and GPU of ``tests.factories`` (10B dense, 100 TFLOP/s, 1000 GB/s) with a small
KV cache and token budget, so every scheduler path (chunking, the KV ``break``, preemption) is reached by a few
requests whose behaviour can be reasoned out by hand.
"""

import math
from typing import Any

import numpy as np
import pytest

from servewise.perf import ANALYTICAL_PARAMS, build_step_model
from servewise.perf._arrivals import (
    ClosedLoop,
    OpenLoop,
    SimRequest,
    closed_loop,
    gamma_arrivals,
    poisson_arrivals,
    uniform_lengths,
)
from servewise.perf._scheduler import SimEngine, SimResult, StepRecord, _Req, _Simulation, simulate
from servewise.types import Precision
from tests.factories import accelerator, model, packaged_gpu, packaged_model

STEP = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
WINDOWED = build_step_model(
    model(sliding_window_tokens=500, sliding_layers=5), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS
)
"""Half the layers attend to 500 keys: the jump cases' prompts (200–600) cross it before, at and after prefill."""
AMPLE = SimEngine(max_num_seqs=64, max_num_batched_tokens=2048, kv_blocks=100_000)
PER_REQUEST = ("ttft_s", "tpot_s", "e2e_s", "queue_s")


def _run(
    workload: OpenLoop | ClosedLoop,
    engine: SimEngine = AMPLE,
    *,
    jump: bool = True,
    hit: float = 0.0,
    record: bool = False,
    step: Any = STEP,
) -> tuple[SimResult, _Simulation]:
    sim = _Simulation(step, engine, workload, hit, record, jump=jump)
    return sim.run(), sim


def _at_once(*pairs: tuple[int, int], priority: tuple[int, ...] | None = None) -> OpenLoop:
    priorities = priority or (0,) * len(pairs)
    return OpenLoop(
        tuple(SimRequest(p, o, 0.0, priority=q) for (p, o), q in zip(pairs, priorities, strict=True))
    )


def _assert_conserved(workload: OpenLoop | ClosedLoop, result: SimResult, sim: _Simulation) -> None:
    """Every request completes or was dropped for not fitting the cache; tokens add up; no block leaks."""
    tokens = sim.capacity * sim.block
    finite = np.isfinite(result.e2e_s)
    oversize = np.array([r.prompt_tokens + r.output_tokens > tokens for r in workload.requests])
    assert np.array_equal(finite, ~oversize)
    assert result.completed + result.dropped == len(workload.requests)
    assert result.dropped == int(oversize.sum())
    assert result.output_tokens == sum(
        r.output_tokens for r, done in zip(workload.requests, finite, strict=True) if done
    )
    assert np.all(np.isfinite(result.ttft_s[finite]))
    assert np.all(result.ttft_s[finite] <= result.e2e_s[finite])
    assert sim.used == 0, "KV blocks leaked"
    assert not sim.running and not sim.waiting and sim.n_dec == 0


# -- conservation and capacity -------------------------------------------------------------------------------


OVERLOADED = SimEngine(max_num_seqs=32, max_num_batched_tokens=512, kv_blocks=120)
"""1,920 KV tokens: a handful of 300→400 requests fill it, so decodes run out of blocks and preempt."""


def _workloads() -> dict[str, OpenLoop | ClosedLoop]:
    lengths = uniform_lengths(300, 400, 0.5)
    mixed = poisson_arrivals(40.0, 300, lengths, seed=3)
    oversize = (SimRequest(1500, 500, 0.2), SimRequest(1900, 21, 0.3), SimRequest(1900, 20, 0.35))
    with_oversize = OpenLoop(tuple(sorted(mixed.requests + oversize, key=lambda r: r.arrival_s)), warmup=10)
    return {
        "open": poisson_arrivals(20.0, 300, lengths, seed=1),
        "open-oversize": with_oversize,
        "closed": closed_loop(16, 200, lengths, seed=2),
        "closed-oversize": ClosedLoop(4, closed_loop(4, 60, lengths, seed=4).requests + oversize),
    }


@pytest.mark.parametrize("name", sorted(_workloads()))
@pytest.mark.parametrize("engine", [AMPLE, OVERLOADED], ids=["ample-kv", "tiny-kv"])
def test_no_request_is_lost_and_the_cache_never_overflows(name, engine):
    workload = _workloads()[name]
    result, sim = _run(workload, engine)
    _assert_conserved(workload, result, sim)
    assert 0 < result.peak_kv_blocks <= result.kv_blocks == engine.kv_blocks
    assert all(0.0 <= share <= 1.0 for _, share in result.kv_usage)
    if engine is OVERLOADED:
        assert result.preemptions > 0
        assert result.peak_kv_blocks > 0.9 * engine.kv_blocks


def test_only_requests_longer_than_the_whole_cache_are_dropped():
    engine = SimEngine(max_num_seqs=4, max_num_batched_tokens=256, kv_blocks=10)  # 160 tokens
    workload = _at_once((100, 60), (100, 61), (150, 10))
    result, sim = _run(workload, engine)
    _assert_conserved(workload, result, sim)
    assert result.dropped == 1 and math.isnan(result.e2e_s[1])
    assert result.weight[1] == 0.0


def test_peak_kv_blocks_by_hand():
    # One request alone: its cache ends holding prompt + output − 1 tokens (the last token is never fed back).
    for output, blocks in ((29, 8), (30, 9)):  # 100 + 28 = 128 tokens = 8 blocks; 129 tokens take a 9th
        result, sim = _run(_at_once((100, output)))
        assert result.peak_kv_blocks == blocks
        assert sim.used == 0


# -- queue order ---------------------------------------------------------------------------------------------


def test_fifo_when_one_sequence_runs_at_a_time():
    engine = SimEngine(max_num_seqs=1, max_num_batched_tokens=1024, kv_blocks=1000)
    workload = _at_once(*[(50 + 37 * i % 200, 5 + 11 * i % 30) for i in range(12)])
    result, _ = _run(workload, engine)
    assert np.all(np.diff(result.queue_s) > 0)
    assert np.all(np.diff(result.ttft_s) > 0)
    # One at a time: each starts at the step boundary where the previous one finished.
    overhead = STEP.request_overhead_s
    np.testing.assert_allclose(result.queue_s[1:], result.e2e_s[:-1] - overhead, rtol=1e-12)


def test_lower_priority_value_is_served_first_then_arrival_order():
    engine = SimEngine(max_num_seqs=1, max_num_batched_tokens=1024, kv_blocks=1000)
    priority = (2, 0, 1, 0, 2, 1)
    result, _ = _run(_at_once(*[(100, 10)] * 6, priority=priority), engine)
    served = list(np.argsort(result.queue_s, kind="stable"))
    assert served == sorted(range(6), key=lambda i: (priority[i], i)) == [1, 3, 2, 5, 0, 4]


def test_max_num_seqs_caps_concurrency():
    engine = SimEngine(max_num_seqs=4, max_num_batched_tokens=4096, kv_blocks=10_000)
    result, _ = _run(_at_once(*[(200, 50)] * 12), engine, record=True)
    overhead = STEP.request_overhead_s
    # Identical requests: waves of four, each starting at the step boundary where the wave before it finished.
    np.testing.assert_allclose(result.queue_s[:4], 0.0)
    np.testing.assert_allclose(result.queue_s[4:8], result.e2e_s[0] - overhead, rtol=1e-12)
    np.testing.assert_allclose(result.queue_s[8:], result.e2e_s[4] - overhead, rtol=1e-12)
    record = result.record
    assert record is not None
    assert max(record.sampled) == 4 and max(record.growth) == 4


# -- preemption ----------------------------------------------------------------------------------------------


class _Watched(_Simulation):
    """Checks vLLM's preemption rule as it happens: the newest running request goes to the queue's front."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.victims: list[int] = []

    def _preempt_last(self) -> _Req:
        newest = next(reversed(self.running.values()))
        victim = super()._preempt_last()
        assert victim is newest
        assert self.waiting[0][2] is victim
        self.victims.append(victim.index)
        return victim


def test_preemption_recomputes_the_newest_request():
    # 4 × (256 prompt + 300 output): 35 blocks each at the end; 80 blocks hold two and a bit.
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=2048, kv_blocks=80)
    workload = _at_once(*[(256, 300)] * 4)
    sim = _Watched(STEP, engine, workload, 0.0, False)
    tight = sim.run()
    ample, _ = _run(workload)
    _assert_conserved(workload, tight, sim)

    assert tight.preemptions == len(sim.victims) > 0
    assert 0 not in sim.victims and 3 in sim.victims  # the oldest request keeps running
    prompts = sum(r.prompt_tokens for r in workload.requests)
    assert ample.prefill_tokens == prompts
    # Each preempted decode recomputes its prompt and the tokens it had generated (at least one).
    assert prompts + tight.preemptions * 257 <= tight.prefill_tokens <= prompts + tight.preemptions * 555
    for index in set(sim.victims):
        assert sim.reqs[index].preemptions > 0
        assert tight.e2e_s[index] > ample.e2e_s[index]
        assert tight.tpot_s[index] > ample.tpot_s[index]
    # A resumed request's wait shows up as one long inter-token gap, not as a gap since its first token.
    assert tight.itl_s.max() < tight.e2e_s.max() - tight.ttft_s.min()
    assert tight.itl_s.max() > 10 * ample.itl_s.max()


def test_the_newest_request_gives_way_when_decodes_need_blocks():
    # 256-token prompts fill 16 blocks each: three fill the cache, the rest wait (admission breaks on KV).
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=4096, kv_blocks=48)
    workload = _at_once(*[(256, 40)] * 5)
    sim = _Watched(STEP, engine, workload, 0.0, False)
    result = sim.run()
    _assert_conserved(workload, result, sim)
    assert sim.victims[0] == 2  # step 1: three decodes each need a 17th block; the newest gives way
    assert np.all(np.diff(result.queue_s) >= 0)  # the waiting requests still start in order


class _StepWatched(_Watched):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preempting_records: list[int] = []

    def _preempt_last(self) -> _Req:
        assert self.record is not None
        self.preempting_records.append(len(self.record.count))  # the record the current step will append
        return super()._preempt_last()


def test_nothing_is_admitted_in_a_step_that_preempted():
    # Two 1008-token prompts (63 blocks) in 256-token chunks fill 130 blocks after ~32 decodes each; then the
    # newer one is preempted, freeing 64 blocks. Its first re-prefill chunk needs only 16 of them, but vLLM
    # schedules no waiting request in a step that preempted: that step carries the one remaining decode only.
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=256, kv_blocks=130)
    workload = _at_once((1008, 300), (1008, 300))
    sim = _StepWatched(STEP, engine, workload, 0.0, True)
    result = sim.run()
    _assert_conserved(workload, result, sim)
    record = result.record
    assert record is not None
    # The newer one thrashes: each re-prefill runs out of blocks (the older one keeps growing) until it finishes.
    assert set(sim.victims) == {1} and len(sim.victims) > 10
    assert all(record.tokens[i] == record.sampled[i] == 1 for i in sim.preempting_records)
    first = sim.preempting_records[0]
    assert record.tokens[first + 1] == 1 + 255  # the next step re-admits it with the rest of the budget


def test_a_request_the_cache_cannot_take_blocks_the_ones_behind_it():
    # vLLM ``break``s on the first waiting request that does not fit: a small request behind it waits too.
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=4096, kv_blocks=100)
    workload = OpenLoop((SimRequest(800, 300, 0.0), SimRequest(1000, 10, 0.1), SimRequest(16, 5, 0.2)))
    result, sim = _run(workload, engine)
    _assert_conserved(workload, result, sim)
    overhead = STEP.request_overhead_s
    a_done = result.e2e_s[0] - overhead
    assert 0.2 + result.queue_s[2] >= 0.1 + result.queue_s[1] >= a_done


# -- the closed-form jump ------------------------------------------------------------------------------------


def _jump_cases() -> dict[str, tuple[OpenLoop | ClosedLoop, SimEngine, float]]:
    lengths = uniform_lengths(400, 300, 0.5)
    return {
        "open-light": (poisson_arrivals(4.0, 150, lengths, seed=5), AMPLE, 0.0),
        "open-saturated": (poisson_arrivals(60.0, 300, lengths, seed=6), AMPLE, 0.0),
        "open-preempting": (poisson_arrivals(30.0, 200, lengths, seed=7), OVERLOADED, 0.0),
        "open-bursty-prefix": (gamma_arrivals(20.0, 200, lengths, cv=3.0, seed=8), AMPLE, 0.5),
        "closed": (closed_loop(24, 120, lengths, seed=9, first_wave_weight=0.1), AMPLE, 0.0),
        "closed-preempting": (closed_loop(12, 80, lengths, seed=10), OVERLOADED, 0.0),
    }


@pytest.mark.parametrize("step", [STEP, WINDOWED], ids=["global", "sliding-window"])
@pytest.mark.parametrize("name", sorted(_jump_cases()))
def test_jumping_decode_runs_matches_single_stepping(name, step):
    workload, engine, hit = _jump_cases()[name]
    jumped, _ = _run(workload, engine, hit=hit, step=step)
    stepped, _ = _run(workload, engine, hit=hit, jump=False, step=step)
    for field in PER_REQUEST:
        np.testing.assert_allclose(getattr(jumped, field), getattr(stepped, field), rtol=1e-9, err_msg=field)
    for field in ("steps", "preemptions", "dropped", "output_tokens", "prefill_tokens", "peak_kv_blocks"):
        assert getattr(jumped, field) == getattr(stepped, field), field
    assert jumped.duration_s == pytest.approx(stepped.duration_s, rel=1e-9)
    assert np.average(jumped.itl_s, weights=jumped.itl_weight) == pytest.approx(
        np.average(stepped.itl_s, weights=stepped.itl_weight), rel=1e-3
    )
    if "preempting" in name:
        assert jumped.preemptions > 0


@pytest.mark.parametrize("name", sorted(_jump_cases()))
def test_inter_token_gaps_add_up_to_each_requests_decode_time(name):
    # Every token after the first closes one gap (a resumed request's gap spans its time out of the batch), so
    # Σ gap × tokens that saw it = Σ over requests of (last token − first token). Jumped runs keep 8 samples of
    # their (piecewise linear) step durations, so they match to 1e-3.
    workload, engine, hit = _jump_cases()[name]
    for jump, rel in ((False, 1e-9), (True, 1e-3)):
        result, _ = _run(workload, engine, hit=hit, jump=jump)
        done = np.isfinite(result.e2e_s)
        decode_time = float(np.sum(result.e2e_s[done] - result.ttft_s[done]))
        assert float(result.itl_s @ result.itl_weight) == pytest.approx(decode_time, rel=rel)
        outputs = sum(r.output_tokens - 1 for r, d in zip(workload.requests, done, strict=True) if d)
        assert result.itl_weight.sum() == pytest.approx(outputs, rel=1e-9)


def _run_totals(record: StepRecord) -> tuple[float, float]:
    """Σ over every step of KV tokens read and attention pairs, runs expanded by their growth."""
    count, growth = np.array(record.count, dtype=float), np.array(record.growth)
    ramp = growth * count * (count - 1) / 2
    return float(count @ record.kv_read + ramp.sum()), float(count @ record.pairs + ramp.sum())


@pytest.mark.parametrize("name", sorted(_jump_cases()))
def test_jumped_runs_read_what_their_single_steps_read(name):
    # Within a run every sum grows linearly only if no sequence crosses its window mid-run; the totals of the
    # recorded runs must equal those of the single steps (calibration refits from these records).
    workload, engine, hit = _jump_cases()[name]
    jumped, _ = _run(workload, engine, hit=hit, record=True, step=WINDOWED)
    stepped, _ = _run(workload, engine, hit=hit, jump=False, record=True, step=WINDOWED)
    assert jumped.record is not None and stepped.record is not None
    assert _run_totals(jumped.record) == pytest.approx(_run_totals(stepped.record), rel=1e-12)
    assert len(jumped.record.count) < len(stepped.record.count)


def test_a_decoding_sequence_reads_its_window_capped_context_each_step():
    result, _ = _run(_at_once((300, 400)), jump=False, record=True, step=WINDOWED)
    assert result.record is not None
    # step 0 prefills the 300-token prompt from nothing; decode step i then holds 300 + i cached tokens, and past
    # 500 the windowed half of the layers stops growing
    assert result.record.kv_read[0] == 0.0
    assert result.record.pairs[0] == pytest.approx(0.5 * 300**2 / 2 + 0.5 * 300**2 / 2)
    expected = [300 + i - 0.5 * max(300 + i - 500, 0) for i in range(399)]
    assert result.record.kv_read[1:] == pytest.approx(expected)
    assert result.record.pairs[1:] == pytest.approx(expected)
    plain, _ = _run(_at_once((300, 400)), jump=False, record=True)
    assert plain.record is not None and plain.record.kv_read[1:] == pytest.approx(
        [300 + i for i in range(399)]
    )
    assert result.duration_s < plain.duration_s


def test_decode_runs_are_actually_jumped():
    workload = poisson_arrivals(1.0, 100, uniform_lengths(400, 300, 0.5), seed=5)
    jumped, _ = _run(workload, record=True)
    stepped, _ = _run(workload, jump=False, record=True)
    assert jumped.record is not None and stepped.record is not None
    assert max(stepped.record.count) == 1
    assert len(jumped.record.count) < len(stepped.record.count) / 10
    assert sum(jumped.record.count) == sum(stepped.record.count) == jumped.steps


# -- determinism ---------------------------------------------------------------------------------------------


def test_same_seed_same_result_and_a_new_seed_a_new_one():
    lengths = uniform_lengths(500, 200, 0.5)
    a = simulate(STEP, AMPLE, poisson_arrivals(30.0, 300, lengths, seed=11))
    b = simulate(STEP, AMPLE, poisson_arrivals(30.0, 300, lengths, seed=11))
    c = simulate(STEP, AMPLE, poisson_arrivals(30.0, 300, lengths, seed=12))
    for field in (*PER_REQUEST, "itl_s", "itl_weight", "weight"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.kv_usage == b.kv_usage and a.steps == b.steps
    assert not np.array_equal(a.ttft_s, c.ttft_s)
    assert a.steps != c.steps


# -- chunked prefill and step mix ----------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "budget", "hit", "chunks"), [(5000, 512, 0.0, 10), (4096, 512, 0.0, 8),
                                                                  (5000, 512, 0.5, 5), (300, 512, 0.0, 1)])  # fmt: skip
def test_a_long_prompt_takes_one_step_per_budget_sized_chunk(prompt, budget, hit, chunks):
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=budget, kv_blocks=10_000)
    first_token_only, _ = _run(_at_once((prompt, 1)), engine, hit=hit)
    assert first_token_only.steps == chunks == math.ceil((prompt - int(prompt * hit) // 16 * 16) / budget)
    two_tokens, _ = _run(_at_once((prompt, 2)), engine, hit=hit)
    assert two_tokens.steps == chunks + 1
    assert first_token_only.prefill_tokens == prompt - int(prompt * hit) // 16 * 16


def test_decodes_sharing_a_step_with_a_big_prefill_chunk_see_a_longer_gap():
    engine = SimEngine(max_num_seqs=8, max_num_batched_tokens=2048, kv_blocks=10_000)
    alone = OpenLoop((SimRequest(100, 400, 0.0),))
    shared = OpenLoop((SimRequest(100, 400, 0.0), SimRequest(8000, 1, 0.5)))
    quiet, _ = _run(alone, engine)
    busy, _ = _run(shared, engine)
    chunk_step = STEP.step_time_s(tokens=2048, sampled_seqs=1, attn_pairs=2047 * 1024, kv_read_tokens=300)
    assert busy.tpot_s[0] > quiet.tpot_s[0]
    assert quiet.itl_s.max() < chunk_step < busy.itl_s.max()
    # The long prompt's four chunked steps: the decode took 2047, 2047, 2047 and 1862 of its budget away.
    long_gaps = busy.itl_weight[busy.itl_s > 2 * quiet.itl_s.max()].sum()
    assert long_gaps == 4


def test_prefix_cache_hits_cut_time_to_first_token():
    workload = poisson_arrivals(10.0, 200, uniform_lengths(3000, 100, 0.8), seed=13)
    cold = simulate(STEP, AMPLE, workload)
    warm = simulate(STEP, AMPLE, workload, prefix_hit_ratio=0.75)
    assert warm.mean("ttft") < 0.6 * cold.mean("ttft")
    assert warm.prefill_tokens < 0.3 * cold.prefill_tokens
    assert warm.output_tokens == cold.output_tokens


def test_bursty_arrivals_wait_longer_than_poisson_at_the_same_rate():
    lengths = uniform_lengths(1000, 200, 0.8)
    rate = 1.5  # half of this engine's saturation rate (~3 req/s): Poisson barely queues, bursts do
    poisson = simulate(STEP, AMPLE, poisson_arrivals(rate, 2000, lengths, seed=14))
    bursty = simulate(STEP, AMPLE, gamma_arrivals(rate, 2000, lengths, cv=4.0, seed=14))
    assert bursty.percentile("ttft", 95) > 3 * poisson.percentile("ttft", 95)
    assert bursty.percentile("queue", 95) > poisson.percentile("queue", 95)


def test_warmup_requests_run_but_are_left_out_of_the_statistics():
    workload = poisson_arrivals(10.0, 100, uniform_lengths(200, 50), seed=15)
    warm = OpenLoop(workload.requests, warmup=20)
    result = simulate(STEP, AMPLE, warm)
    assert np.all(result.weight[:20] == 0) and np.all(result.weight[20:] == 1)
    assert result.completed == 100
    assert result.mean("ttft") == pytest.approx(float(np.mean(result.ttft_s[20:])))


# -- step records (what calibration reduces each benchmark row to) --------------------------------------------


def _record_duration(record: StepRecord, i: int) -> float:
    if record.count[i] == 1:
        return STEP.step_time_s(
            tokens=record.tokens[i],
            sampled_seqs=record.sampled[i],
            attn_pairs=record.pairs[i],
            kv_read_tokens=record.kv_read[i],
        )
    return STEP.decode_run_s(int(record.growth[i]), record.kv_read[i], record.count[i])


@pytest.mark.parametrize(
    ("workload", "engine"),
    [
        (closed_loop(32, 96, uniform_lengths(1024, 512, 0.8), seed=16, first_wave_weight=0.1), AMPLE),
        (closed_loop(8, 40, uniform_lengths(4000, 64, 0.8), seed=17), AMPLE),
        (closed_loop(12, 60, uniform_lengths(300, 400, 0.5), seed=18), OVERLOADED),
        (closed_loop(4, 12, uniform_lengths(200, 1, 1.0), seed=19), AMPLE),
    ],
    ids=["chat", "long-prompt", "preempting", "single-token"],
)
def test_step_records_reproduce_mean_ttft_and_tpot(workload, engine):
    result, _ = _run(workload, engine, record=True)
    record = result.record
    assert record is not None
    durations = np.array([_record_duration(record, i) for i in range(len(record.count))])
    assert durations.sum() == pytest.approx(result.duration_s, rel=1e-9)
    total = result.weight.sum()
    ttft = (durations @ np.array(record.ttft_weight)) / total + STEP.request_overhead_s
    assert ttft == pytest.approx(result.mean("ttft"), rel=1e-6)
    with_tpot = result.weight[np.isfinite(result.tpot_s)].sum()
    if with_tpot == 0:
        assert np.all(np.array(record.tpot_weight) == 0)
        return
    tpot = (durations @ np.array(record.tpot_weight)) / with_tpot
    assert tpot == pytest.approx(result.mean("tpot"), rel=1e-6)


def test_a_moe_model_from_the_catalog_simulates():
    step = build_step_model(
        packaged_model("Qwen3-30B-A3B"), packaged_gpu("H100-SXM"), 1, Precision.bf16, ANALYTICAL_PARAMS
    )
    workload = poisson_arrivals(20.0, 400, uniform_lengths(1000, 300, 0.8), seed=20)
    engine = SimEngine(max_num_seqs=256, max_num_batched_tokens=8192, kv_blocks=20_000)
    jumped = _Simulation(step, engine, workload, 0.0, False).run()
    stepped = _Simulation(step, engine, workload, 0.0, False, jump=False).run()
    assert jumped.completed == 400
    np.testing.assert_allclose(jumped.e2e_s, stepped.e2e_s, rtol=1e-9)


def test_engine_limits_are_checked():
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        SimEngine(max_num_seqs=256, max_num_batched_tokens=128, kv_blocks=10)
    with pytest.raises(ValueError, match=">= 1"):
        SimEngine(max_num_seqs=1, max_num_batched_tokens=128, kv_blocks=0)
