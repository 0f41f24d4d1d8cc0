import dataclasses
import itertools
import math

import pytest

from servewise.perf import (
    ANALYTICAL_PARAMS,
    RequestShape,
    build_step_model,
    default_engine_settings,
    max_qps_under_slo,
    saturation_qps,
    steady_state,
)
from servewise.perf._capacity import _mean_step_s, _request_work
from servewise.types import Precision
from tests.factories import accelerator, model, packaged_gpu, packaged_model

SHAPE = RequestShape(512, 256, (512,) * 4, (256,) * 4)  # type: ignore[arg-type]
KV = 2_000_000


def _setup(m=None, gpu=None, tp=1):
    gpu = gpu or accelerator()
    step = build_step_model(m or model(), gpu, tp, Precision.bf16, ANALYTICAL_PARAMS)
    return step, default_engine_settings(gpu)


def _per_request_by_hand(shape: RequestShape) -> dict[str, float]:
    """512-token prompt, 256 outputs: 255 decode steps at a mean context of 640 tokens plus one 512-token prefill."""
    decodes, ctx = shape.output_mean - 1, shape.prompt_mean + shape.output_mean / 2
    tokens = shape.prompt_mean + decodes
    return {
        "tokens": tokens,
        "sampled_seqs": 1 + decodes,
        "attn_pairs": decodes * ctx + shape.prompt_mean * shape.prompt_mean / 2,
        "kv_read_tokens": decodes * ctx,
    }


@pytest.mark.parametrize("qps", [0.5, 5.0, 20.0])
def test_closed_form_step_time_is_the_fixed_point_of_the_step_model(qps):
    step, _ = _setup(tp=2)
    t = _mean_step_s(step, _request_work(step, SHAPE), qps)
    n = qps * t  # requests' worth of work in one step
    work = {key: n * value for key, value in _per_request_by_hand(SHAPE).items()}
    assert step.step_time_s(**work) == pytest.approx(t, rel=1e-9)


def test_moe_fixed_point_converges():
    step, _ = _setup(packaged_model("Qwen3-30B-A3B"), packaged_gpu("H100-SXM"))
    t = _mean_step_s(step, _request_work(step, SHAPE), 10.0)
    n = 10.0 * t
    work = {key: n * value for key, value in _per_request_by_hand(SHAPE).items()}
    assert step.step_time_s(**work) == pytest.approx(t, rel=1e-4)


def test_a_moe_decode_step_reads_at_least_the_routed_experts_at_low_load():
    # Mixtral reads 12.9B active parameters per token, Mistral-7B 7.25B: an idle Mixtral cannot decode faster.
    gpu = packaged_gpu("H100-SXM")
    itl = {}
    for name in ("Mixtral-8x7B", "Mistral-7B-v0.3"):
        step, engine = _setup(packaged_model(name), gpu)
        itl[name] = steady_state(step, SHAPE, engine, 0.01, kv_capacity_tokens=KV).itl.p50_ms
        one_decode = step.step_time_s(tokens=1, sampled_seqs=1, attn_pairs=640, kv_read_tokens=640)
        assert itl[name] == pytest.approx(one_decode * 1000, rel=0.02)
    assert itl["Mixtral-8x7B"] > itl["Mistral-7B-v0.3"]


def test_a_long_prompt_is_prefilled_in_budget_sized_chunks_by_hand():
    gpu = accelerator(memory_gb=40.0)  # under 70 GiB: vLLM's 2048-token budget
    step, engine = _setup(gpu=gpu)
    assert engine.max_num_batched_tokens == 2048
    shape = RequestShape(4096, 2, (4096,) * 4, (2,) * 4)  # type: ignore[arg-type]
    point = steady_state(step, shape, engine, 1e-9, kv_capacity_tokens=KV)
    ctx = 4096 + 1  # the one decode in the step (at least the request itself), at the mean decode context
    first = step.step_time_s(
        tokens=1 + 2048, sampled_seqs=2, attn_pairs=ctx + 2048 * 1024, kv_read_tokens=ctx
    )
    second = step.step_time_s(
        tokens=1 + 2048, sampled_seqs=2, attn_pairs=ctx + 2048 * (2048 + 1024), kv_read_tokens=ctx + 2048
    )
    t_mean = _mean_step_s(step, _request_work(step, shape), 1e-9)
    expected_ms = (ANALYTICAL_PARAMS.request_overhead_s + 0.5 * t_mean + first + second) * 1000
    assert point.ttft.p50_ms == pytest.approx(expected_ms, rel=1e-9)  # two chunks, not three


