"""A whole benchmark run: for each level, warm-up requests, then the measured requests, then the statistics.

Defaults when neither ``requests`` nor ``duration_s`` is given (each an assumption, printed with the results):
a closed-loop level sends ``10 × C`` requests (the ``--num-prompts 10·C`` of the harness the catalog's
benchmark rows come from, which ``servewise predict --concurrency`` simulates); a Poisson level sends
``DEFAULT_OPEN_LOOP_REQUESTS``; a trace sends every row. Closed-loop lengths are drawn exactly as
``perf._arrivals.closed_loop`` draws them for the same seed, so a fixed-count level sends the lengths the
prediction simulated.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from servewise.perf._arrivals import LengthSampler, SimRequest, closed_loop

from ._client import RequestRecord, RequestShape
from ._load import (
    Level,
    LoadMode,
    Sender,
    closed_loop_shapes,
    poisson_schedule,
    run_closed_loop,
    run_open_loop,
)
from ._stats import LevelStats, summarize

__all__ = [
    "DEFAULT_OPEN_LOOP_REQUESTS",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_PROMPT_TOKENS",
    "REQUESTS_PER_CLIENT",
    "LevelResult",
    "LoadPlan",
    "run_plan",
]

REQUESTS_PER_CLIENT = 10
DEFAULT_OPEN_LOOP_REQUESTS = 100
DEFAULT_PROMPT_TOKENS, DEFAULT_OUTPUT_TOKENS = 1024, 128
"""Lengths when none are given: ``vllm bench serve``'s random-dataset defaults (``RandomDataset.DEFAULT_INPUT_LEN``
/ ``DEFAULT_OUTPUT_LEN`` in vllm/benchmarks/datasets.py)."""
_WARMUP_SEED_OFFSET = 1_000_003


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What to send: the levels, the request lengths (a sampler, or the trace's own), limits and warm-up."""

    levels: tuple[Level, ...]
    sampler: LengthSampler | None
    trace: tuple[SimRequest, ...] = ()
    requests: int | None = None
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0

    def planned_requests(self, level: Level) -> int | None:
        """How many measured requests ``level`` sends, or None when only a duration bounds it."""
        if level.mode is LoadMode.trace:
            return len(self.trace) if self.requests is None else min(self.requests, len(self.trace))
        if self.requests is not None:
            return self.requests
        if self.duration_s is not None:
            return None
        if level.mode is LoadMode.closed:
            return REQUESTS_PER_CLIENT * (level.concurrency or 1)
        return DEFAULT_OPEN_LOOP_REQUESTS


@dataclass(frozen=True, slots=True)
class LevelResult:
    level: Level
    records: tuple[RequestRecord, ...]
    stats: LevelStats


def _warmup_shapes(plan: LoadPlan) -> Iterator[RequestShape]:
    if plan.sampler is not None:
        return closed_loop_shapes(plan.sampler, seed=plan.seed + _WARMUP_SEED_OFFSET)
    return itertools.cycle([RequestShape(r.prompt_tokens, r.output_tokens) for r in plan.trace])


def _measured_shapes(plan: LoadPlan, level: Level, count: int | None) -> Iterator[RequestShape]:
    if plan.sampler is None:  # pragma: no cover - closed-loop levels always come with a sampler
        raise ValueError("a closed-loop level needs a length sampler")
    if count is None:
        return closed_loop_shapes(plan.sampler, seed=plan.seed)
    drawn = closed_loop(level.concurrency or 1, count, plan.sampler, seed=plan.seed).requests
    return iter([RequestShape(r.prompt_tokens, r.output_tokens) for r in drawn])


async def _run_level(
    plan: LoadPlan,
    level: Level,
    sender: Sender,
    indices: Iterator[int],
    on_done: Callable[[RequestRecord], None] | None,
) -> list[RequestRecord]:
    count = plan.planned_requests(level)
    if level.mode is LoadMode.closed:
        return await run_closed_loop(
            sender,
            level.concurrency or 1,
            _measured_shapes(plan, level, count),
            requests=count,
            duration_s=plan.duration_s,
            indices=indices,
            on_done=on_done,
        )
    if level.mode is LoadMode.poisson:
        if plan.sampler is None or level.rate_rps is None:  # pragma: no cover - built together by the CLI
            raise ValueError("a Poisson level needs a rate and a length sampler")
        schedule: Sequence[SimRequest] = poisson_schedule(
            level.rate_rps, plan.sampler, requests=count, duration_s=plan.duration_s, seed=plan.seed
        )
    else:
        schedule = plan.trace if count is None else sorted(plan.trace, key=lambda r: r.arrival_s)[:count]
    return await run_open_loop(sender, schedule, duration_s=plan.duration_s, indices=indices, on_done=on_done)


async def run_plan(
    plan: LoadPlan,
    sender: Sender,
    *,
    on_level: Callable[[Level, int, int | None], None] | None = None,
    on_done: Callable[[RequestRecord], None] | None = None,
) -> list[LevelResult]:
    """Run every level in order; ``on_level(level, warmup, measured_or_None)`` announces each, ``on_done`` sees
    every finished request (warm-up ones too)."""
    indices = itertools.count()
    results = []
    warmup_shapes = _warmup_shapes(plan)
    for level in plan.levels:
        if on_level is not None:
            on_level(level, plan.warmup, plan.planned_requests(level))
        if plan.warmup:
            clients = min(plan.warmup, level.concurrency or 1)
            await run_closed_loop(
                sender,
                clients,
                warmup_shapes,
                requests=plan.warmup,
                duration_s=None,
                indices=indices,
                on_done=on_done,
            )
        records = await _run_level(plan, level, sender, indices, on_done)
        results.append(LevelResult(level, tuple(records), summarize(records)))
    return results
