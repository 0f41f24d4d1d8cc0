"""The key proof that the live server has no timing model of its own: the live engine core, driven on a virtual
clock with the arrivals ``perf.simulate`` replays, gives every request the same TTFT, E2E and queueing time, and
the same preemptions and steps — with big and tiny KV caches (preemption by recompute), chunked prefill, a prefix
cache share, open and closed loops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from servewise.catalog import load_packaged
from servewise.perf import (
    ANALYTICAL_PARAMS,
    ClosedLoop,
    OpenLoop,
    SimEngine,
    SimRequest,
    SimResult,
    StepModel,
    build_step_model,
    closed_loop,
    poisson_arrivals,
    simulate,
    uniform_lengths,
)
from servewise.simulator import EngineCore, Sequence
from servewise.types import Precision


@pytest.fixture(scope="module", params=["global", "sliding-window"])
def step(request: pytest.FixtureRequest) -> StepModel:
    """Llama-3.1-8B on an L4; the second variant gives half its layers a 1,100-token window, which the cases'
    prompts (100–1,800 tokens) cross before, during and after their prefill."""
    data = load_packaged(benchmarks=False)
    model = next(m for m in data.models if m.name == "Llama-3.1-8B")
    gpu = next(g for g in data.accelerators if g.name == "L4")
    plain = build_step_model(model, gpu, 1, Precision.bf16, ANALYTICAL_PARAMS)
    if request.param == "global":
        return plain
    return dataclasses.replace(plain, window_tokens=1100.0, window_share=0.5)


def _open(
    step: StepModel, engine: SimEngine, workload: OpenLoop, hit: float
) -> tuple[EngineCore, list[Sequence]]:
    core = EngineCore(step, engine, prefix_hit_ratio=hit)
    sequences = []
    for i, request in enumerate(workload.requests):
        sequence = Sequence(
            i, request.prompt_tokens, request.output_tokens, request.arrival_s, request.priority
        )
        sequences.append(sequence)
        if core.fits(sequence.prompt_tokens, sequence.output_tokens):
            core.submit(sequence)
    while core.step() is not None:
        pass
    return core, sequences


def _closed(step: StepModel, engine: SimEngine, workload: ClosedLoop) -> tuple[EngineCore, list[Sequence]]:
    """Each client sends its next request the moment a completion is emitted, as a closed-loop benchmark does."""
    core = EngineCore(step, engine)
    sequences: list[Sequence] = []

    def send(now_s: float) -> None:
        while len(sequences) < len(workload.requests):
            request = workload.requests[len(sequences)]
            sequence = Sequence(len(sequences), request.prompt_tokens, request.output_tokens, now_s)
            sequences.append(sequence)
            if core.fits(request.prompt_tokens, request.output_tokens):
                core.submit(sequence)
                return

    for _ in range(min(workload.concurrency, len(workload.requests))):
        send(0.0)
    while (outcome := core.step()) is not None:
        for emission in outcome.emissions:
            if emission.finished:
                send(core.now_s)
    return core, sequences


def _assert_same(step: StepModel, result: SimResult, core: EngineCore, sequences: list[Sequence]) -> None:
    overhead = step.request_overhead_s + step.prompt_overhead_s_per_token * np.array(
        [s.prompt_tokens for s in sequences], dtype=float
    )
    arrival = np.array([s.arrival_s for s in sequences])
    ttft = np.array([s.first_s for s in sequences]) - arrival + overhead
    e2e = np.array([s.finish_s for s in sequences]) - arrival + overhead
    queue = np.array([s.scheduled_s for s in sequences]) - arrival
    np.testing.assert_allclose(ttft, result.ttft_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(e2e, result.e2e_s, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(queue, result.queue_s, rtol=1e-9, atol=1e-9)
    assert core.preemptions == result.preemptions
    assert core.steps == result.steps
    assert core.now_s == pytest.approx(result.duration_s, rel=1e-12)
    assert core.used_blocks == 0 and core.running == 0


OPEN_CASES = [
    # (engine, rate, requests, prompt, output, spread, seed, expect preemptions)
    (SimEngine(256, 8192, 4000), 20.0, 300, 1000, 300, 0.8, 1, True),
    (SimEngine(256, 8192, 20000), 8.0, 300, 1000, 300, 0.8, 5, False),
    (SimEngine(64, 512, 300), 30.0, 250, 600, 400, 0.5, 2, True),
    (SimEngine(32, 256, 120), 50.0, 200, 500, 200, 0.3, 3, True),
    (SimEngine(8, 64, 40), 5.0, 60, 200, 150, 0.2, 4, True),
]


@pytest.mark.parametrize("hit", [0.0, 0.5])
@pytest.mark.parametrize(("engine", "rate", "n", "isl", "osl", "ratio", "seed", "preempts"), OPEN_CASES)
def test_open_loop_matches_perf_simulate_request_by_request(
    step: StepModel,
    engine: SimEngine,
    rate: float,
    n: int,
    isl: int,
    osl: int,
    ratio: float,
    seed: int,
    preempts: bool,
    hit: float,
) -> None:
    workload = poisson_arrivals(rate, n, uniform_lengths(isl, osl, ratio), seed=seed)
    result = simulate(step, engine, workload, prefix_hit_ratio=hit)
    core, sequences = _open(step, engine, workload, hit)
    _assert_same(step, result, core, sequences)
    assert (result.preemptions > 0) == preempts  # the tiny caches do exercise preemption by recompute
    assert result.dropped == 0


@pytest.mark.parametrize(
    ("engine", "workload"),
    [
        (SimEngine(64, 8192, 4000), closed_loop(64, 300, uniform_lengths(1000, 300, 0.8), seed=1)),
        (SimEngine(32, 512, 150), closed_loop(48, 200, uniform_lengths(700, 300, 0.3), seed=4)),
    ],
)
def test_closed_loop_matches_perf_simulate(step: StepModel, engine: SimEngine, workload: ClosedLoop) -> None:
    result = simulate(step, engine, workload)
    core, sequences = _closed(step, engine, workload)
    _assert_same(step, result, core, sequences)


def test_priorities_and_bursts_match(step: StepModel) -> None:
    """Requests arriving at the same instant batch together; a lower priority value is served first."""
    requests = tuple(
        SimRequest(300 + 37 * i % 400, 50 + 13 * i % 90, arrival_s=0.5 * (i // 10), priority=i % 3)
        for i in range(60)
    )
    workload = OpenLoop(requests)
    engine = SimEngine(16, 1024, 200)
    result = simulate(step, engine, workload)
    core, sequences = _open(step, engine, workload, 0.0)
    _assert_same(step, result, core, sequences)


def test_cancel_frees_the_slot_and_blocks(step: StepModel) -> None:
    core = EngineCore(step, SimEngine(1, 512, 100))
    first, second = Sequence(0, 100, 50, 0.0), Sequence(1, 100, 50, 0.0)
    core.submit(first)
    core.submit(second)
    core.step()
    assert core.running == 1 and core.used_blocks > 0
    core.cancel(first)
    assert core.running == 0 and core.used_blocks == 0
    outcome = core.step()
    assert outcome is not None and [e.sequence for e in outcome.emissions] == [second]