def test_step_time_diverges_at_saturation():
    step, engine = _setup()
    limit = saturation_qps(step, SHAPE)
    assert math.isfinite(_mean_step_s(step, _request_work(step, SHAPE), 0.99 * limit))
    assert math.isinf(_mean_step_s(step, _request_work(step, SHAPE), 1.01 * limit))
    assert steady_state(step, SHAPE, engine, 1.01 * limit, kv_capacity_tokens=KV).overload == "throughput"


def test_latency_grows_with_load():
    step, engine = _setup()
    limit = saturation_qps(step, SHAPE)
    points = [
        steady_state(step, SHAPE, engine, f * limit, kv_capacity_tokens=KV) for f in (0.01, 0.3, 0.6, 0.9)
    ]
    for low, high in itertools.pairwise(points):
        assert high.ttft.p95_ms > low.ttft.p95_ms
        assert high.itl.p50_ms >= low.itl.p50_ms
        assert high.e2e.p95_ms > low.e2e.p95_ms
    for p in points:
        assert p.ttft.p50_ms <= p.ttft.p90_ms <= p.ttft.p95_ms <= p.ttft.p99_ms


def test_max_qps_meets_the_slo_and_a_little_more_does_not():
    step, engine = _setup()
    targets = {"ttft_p95_ms": 500.0, "itl_p95_ms": 60.0}
    qps, binding, point = max_qps_under_slo(step, SHAPE, engine, targets, kv_capacity_tokens=KV)
    assert qps > 0
    assert point.ttft.p95_ms <= 500 and point.itl.p95_ms <= 60
    over = steady_state(
        step, SHAPE, engine, qps * 1.01, kv_capacity_tokens=KV
    )  # bisection stops within 0.5 %
    assert over.ttft.p95_ms > 500 or over.itl.p95_ms > 60 or over.overload
    assert set(binding) <= {"ttft_p95_ms", "itl_p95_ms", "throughput", "kv_cache", "max_num_seqs"}


def test_kv_capacity_limits_the_rate():
    step, engine = _setup()
    roomy, _, _ = max_qps_under_slo(step, SHAPE, engine, {}, kv_capacity_tokens=KV)
    tight, binding, _ = max_qps_under_slo(step, SHAPE, engine, {}, kv_capacity_tokens=20_000)
    assert tight < roomy
    assert binding == ["kv_cache"]


def test_capacity_is_resolved_relative_to_the_answer_even_far_below_saturation():
    step, engine = _setup()
    targets = {"ttft_p95_ms": 60.0}
    qps, _, _ = max_qps_under_slo(step, SHAPE, engine, targets, kv_capacity_tokens=KV)
    assert qps < 0.2 * saturation_qps(step, SHAPE)
    above = steady_state(step, SHAPE, engine, qps * 1.006, kv_capacity_tokens=KV)
    assert above.ttft.p95_ms > 60.0


def test_an_slo_missed_at_zero_load_gives_zero_capacity_and_the_idle_point():
    step, engine = _setup()
    qps, binding, idle = max_qps_under_slo(step, SHAPE, engine, {"itl_p95_ms": 1.0}, kv_capacity_tokens=KV)
    assert qps == 0.0
    assert binding == ["itl_p95_ms"]
    assert idle.itl.p95_ms > 1.0


def test_prefix_cache_hits_shorten_ttft():
    step, engine = _setup()
    cached = RequestShape(512, 256, (512,) * 4, (256,) * 4, prefix_share=0.75)  # type: ignore[arg-type]
    cold = steady_state(step, SHAPE, engine, 1.0, kv_capacity_tokens=KV)
    warm = steady_state(step, cached, engine, 1.0, kv_capacity_tokens=KV)
    assert warm.ttft.p95_ms < cold.ttft.p95_ms


