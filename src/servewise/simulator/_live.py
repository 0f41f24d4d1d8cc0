"""The engine core on the wall clock: an asyncio task that runs one step, waits for its simulated end, hands out
the step's tokens, and starts the next.

Clock: simulated time ``t`` maps to wall time ``wall0 + t / speed``. A request is stamped with the simulated time it
arrived and joins the first step that starts at or after it, so requests arriving together batch together. The
core's clock never slips: if the loop wakes late (a busy CPU), the next steps start at their simulated times and
the loop catches up; how late each token reached its stream is recorded (``lateness``). The wall clock is
``time.monotonic`` (uvloop's ``loop.time()`` counts whole milliseconds); a timer that fires early is re-armed, so
no token is handed out before its scheduled time.

Each request's tokens reach its stream ``overhead`` later than the step that produced them: the step model's
per-request frontend time, which ``perf.simulate`` adds to TTFT and E2E. Metrics record simulated seconds, the
latencies the modelled replica would report (equal to wall seconds at ``speed`` 1).

The per-token path is kept short because a step hands all its tokens out at one instant (1,000 at 1,000 streams):
one timer for all streams (a heap of token groups by due time), not one per token; each stream's sink
(``_sse.SSEWriter``) writes its token within that callback; the per-token histograms are filled once per step with
the step's equal values (``observe_many``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time

import numpy as np

from ._config import SimulatorConfig
from ._engine import EngineCore, Sequence, StepOutcome
from ._metrics import ReplicaMetrics
from ._sse import TokenSink

__all__ = ["LiveEngine", "QueueFullError", "RequestStream"]

_Batch = list[tuple["RequestStream", int, bool]]
"""Tokens due at one wall time: (stream, token index, last token?)."""


class QueueFullError(Exception):
    """More requests wait than ``max_waiting`` allows."""


class RequestStream:
    """One request's tokens, in order, each handed to its sink when the simulation produced it (tokens that come
    due before a sink is attached wait for it)."""

    def __init__(self, engine: LiveEngine, sequence: Sequence, overhead_s: float, finish_reason: str) -> None:
        self.engine = engine
        self.sequence = sequence
        self.overhead_s = overhead_s
        self.finish_reason = finish_reason
        """``vllm:request_success_total``'s ``finished_reason`` when the request completes."""
        self.emitted = 0
        self.first_token_s = math.nan
        self.last_token_s = math.nan
        self._sink: TokenSink | None = None
        self._held: list[tuple[int, bool, float]] = []
        self._closed = False

    def attach(self, sink: TokenSink) -> None:
        """Send the tokens to ``sink`` from now on (the ones already due first)."""
        held, self._held = self._held, []
        self._sink = sink
        for index, finished, due_s in held:
            sink.push(index, finished, due_s)

    def deliver(self, index: int, finished: bool, due_s: float) -> None:
        if self._closed:
            return
        if self._sink is None:
            self._held.append((index, finished, due_s))
        else:
            self._sink.push(index, finished, due_s)

    def close(self) -> None:
        """The response is over: drop later tokens; cancel the request in the engine if it has not finished.
        Not counted in ``vllm:request_success_total``: vLLM 0.32 records no finished-request stats for a request
        the client aborted (``OutputProcessor.abort_requests``); ``abort`` there counts engine-side aborts only."""
        if not self._closed:
            self._closed = True
            self._sink = None
            self.engine.core.cancel(self.sequence)

    async def collect(self) -> int:
        """Wait for all tokens (a non-streaming answer); returns how many there were."""
        sink = _Counter(self.engine.metrics)
        try:
            self.attach(sink)
            return await sink.done
        finally:
            self.close()


