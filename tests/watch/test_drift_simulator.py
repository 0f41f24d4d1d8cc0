"""Drift against two simulated vLLM replicas of a real plan (the simulator replays the same perf model in real time):
Poisson load from ``servewise.bench``, a scraped window, and the prediction at that window's load must agree with
it — a deployment that behaves as modelled does not drift; the same window judged with a slower model does."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

from servewise.bench import OpenAIStreamClient, RequestRecord, run_open_loop
from servewise.bench._load import poisson_schedule
from servewise.perf import uniform_lengths
from servewise.perf._calibrate import load_fitted_table
from servewise.simulator import SimulatorConfig
from servewise.watch._drift import drift
from servewise.watch._observation import WatchTarget
from servewise.watch._scrape import scrape_observation

from .analysis_support import snapshot

RATE_PER_REPLICA = 1.5
WINDOW_S = 6.0
OUTPUT_TOKENS = 32
"""Short enough that requests sent in the window finish inside it whatever option the plan picks: a 1xL4 option
decodes at ~80 ms per token, so 128 tokens (the plan's workload) would take longer than the window; the drift
prediction uses the window's observed lengths."""


async def _poisson(url: str, model: str, seed: int) -> list[RequestRecord]:
    schedule = poisson_schedule(
        RATE_PER_REPLICA,
        uniform_lengths(512, OUTPUT_TOKENS, 1.0),
        requests=None,
        duration_s=WINDOW_S - 2.5,
        seed=seed,
    )
    async with OpenAIStreamClient(url, model=model) as client:
        return await run_open_loop(client, schedule, duration_s=None, indices=itertools.count())


def test_a_replica_that_behaves_as_modelled_does_not_drift(
    replicas: tuple[list[str], SimulatorConfig], watch_target: WatchTarget
) -> None:
    urls, config = replicas

    async def window() -> Any:
        observed, *_ = await asyncio.gather(
            scrape_observation(urls, window_s=WINDOW_S, interval_s=1.0),
            *(_poisson(url, config.served_model, seed) for seed, url in enumerate(urls)),
        )
        return observed

    o = asyncio.run(window())
    assert o.requests >= 6 and o.replicas_mean == 2.0
    d = drift(watch_target, o, catalog=snapshot())
    assert not d.drifted, (d.error_pct, d.predicted_s, d.observed_s)
    for key in ("ttft_p50", "itl_p50", "e2e_p50"):
        error = d.error_pct[key]
        assert error is not None and abs(error) < 25.0, (key, d.predicted_s, d.observed_s)
    assert o.requests < 40 and d.error_pct["ttft_p95"] is None  # too few requests to judge a p95
    # the same window against a model whose steps take twice as long: the E2E median drifts
    table = load_fitted_table()
    assert table is not None
    slow_levels = {
        key: dataclasses.replace(
            level, params={**level.params, "bandwidth_efficiency": level.params["bandwidth_efficiency"] / 3}
        )
        for key, level in table.levels.items()
    }
    slow = drift(
        watch_target, o, catalog=snapshot(), calibration=dataclasses.replace(table, levels=slow_levels)
    )
    assert slow.drifted and (slow.error_pct["itl_p50"] or 0.0) > 25.0, (slow.predicted_s, slow.observed_s)
