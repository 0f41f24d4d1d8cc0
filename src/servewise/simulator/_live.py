"""The engine core on the wall clock: an asyncio task that runs one step, waits for its simulated end, hands out
the step's tokens, and starts the next.

Clock: simulated time ``t`` maps to wall time ``wall0 + t / speed``. A request is stamped with the simulated time it
arrived and joins the first step that starts at or after it, so requests arriving together batch together. The
core's clock never slips: if the loop wakes late (a busy CPU), the next steps start at their simulated times and
the loop catches up; how late each token reached its stream is recorded (``lateness``).

Each request's tokens reach its stream ``overhead`` later than the step that produced them: the step model's
per-request frontend time, which ``perf.simulate`` adds to TTFT and E2E. Metrics record simulated seconds, the
latencies the modelled replica would report (equal to wall seconds at ``speed`` 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from ._config import SimulatorConfig
from ._engine import EngineCore, Sequence, StepOutcome
from ._metrics import ReplicaMetrics

__all__ = ["LiveEngine", "QueueFullError", "RequestStream", "TokenEvent"]


class QueueFullError(Exception):
    """More requests wait than ``max_waiting`` allows."""


@dataclass(frozen=True, slots=True)
class TokenEvent:
    index: int
    """0 for the first output token."""
    finished: bool
    due_wall_s: float


class RequestStream:
    """One request's tokens, in order, each when the simulation produced it."""

    def __init__(self, engine: LiveEngine, sequence: Sequence, overhead_s: float) -> None:
        self.engine = engine
        self.sequence = sequence
        self.overhead_s = overhead_s
        self.queue: asyncio.Queue[TokenEvent] = asyncio.Queue()
        self.emitted = 0
        self.last_token_s = math.nan

    async def events(self) -> AsyncIterator[TokenEvent]:
        """Each token as it becomes due; cancels the request in the engine if the consumer stops early."""
        async for batch in self.batches():
            for event in batch:
                yield event

    async def batches(self) -> AsyncIterator[list[TokenEvent]]:
        """The tokens due so far, together: a consumer that fell behind catches up in one write, not many."""
        loop = asyncio.get_running_loop()
        lateness = self.engine.metrics.lateness
        finished = False
        try:
            while not finished:
                batch = [await self.queue.get()]
                while not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                now = loop.time()
                for event in batch:
                    lateness.observe(max(0.0, now - event.due_wall_s))
                finished = batch[-1].finished
                yield batch
        finally:
            if not finished:
                self.engine.core.cancel(self.sequence)


class LiveEngine:
    """Runs the core against the wall clock; create and use it inside one running event loop."""

    def __init__(self, config: SimulatorConfig, metrics: ReplicaMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.core = EngineCore(config.step, config.engine, prefix_hit_ratio=config.prefix_hit_ratio)
        self.rng = np.random.default_rng(config.seed)
        self._ids = itertools.count()
        self._wake = asyncio.Event()
        self._wall0 = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wall0 = loop.time()
        self._task = loop.create_task(self._run(), name="servewise-simulator-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- clock ---------------------------------------------------------------------------------------------
    def sim_now_s(self) -> float:
        return (asyncio.get_running_loop().time() - self._wall0) * self.config.speed

    def wall_at(self, sim_s: float) -> float:
        return self._wall0 + sim_s / self.config.speed

    # -- requests ------------------------------------------------------------------------------------------
    def draw_output_tokens(self) -> int:
        return self.config.draw_output_tokens(self.rng)

    def submit(self, prompt_tokens: int, output_tokens: int) -> RequestStream:
        """Queue a request arriving now; ``QueueFullError`` when ``max_waiting`` requests already wait."""
        limit = self.config.max_waiting
        if limit is not None and self.core.waiting >= limit:
            raise QueueFullError(f"{self.core.waiting} requests are waiting (limit {limit})")
        step = self.config.step
        sequence = Sequence(next(self._ids), prompt_tokens, output_tokens, self.sim_now_s())
        overhead = step.request_overhead_s + step.prompt_overhead_s_per_token * prompt_tokens
        stream = RequestStream(self, sequence, overhead)
        sequence.tag = stream
        self.core.submit(sequence)
        self.metrics.waiting.set(self.core.waiting)
        self._wake.set()
        return stream

    # -- the loop ------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            outcome = self.core.step()
            self._gauges()
            if outcome is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self.wall_at(outcome.end_s) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._deliver(outcome, loop)

    def _gauges(self) -> None:
        m, core = self.metrics, self.core
        m.running.set(core.running)
        m.waiting.set(core.waiting)
        m.kv_usage.set(core.kv_usage)
        m.gpu_cache_usage.set(core.kv_usage)

    def _deliver(self, outcome: StepOutcome, loop: asyncio.AbstractEventLoop) -> None:
        m = self.metrics
        if outcome.preempted:
            m.preemptions.inc(len(outcome.preempted))
        m.generation_tokens.inc(len(outcome.emissions))
        batches: dict[float, list[tuple[RequestStream, TokenEvent]]] = {}
        end = outcome.end_s
        for emission in outcome.emissions:
            sequence = emission.sequence
            stream = sequence.tag
            if not isinstance(stream, RequestStream):
                continue
            if emission.first:
                ttft = end - sequence.arrival_s + stream.overhead_s
                m.ttft.observe(ttft)
                m.queue.observe(sequence.scheduled_s - sequence.arrival_s)
                m.prompt_tokens.inc(sequence.prompt_tokens)
            else:
                gap = end - stream.last_token_s
                m.itl.observe(gap)
                m.tpot.observe(gap)
            stream.last_token_s = end
            if emission.finished:
                m.e2e.observe(end - sequence.arrival_s + stream.overhead_s)
                m.request_success.inc()
            due = self.wall_at(end + stream.overhead_s)
            event = TokenEvent(stream.emitted, emission.finished, due)
            stream.emitted += 1
            batches.setdefault(due, []).append((stream, event))
        now = loop.time()
        for due, batch in batches.items():
            if due <= now:
                _put(batch)
            else:
                loop.call_at(due, _put, batch)


def _put(batch: list[tuple[RequestStream, TokenEvent]]) -> None:
    for stream, event in batch:
        stream.queue.put_nowait(event)
