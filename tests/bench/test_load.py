"""Closed and open loop against the tiny server: concurrency held, limits respected, warm-up left out, and the
lengths the prediction simulates."""

from __future__ import annotations

import asyncio
import itertools
import time

from servewise.bench import (
    Level,
    LoadMode,
    LoadPlan,
    OpenAIStreamClient,
    RequestShape,
    poisson_schedule,
    run_closed_loop,
    run_open_loop,
    run_plan,
)
from servewise.perf._arrivals import SimRequest, closed_loop, uniform_lengths

from .tiny_server import MODEL, TinyServer


def _with_client(url: str, body):
    async def go():
        async with OpenAIStreamClient(url, model=MODEL) as client:
            return await body(client)

    return asyncio.run(go())


def test_closed_loop_keeps_exactly_c_requests_in_flight(tiny: TinyServer):
    shapes = itertools.repeat(RequestShape(16, 4))
    records = _with_client(
        tiny.url,
        lambda c: run_closed_loop(c, 4, shapes, requests=12, duration_s=None, indices=itertools.count()),
    )
    assert len(records) == 12 and all(r.ok for r in records)
    assert tiny.state.max_in_flight == 4
    prompts = [body["prompt"] for body in tiny.state.bodies]
    assert len(set(prompts)) == 12  # every request its own prompt: no prefix-cache hits


def test_a_duration_stops_new_requests_and_lets_running_ones_finish(tiny: TinyServer):
    shapes = itertools.repeat(RequestShape(16, 4))
    records = _with_client(
        tiny.url,
        lambda c: run_closed_loop(c, 2, shapes, requests=None, duration_s=0.2, indices=itertools.count()),
    )
    assert records and all(r.ok for r in records)
    # The deadline is set before the first send, so no request starts 0.2 s after the first one.
    first = min(r.start_s for r in records)
    assert all(r.start_s < first + 0.2 for r in records)
    assert max(r.end_s for r in records) > first + 0.2 - 0.05  # running requests were not cut short


def test_open_loop_sends_each_request_no_earlier_than_its_arrival(tiny: TinyServer):
    schedule = [SimRequest(16, 3, t) for t in (0.0, 0.05, 0.05, 0.12)]
    start = time.perf_counter()
    records = _with_client(
        tiny.url, lambda c: run_open_loop(c, schedule, duration_s=None, indices=itertools.count())
    )
    assert len(records) == 4
    starts = sorted(r.start_s - start for r in records)
    assert all(s >= item.arrival_s for s, item in zip(starts, schedule, strict=True))
    assert tiny.state.max_in_flight >= 2  # requests overlap: nobody waited for a completion


def test_open_loop_duration_cuts_the_schedule(tiny: TinyServer):
    schedule = [SimRequest(16, 2, t) for t in (0.0, 0.01, 0.5, 0.6)]
    records = _with_client(
        tiny.url, lambda c: run_open_loop(c, schedule, duration_s=0.1, indices=itertools.count())
    )
    assert len(records) == 2


def test_poisson_schedule_is_seeded_and_bounded():
    sampler = uniform_lengths(100, 10)
    a = poisson_schedule(5.0, sampler, requests=20, duration_s=None, seed=3)
    assert a == poisson_schedule(5.0, sampler, requests=20, duration_s=None, seed=3)
    assert len(a) == 20 and a[0].arrival_s == 0.0
    by_time = poisson_schedule(50.0, sampler, requests=None, duration_s=1.0, seed=3)
    assert by_time and all(r.arrival_s < 1.0 for r in by_time)
    assert 20 < len(by_time) < 100  # mean 50: far outside this range is a broken generator


def test_run_plan_leaves_warmup_out_and_sends_the_predicted_lengths(tiny: TinyServer):
    sampler = uniform_lengths(64, 6, 0.5)
    plan = LoadPlan(levels=(Level(LoadMode.closed, concurrency=2),), sampler=sampler, warmup=3, seed=5)
    announced = []
    results = _with_client(
        tiny.url, lambda c: run_plan(plan, c, on_level=lambda lv, w, n: announced.append((lv.label, w, n)))
    )
    assert announced == [("concurrency 2", 3, 20)]  # default: 10 requests per client
    assert len(tiny.state.bodies) == 23 and len(results[0].records) == 20
    sent = sorted((r.shape.prompt_tokens, r.shape.output_tokens) for r in results[0].records)
    simulated = sorted(
        (r.prompt_tokens, r.output_tokens) for r in closed_loop(2, 20, sampler, seed=5).requests
    )
    assert sent == simulated
    assert results[0].stats.completed == 20


def test_trace_level_replays_every_row(tiny: TinyServer):
    trace = (SimRequest(20, 2, 0.0), SimRequest(30, 3, 0.02), SimRequest(40, 4, 0.04))
    plan = LoadPlan(levels=(Level(LoadMode.trace),), sampler=None, trace=trace, warmup=1)
    results = _with_client(tiny.url, lambda c: run_plan(plan, c))
    shapes = sorted((r.shape.prompt_tokens, r.shape.output_tokens) for r in results[0].records)
    assert shapes == [(20, 2), (30, 3), (40, 4)]