class _Counter:
    """The sink of a non-streaming request: counts tokens, records their lateness when they reach it."""

    def __init__(self, metrics: ReplicaMetrics) -> None:
        self.lateness = metrics.lateness
        self.count = 0
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def push(self, index: int, finished: bool, due_s: float) -> None:
        self.lateness.observe(max(0.0, time.monotonic() - due_s))
        self.count += 1
        if finished and not self.done.done():
            self.done.set_result(self.count)


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
        self._due: list[tuple[float, int, _Batch]] = []
        """Token groups not handed out yet: a heap by due time (then step order)."""
        self._groups = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._wall0 = time.monotonic()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="servewise-simulator-engine")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- clock ---------------------------------------------------------------------------------------------
    def sim_now_s(self) -> float:
        return (time.monotonic() - self._wall0) * self.config.speed

    def wall_at(self, sim_s: float) -> float:
        """``time.monotonic`` seconds at simulated time ``sim_s``."""
        return self._wall0 + sim_s / self.config.speed

    # -- requests ------------------------------------------------------------------------------------------
    def draw_output_tokens(self) -> int:
        return self.config.draw_output_tokens(self.rng)

    def submit(self, prompt_tokens: int, output_tokens: int, finish_reason: str = "length") -> RequestStream:
        """Queue a request arriving now; ``QueueFullError`` when ``max_waiting`` requests already wait."""
        limit = self.config.max_waiting
        if limit is not None and self.core.queued >= limit:
            self.metrics.admission_rejections["max_num_queued_reqs"].inc()
            raise QueueFullError(f"{self.core.queued} requests are waiting (limit {limit})")
        step = self.config.step
        sequence = Sequence(next(self._ids), prompt_tokens, output_tokens, self.sim_now_s())
        overhead = step.request_overhead_s + step.prompt_overhead_s_per_token * prompt_tokens
        stream = RequestStream(self, sequence, overhead, finish_reason)
        sequence.tag = stream
        self.core.submit(sequence)
        self.metrics.set_waiting(self.core.waiting)
        self._wake.set()
        return stream

    # -- the loop ------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            outcome = self.core.step()
            self._gauges()
            if outcome is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            end = self.wall_at(outcome.end_s)
            while (delay := end - time.monotonic()) > 0:  # a timer may fire early; never start a step early
                await asyncio.sleep(delay)
            self._deliver(outcome)

    def _gauges(self) -> None:
        m, core = self.metrics, self.core
        m.running.set(core.running)
        m.set_waiting(core.waiting)
        m.set_kv_usage(core.kv_usage)

    def _deliver(self, outcome: StepOutcome) -> None:
        """Record the step's metrics and queue its tokens, grouped by due time, for ``_pump``."""
        m = self.metrics
        if outcome.preempted:
            m.preemptions.inc(len(outcome.preempted))
        m.generation_tokens.inc(len(outcome.emissions))
        m.iteration_tokens.observe(
            outcome.prefill_tokens + len(outcome.emissions)
        )  # vLLM: computed + sampled
        end = outcome.end_s
        batches: dict[float, _Batch] = {}
        gaps: dict[float, int] = {}
        prompt_tokens = 0
        for emission in outcome.emissions:
            sequence = emission.sequence
            stream = sequence.tag
            if not isinstance(stream, RequestStream):
                continue
            if emission.first:
                m.ttft.observe(end - sequence.arrival_s + stream.overhead_s)
                stream.first_token_s = end
                prompt_tokens += sequence.prompt_tokens
            else:
                gap = end - stream.last_token_s
                gaps[gap] = gaps.get(gap, 0) + 1
            stream.last_token_s = end
            if emission.finished:
                m.finished(
                    reason=stream.finish_reason,
                    arrival_s=sequence.arrival_s,
                    scheduled_s=sequence.scheduled_s,
                    first_token_s=stream.first_token_s,
                    last_token_s=end,
                    overhead_s=stream.overhead_s,
                    prompt_tokens=sequence.prompt_tokens,
                    generated_tokens=sequence.generated,
                    preemptions=sequence.preemptions,
                )
            due = self.wall_at(end + stream.overhead_s)
            batch = batches.get(due)
            if batch is None:
                batch = batches[due] = []
            batch.append((stream, stream.emitted, emission.finished))
            stream.emitted += 1
        for gap, count in gaps.items():
            m.observe_itl(gap, count)
        if prompt_tokens:
            m.prompt_tokens.inc(prompt_tokens)
        for due, batch in batches.items():
            heapq.heappush(self._due, (due, next(self._groups), batch))
        self._pump()

    def _pump(self) -> None:
        """Hand out every group that is due, earliest first, then sleep until the next one. Strict due order keeps
        each stream's tokens in order even when the loop runs late (a stream's due times only grow), and one timer
        serves all streams."""
        if self._timer is not None:  # called from _deliver: the next wake-up is set again below
            self._timer.cancel()
            self._timer = None
        due = self._due
        while due and due[0][0] <= time.monotonic():
            due_s, _, batch = heapq.heappop(due)
            for stream, index, finished in batch:
                stream.deliver(index, finished, due_s)
        if due:  # a timer may fire early: _pump then hands out nothing and sleeps again
            at = due[0][0]
            self._timer = asyncio.get_running_loop().call_later(at - time.monotonic(), self._pump)
