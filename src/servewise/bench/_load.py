"""Load generation: closed loop (C clients) and open loop (Poisson arrivals or a replayed trace), on asyncio.

Why the request streams come from ``perf._arrivals``: ``servewise predict`` simulates exactly these streams
(``uniform_lengths``, ``sampled_lengths``, ``poisson_arrivals``, ``load_trace``), so with the same seed a benchmark
sends the request lengths the prediction assumed.

* Closed loop: ``C`` clients; each sends its next request the moment its previous one finishes (failed or not).
  All ``C`` start together, as ``vllm bench serve --max-concurrency C`` and the benchmarks in the catalog do.
* Open loop: each request is sent at its arrival time, whatever is still in flight; a late event loop sends late
  and the latency is counted from the actual send.

A level stops issuing requests after ``requests`` requests or ``duration_s`` seconds, whichever comes first;
requests in flight then finish and count. Warm-up requests run before a level and are not returned.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from servewise.perf._arrivals import LengthSampler, SimRequest, poisson_arrivals

from ._client import RequestRecord, RequestShape

__all__ = [
    "Level",
    "LoadMode",
    "Sender",
    "closed_loop_shapes",
    "poisson_schedule",
    "run_closed_loop",
    "run_open_loop",
]

_BATCH = 256


class LoadMode(StrEnum):
    closed = "closed-loop"
    poisson = "poisson"
    trace = "trace"


@dataclass(frozen=True, slots=True)
class Level:
    """One load level of a run: a concurrency, a Poisson rate, or the trace."""

    mode: LoadMode
    concurrency: int | None = None
    rate_rps: float | None = None

    @property
    def label(self) -> str:
        if self.mode is LoadMode.closed:
            return f"concurrency {self.concurrency}"
        if self.mode is LoadMode.poisson:
            return f"{self.rate_rps:g} req/s Poisson"
        return "trace"


class Sender(Protocol):
    """Sends one request and times it (``OpenAIStreamClient``); ``index`` makes each prompt distinct."""

    async def send(self, shape: RequestShape, index: int = 0) -> RequestRecord: ...


def closed_loop_shapes(sampler: LengthSampler, *, seed: int) -> Iterator[RequestShape]:
    """An endless stream of request lengths from ``sampler`` (drawn in batches, reproducible by ``seed``)."""
    rng = np.random.default_rng(seed)
    while True:
        prompts, outputs = sampler(rng, _BATCH)
        for p, o in zip(prompts, outputs, strict=True):
            yield RequestShape(max(1, int(p)), max(1, int(o)))


def poisson_schedule(
    rate_rps: float, sampler: LengthSampler, *, requests: int | None, duration_s: float | None, seed: int
) -> list[SimRequest]:
    """Poisson arrivals at ``rate_rps`` (the first at 0 s), ``requests`` of them or as many as arrive within
    ``duration_s``."""
    if requests is None:
        if duration_s is None:
            raise ValueError("a Poisson schedule needs requests or duration_s")
        # Enough arrivals that the chance of running out before duration_s is negligible (mean + 6 sd + 10).
        expected = rate_rps * duration_s
        n = int(expected + 6 * math.sqrt(expected) + 10)
    else:
        n = requests
    arrivals = poisson_arrivals(rate_rps, n, sampler, seed=seed).requests
    if duration_s is not None:
        arrivals = tuple(r for r in arrivals if r.arrival_s < duration_s)
    return list(arrivals)


async def run_closed_loop(
    sender: Sender,
    concurrency: int,
    shapes: Iterator[RequestShape],
    *,
    requests: int | None,
    duration_s: float | None,
    indices: Iterator[int],
    on_done: Callable[[RequestRecord], None] | None = None,
) -> list[RequestRecord]:
    """``concurrency`` clients sending back to back until ``requests`` were sent or ``duration_s`` passed."""
    if requests is None and duration_s is None:
        raise ValueError("a closed-loop level needs requests or duration_s")
    records: list[RequestRecord] = []
    budget = itertools.count() if requests is None else iter(range(requests))
    deadline = None if duration_s is None else time.perf_counter() + duration_s

    async def client() -> None:
        for _ in budget:
            if deadline is not None and time.perf_counter() >= deadline:
                return
            record = await sender.send(next(shapes), next(indices))
            records.append(record)
            if on_done is not None:
                on_done(record)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return records


async def run_open_loop(
    sender: Sender,
    schedule: Sequence[SimRequest],
    *,
    duration_s: float | None,
    indices: Iterator[int],
    on_done: Callable[[RequestRecord], None] | None = None,
) -> list[RequestRecord]:
    """Send each request of ``schedule`` at its ``arrival_s`` (seconds after the start), none after
    ``duration_s``; wait for all to finish."""
    records: list[RequestRecord] = []
    start = time.perf_counter()

    async def one(shape: RequestShape, index: int) -> None:
        record = await sender.send(shape, index)
        records.append(record)
        if on_done is not None:
            on_done(record)

    tasks: list[asyncio.Task[None]] = []
    for item in sorted(schedule, key=lambda r: r.arrival_s):
        if duration_s is not None and item.arrival_s >= duration_s:
            break
        delay = start + item.arrival_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shape = RequestShape(item.prompt_tokens, item.output_tokens)
        tasks.append(asyncio.create_task(one(shape, next(indices))))
    await asyncio.gather(*tasks)
    return records
