"""Discrete-event simulation of one continuous-batching engine replica (vLLM V1's scheduler).

Why a simulation: under load, time to first token is mostly waiting — for a slot, for KV blocks, for the prefill
chunks ahead — and closed formulas miss it by multiples. This replays the scheduler's decisions step by step:

* every step has a token budget (``max_num_batched_tokens``) and at most ``max_num_seqs`` running sequences;
* running requests go first: each decoding sequence takes one token (the budget always covers them, since vLLM
  requires max_num_batched_tokens ≥ max_num_seqs), then partially prefilled ones take chunks of what is left;
* waiting requests are admitted in order (priority, then arrival) while budget, sequence slots and KV blocks last;
  a request the KV cache cannot hold stops admission (vLLM ``break``s) and none are admitted in a step that
  preempted;
* the KV cache is paged in ``block_size``-token blocks; a sequence takes a new block when it writes the first token
  of one; when a running sequence needs a block and none is free, the *last* running request is preempted by
  recompute: its blocks are freed, it goes back to the front of the queue, and it later re-prefills its prompt and
  the tokens generated so far (vLLM V1 ``_preempt_request``);
* a request whose prompt + output exceed the whole cache is dropped and counted, never admitted: vLLM's API rejects
  it, since ``max_model_len`` cannot exceed the cache (admitting it would preempt itself forever);
* a share of each prompt (``prefix_hit_ratio``, whole blocks) is served from the prefix cache and not recomputed;
* a step's duration is the roofline step model of the tokens it carries (``StepModel.step_time_s``), so a step with
  a big prefill chunk is slower for every decoding sequence in it.

Speed: decoding sequences are kept as aggregates (count, Σ context, per-block-phase counts, a heap of finish
steps), so a step costs O(1) plus the requests that start or end in it; runs of decode-only steps between events
are advanced in one jump with the closed-form sum of their durations (``StepModel.decode_run_s``). For a model
with sliding-window layers the aggregates also count the sequences past the window (and Σ of their contexts), from
a heap of the steps where each crosses it; a crossing ends a run, so within one every sum still grows linearly.

Outputs per request: time to first token (plus the frontend's per-request overhead), time per output token, end to
end and queueing time; per token: inter-token gaps (weighted step durations); over time: KV blocks in use. With
``record_steps`` it also returns each step's token mix and how many requests were waiting on it, from which
``calibrate`` recomputes mean TTFT and TPOT for any efficiency parameters without re-simulating (closed-loop
schedules do not depend on step durations: a client's next request joins at the next step boundary).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from ._arrivals import ClosedLoop, OpenLoop, SimRequest
from ._roofline import StepModel
from ._simresult import SimEngine, SimResult, StepRecord, kv_usage_series

__all__ = ["SimEngine", "SimResult", "StepRecord", "simulate"]


class _Req:
    __slots__ = (
        "above",
        "arrival",
        "base",
        "blocks",
        "computed",
        "epoch",
        "finish_s",
        "first_s",
        "generated",
        "index",
        "last_token_s",
        "output",
        "preemptions",
        "prompt",
        "scheduled_s",
        "target",
        "tpot_share",
        "weight",
    )

    def __init__(self, index: int, request: SimRequest, arrival: float, weight: float) -> None:
        self.index = index
        self.prompt = request.prompt_tokens
        self.output = request.output_tokens
        self.arrival = arrival
        self.weight = weight
        self.tpot_share = weight / (self.output - 1) if self.output > 1 else 0.0
        self.computed = 0
        self.target = self.prompt
        self.generated = 0
        self.blocks = 0
        self.base = 0
        self.above = False
        self.epoch = 0
        self.preemptions = 0
        self.first_s = math.nan
        self.finish_s = math.nan
        self.scheduled_s = math.nan
        self.last_token_s = math.nan


def simulate(
    step: StepModel,
    engine: SimEngine,
    workload: OpenLoop | ClosedLoop,
    *,
    prefix_hit_ratio: float = 0.0,
    record_steps: bool = False,
) -> SimResult:
    """Run every request of ``workload`` to completion on one replica; deterministic for a given input."""
    return _Simulation(step, engine, workload, prefix_hit_ratio, record_steps).run()


class _Simulation:
    def __init__(
        self,
        step: StepModel,
        engine: SimEngine,
        workload: OpenLoop | ClosedLoop,
        prefix_hit_ratio: float,
        record_steps: bool,
        *,
        jump: bool = True,
    ) -> None:
        self.model = step
        self.jump = jump  # False: single-step decode-only runs (the reference the jump is tested against)
        self.engine = engine
        self.block = engine.block_size
        self.capacity = engine.kv_blocks
        self.hit_ratio = min(max(prefix_hit_ratio, 0.0), 1.0)
        self.closed = isinstance(workload, ClosedLoop)
        self.requests = workload.requests
        warmup = workload.warmup if isinstance(workload, OpenLoop) else 0
        self.reqs = [
            _Req(i, r, r.arrival_s, 0.0 if i < warmup else r.weight) for i, r in enumerate(self.requests)
        ]
        self.next_arrival = 0  # open loop: index of the next request to arrive; closed loop: next to send
        self.waiting: list[tuple[int, int, _Req]] = []
        self.order = 0
        self.front = 0
        self.running: dict[int, _Req] = {}
        self.prefilling: list[_Req] = []
        self.n_dec = 0
        self.sum_base = 0
        self.phase = [0] * self.block
        self.finishes: list[tuple[int, int, int, _Req]] = []
        self._decoding: set[int] = set()
        self.window = int(step.window_tokens) if step.window_share else 0
        self.window_share = step.window_share if self.window else 0.0
        self.crossings: list[tuple[int, int, int, _Req]] = []
        """(first step past the window, index, epoch, request) of decoding sequences still inside it."""
        self.n_above = 0
        self.sum_base_above = 0
        self.used = 0
        self.peak_used = 0
        self.now = 0.0
        self.step = 0
        self.w_ttft = 0.0
        self.w_tpot = 0.0
        self.itl: list[float] = []
        self.itl_weight: list[float] = []
        self.kv_trace: list[tuple[float, int]] = []
        self.preemptions = 0
        self.dropped = 0
        self.output_tokens = 0
        self.prefill_tokens = 0
        self.record = StepRecord() if record_steps else None
        if self.closed:
            assert isinstance(workload, ClosedLoop)
            for _ in range(min(workload.concurrency, len(self.reqs))):
                self._send_next(0.0)

    # -- queue ---------------------------------------------------------------------------------------------
    def _enqueue(self, req: _Req, *, front: bool = False) -> None:
        if front:
            self.front -= 1
            key = self.front
        else:
            self.order += 1
            key = self.order
        heapq.heappush(self.waiting, (self.requests[req.index].priority, key, req))

    def _send_next(self, now: float) -> None:
        if self.next_arrival < len(self.reqs):
            req = self.reqs[self.next_arrival]
            self.next_arrival += 1
            req.arrival = now
            self._arrive(req)

    def _arrive(self, req: _Req) -> None:
        if req.prompt + req.output > self.capacity * self.block:
            self.dropped += 1
            req.weight = 0.0
            if self.closed:
                self._send_next(self.now)
            return
        self.w_ttft += req.weight
        self._enqueue(req)

    def _admit_arrivals(self) -> None:
        while self.next_arrival < len(self.reqs) and self.reqs[self.next_arrival].arrival <= self.now:
            req = self.reqs[self.next_arrival]
            self.next_arrival += 1
            self._arrive(req)

    # -- KV and preemption ---------------------------------------------------------------------------------
    def _preempt_last(self) -> _Req:
        """Preempt by recompute, at the start of step ``self.step`` (before its decodes take new blocks)."""
        _, req = self.running.popitem()
        if req.index in self._decoding:
            self._stop_decoding(req)
            req.epoch += 1  # invalidates its entries in the finish and window heaps
            cached = req.base + self.step  # prompt + generated − 1: the newest token is not in the cache yet
            freed = math.ceil(cached / self.block)
            req.generated = cached - req.prompt + 1
            req.last_token_s = self.now  # it decoded in the step that just ended
        else:
            self.prefilling.remove(req)
            freed = req.blocks
        self.used -= freed
        req.blocks = 0
        req.target = req.prompt + req.generated
        req.computed = 0
        req.preemptions += 1
        self.preemptions += 1
        self._enqueue(req, front=True)
        return req

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        budget_total = self.engine.max_num_batched_tokens
        model = self.model
        while True:
            if not self.closed:
                self._admit_arrivals()
            if not self.running and not self.waiting:
                if self.closed or self.next_arrival >= len(self.reqs):
                    break
                self.now = max(self.now, self.reqs[self.next_arrival].arrival)
                continue

            preempted = False
            need = self.phase[(-self.step) % self.block]
            while self.used + need > self.capacity and self.n_dec:
                self._preempt_last()
                preempted = True
                need = self.phase[(-self.step) % self.block]
            self.used += need
            n_dec = self.n_dec
            kv_read = self._decode_context()
            tokens = float(n_dec)
            pairs = kv_read
            sampled = float(n_dec)
            budget = budget_total - n_dec
            ttft_w, tpot_w = self.w_ttft, self.w_tpot
            completing: list[_Req] = []
            chunks = 0

            for req in list(self.prefilling):
                if budget <= 0:
                    break
                if req.index not in self.running:
                    continue
                chunk = min(req.target - req.computed, budget)
                extra = math.ceil((req.computed + chunk) / self.block) - req.blocks
                while self.used + extra > self.capacity and req.index in self.running:
                    # A partial prefill is always the last running request (it takes the rest of the budget,
                    # so nothing is admitted after it), so this pops ``req`` itself, as vLLM's running.pop() does.
                    if self._preempt_last() is not req:
                        raise RuntimeError("scheduler simulation: a partial prefill was not the last request")
                    preempted = True
                if req.index not in self.running:
                    break
                self.used += extra
                req.blocks += extra
                self.prefill_tokens += chunk
                tokens += chunk
                pairs += model.chunk_pairs(req.computed, chunk)
                kv_read += model.context_tokens(req.computed)
                budget -= chunk
                chunks += 1
                req.computed += chunk
                if req.computed >= req.target:
                    sampled += 1
                    completing.append(req)

            if not preempted:
                while self.waiting and budget > 0 and len(self.running) < self.engine.max_num_seqs:
                    req = self.waiting[0][2]
                    start = 0
                    if self.hit_ratio and req.generated == 0:
                        start = min(
                            int(req.prompt * self.hit_ratio) // self.block * self.block, req.target - 1
                        )
                    chunk = min(req.target - start, budget)
                    blocks = math.ceil((start + chunk) / self.block)
                    if self.used + blocks > self.capacity:
                        break
                    heapq.heappop(self.waiting)
                    self.used += blocks
                    req.blocks = blocks
                    req.computed = start + chunk
                    self.running[req.index] = req
                    if math.isnan(req.scheduled_s):
                        req.scheduled_s = self.now
                    self.prefill_tokens += chunk
                    tokens += chunk
                    pairs += model.chunk_pairs(start, chunk)
                    kv_read += model.context_tokens(start)
                    budget -= chunk
                    chunks += 1
                    if req.computed >= req.target:
                        sampled += 1
                        completing.append(req)
                    else:
                        self.prefilling.append(req)

            self.peak_used = max(self.peak_used, self.used)
            if tokens == 0:
                if preempted:  # the step's work went to preempted requests; schedule again
                    continue
                # Unreachable: with nothing running the cache is empty and every admitted request fits in it.
                raise RuntimeError("scheduler simulation stalled: requests wait but none can be scheduled")

            count, growth = 1, 0.0
            if self.jump and chunks == 0 and n_dec and not self.prefilling and not self._admissible():
                count = self._run_length(n_dec, kv_read)
            if count == 1:
                duration = model.step_time_s(
                    tokens=tokens, sampled_seqs=sampled, attn_pairs=pairs, kv_read_tokens=kv_read
                )
                if n_dec:
                    self.itl.append(duration)
                    self.itl_weight.append(n_dec)
            else:
                growth = n_dec - self.window_share * self.n_above
                duration = model.decode_run_s(n_dec, kv_read, count, growth)
                self._record_run_itl(n_dec, kv_read, count, growth)
                self.used += self._blocks_needed(1, count)
                self.peak_used = max(self.peak_used, self.used)
            if self.record is not None:
                self.record.add(count, tokens, sampled, pairs, kv_read, growth, ttft_w, tpot_w)
            self.now += duration
            last = self.step + count - 1
            self.output_tokens += n_dec * count + len(completing)
            self._finish_prefills(completing, last)
            self._finish_decodes(last)
            self.step = last + 1
            if len(self.kv_trace) < 200_000:
                self.kv_trace.append((self.now, self.used))
        return self._result()

    def _decode_context(self) -> float:
        """Σ over decoding sequences of the KV tokens attention reads at this step (``StepModel.context_tokens``).

        A sequence's context is ``base + step``; past the window (from step ``window − base + 1`` on) its windowed
        layers stop growing, so those sequences give back ``share × (base + step − window)`` each."""
        total = float(self.sum_base + self.n_dec * self.step)
        if not self.window:
            return total
        while self.crossings and self.crossings[0][0] <= self.step:
            _, _, epoch, req = heapq.heappop(self.crossings)
            if self._crossing_valid(epoch, req):
                req.above = True
                self.n_above += 1
                self.sum_base_above += req.base
        return total - self.window_share * (self.sum_base_above + self.n_above * (self.step - self.window))

    def _start_decoding(self, req: _Req) -> None:
        self._decoding.add(req.index)
        self.n_dec += 1
        self.sum_base += req.base
        self.phase[req.base % self.block] += 1
        if self.window:
            heapq.heappush(self.crossings, (self.window - req.base + 1, req.index, req.epoch, req))

    def _stop_decoding(self, req: _Req) -> None:
        self._decoding.discard(req.index)
        self.n_dec -= 1
        self.sum_base -= req.base
        self.phase[req.base % self.block] -= 1
        if req.above:
            req.above = False
            self.n_above -= 1
            self.sum_base_above -= req.base

    def _admissible(self) -> bool:
        """Could the head of the queue start next step? (Then the next step is not decode-only.)"""
        if not self.waiting or len(self.running) >= self.engine.max_num_seqs:
            return False
        req = self.waiting[0][2]
        chunk = min(req.target, self.engine.max_num_batched_tokens - self.n_dec)
        return (
            self.used + math.ceil(chunk / self.block) + self.phase[(-self.step - 1) % self.block]
            <= self.capacity
        )

    def _blocks_needed(self, first: int, last: int) -> int:
        """New blocks the decoding sequences take over steps ``step+first`` … ``step+last−1``."""
        total = 0
        full = (last - first) // self.block
        total += full * self.n_dec
        for j in range(first + full * self.block, last):
            total += self.phase[(-(self.step + j)) % self.block]
        return total

    def _run_length(self, n_dec: int, kv_read: float) -> int:
        """How many decode-only steps from now until something changes: a finish, an arrival, KV running out."""
        while self.finishes and self.finishes[0][2] != self.finishes[0][3].epoch:
            heapq.heappop(self.finishes)
        limit = self.finishes[0][0] - self.step + 1 if self.finishes else 1
        while self.crossings and not self._crossing_valid(*self.crossings[0][2:]):
            heapq.heappop(self.crossings)
        if self.crossings:  # a sequence crossing its window changes the run's growth: stop before it
            limit = min(limit, self.crossings[0][0] - self.step)
        free = self.capacity - self.used
        if free < self._blocks_needed(1, limit):
            low, high = 1, limit  # largest k with the blocks of steps 1..k−1 available
            while low < high:
                mid = (low + high + 1) // 2
                if self._blocks_needed(1, mid) <= free:
                    low = mid
                else:
                    high = mid - 1
            limit = low
        if not self.closed and self.next_arrival < len(self.reqs) and limit > 1:
            gap = self.reqs[self.next_arrival].arrival - self.now
            growth = n_dec - self.window_share * self.n_above
            if self.model.decode_run_s(n_dec, kv_read, limit - 1, growth) >= gap:
                low, high = 1, limit - 1  # smallest k whose steps end at or after the arrival
                while low < high:
                    mid = (low + high) // 2
                    if self.model.decode_run_s(n_dec, kv_read, mid, growth) >= gap:
                        high = mid
                    else:
                        low = mid + 1
                limit = low
        return max(limit, 1)

    def _crossing_valid(self, epoch: int, req: _Req) -> bool:
        """Is a window-heap entry still live (same epoch, still decoding, not yet counted past the window)?"""
        return epoch == req.epoch and not req.above and req.index in self._decoding

    def _record_run_itl(self, n_dec: int, kv_read: float, count: int, growth: float) -> None:
        """A run's step durations grow linearly; keep a few evenly spaced samples, each standing for a share."""
        samples = min(count, 8)
        for j in range(samples):
            i = round(j * (count - 1) / max(samples - 1, 1))
            kv = kv_read + growth * i
            self.itl.append(
                self.model.step_time_s(tokens=n_dec, sampled_seqs=n_dec, attn_pairs=kv, kv_read_tokens=kv)
            )
            self.itl_weight.append(n_dec * count / samples)

    def _finish_prefills(self, completing: list[_Req], last: int) -> None:
        for req in completing:
            if req in self.prefilling:
                self.prefilling.remove(req)
            if req.generated == 0:
                req.first_s = self.now
                self.w_ttft -= req.weight
                self.w_tpot += req.tpot_share
            else:  # resumed after a preemption: the gap since its last token is one inter-token latency
                self.itl.append(self.now - req.last_token_s)
                self.itl_weight.append(1.0)
            req.generated += 1
            req.last_token_s = self.now
            if req.generated >= req.output:
                self._complete(req, req.blocks)
                continue
            req.base = req.computed - (last + 1)
            self._start_decoding(req)
            finish = last + req.output - req.generated
            heapq.heappush(self.finishes, (finish, req.index, req.epoch, req))

    def _finish_decodes(self, last: int) -> None:
        while self.finishes and self.finishes[0][0] <= last:
            finish, _, epoch, req = heapq.heappop(self.finishes)
            if epoch != req.epoch:
                continue
            self._stop_decoding(req)
            req.generated = req.output
            self._complete(req, math.ceil((req.base + finish + 1) / self.block))

    def _complete(self, req: _Req, blocks: int) -> None:
        del self.running[req.index]
        self.used -= blocks
        req.finish_s = self.now
        req.last_token_s = self.now
        if req.output > 1:
            self.w_tpot -= req.tpot_share
        if self.closed:
            self._send_next(self.now)

    def _result(self) -> SimResult:
        reqs = self.reqs
        prompts = np.array([r.prompt for r in reqs], dtype=float)
        overhead = self.model.request_overhead_s + self.model.prompt_overhead_s_per_token * prompts
        first = np.array([r.first_s for r in reqs])
        finish = np.array([r.finish_s for r in reqs])
        arrival = np.array([r.arrival for r in reqs])
        outputs = np.array([r.output for r in reqs], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(outputs > 1, (finish - first) / (outputs - 1), np.nan)
        return SimResult(
            ttft_s=first - arrival + overhead,
            tpot_s=tpot,
            e2e_s=finish - arrival + overhead,
            queue_s=np.array([r.scheduled_s for r in reqs]) - arrival,
            weight=np.array([r.weight for r in reqs]),
            itl_s=np.array(self.itl),
            itl_weight=np.array(self.itl_weight, dtype=float),
            kv_usage=kv_usage_series(self.kv_trace, self.capacity),
            output_tokens=self.output_tokens,
            duration_s=self.now,
            steps=self.step,
            preemptions=self.preemptions,
            dropped=self.dropped,
            peak_kv_blocks=self.peak_used,
            kv_blocks=self.capacity,
            record=self.record,
            prefill_tokens=self.prefill_tokens,
        )