def test_the_planners_estimate_carries_the_models_correction_and_its_provenance():
    # `plan` sizes replicas with estimate_replica: a model whose steps run 1.5x slower (its correction) gets a
    # lower capacity, and the estimate's basis says which correction shaped it
    import dataclasses

    from servewise.perf import estimate_replica, memory_plan
    from servewise.perf._params import ModelFactors

    m, gpu = model(), accelerator()
    engine = default_engine_settings(gpu)
    memory = memory_plan(m, gpu, 1, Precision.bf16, engine, mean_seq_tokens=768, max_model_len=2048)
    slow = ModelFactors(m.name, 1.5, 1.0, 50, "50 measured vllm rows of the model")
    corrected = dataclasses.replace(ANALYTICAL_PARAMS, model_corrections=(slow,))
    targets = {"itl_p95_ms": 1e3 * 0.1}
    plain, _, _ = estimate_replica(
        m,
        gpu,
        1,
        Precision.bf16,
        shape=SHAPE,
        targets=targets,
        engine=engine,
        memory=memory,
        params=ANALYTICAL_PARAMS,
    )
    fixed, _, step = estimate_replica(
        m,
        gpu,
        1,
        Precision.bf16,
        shape=SHAPE,
        targets=targets,
        engine=engine,
        memory=memory,
        params=corrected,
    )
    assert plain is not None and fixed is not None
    assert fixed.max_qps_per_replica < plain.max_qps_per_replica
    assert step.step_time_factor == 1.5
    assert "per-model correction x1.5 step time" in fixed.basis and "50 measured vllm rows" in fixed.basis
    assert "per-model correction" not in plain.basis


# -- fitted step shapes: overlap penalty, prefill overhead and prefill factor -----------------------------------


def _fitted_like():
    """The analytical step with the terms a fit adds: γ, a per-step prefill overhead and a prefill factor."""
    step, engine = _setup(tp=2)
    return dataclasses.replace(
        step, overlap_penalty=0.4, prefill_overhead_s=0.004, prefill_factor=1.3
    ), engine


@pytest.mark.parametrize("load", [0.05, 0.5, 0.95])
def test_the_mean_step_mixes_steps_with_and_without_prompt_work(load):
    # A step holds n = qps·t̄ requests' work; a share q = min(1, n) of steps carries prompt tokens (one chunk per
    # request here) and costs what the step model says of a prompt-carrying step (prefill overhead and factor);
    # the rest cost the same work without them. γ applies to both.
    step, _ = _fitted_like()
    qps = load * saturation_qps(step, SHAPE)
    t = _mean_step_s(step, _request_work(step, SHAPE), qps)
    n = qps * t
    share = min(1.0, n)
    work = {key: n * value for key, value in _per_request_by_hand(SHAPE).items()}
    without = dataclasses.replace(step, prefill_overhead_s=0.0, prefill_factor=1.0).step_time_s(**work)
    mixed = (1.0 - share) * without + share * step.step_time_s(**work)
    assert mixed == pytest.approx(t, rel=1e-8)
    plain = dataclasses.replace(step, overlap_penalty=0.0, prefill_overhead_s=0.0, prefill_factor=1.0)
    assert t > _mean_step_s(plain, _request_work(step, SHAPE), qps)  # each fitted term lengthens the step


def test_a_fitted_step_saturates_where_its_throughput_limit_says():
    step, engine = _fitted_like()
    limit = saturation_qps(step, SHAPE)
    plain = dataclasses.replace(step, overlap_penalty=0.0, prefill_overhead_s=0.0, prefill_factor=1.0)
    assert limit < saturation_qps(plain, SHAPE)  # γ and the prefill factor cost throughput
    work = _request_work(step, SHAPE)
    assert math.isfinite(_mean_step_s(step, work, 0.95 * limit))
    assert math.isinf(_mean_step_s(step, work, 1.01 * limit))
    assert steady_state(step, SHAPE, engine, 1.01 * limit, kv_capacity_tokens=KV).overload == "throughput"
