"""The live engine core: ``perf/_scheduler.py``'s scheduling rules, one step at a time, for requests that arrive live.

Why a second loop over the same rules: ``perf.simulate`` replays a known request list and keeps decoding sequences
as aggregates (and jumps over runs of decode-only steps) for speed; a server learns of each request only when it
arrives and must hand each request its tokens at every step boundary. So this core keeps one record per sequence
and advances exactly one step per call, applying the same policy in the same order (vLLM V1's scheduler):

* a step starts at simulated time ``now_s``; requests that arrived at or before it join the waiting queue
  (priority, then arrival; preempted requests go back to the front);
* a decoding sequence needs a new 16-token block when the token it writes starts one; while the cache cannot
  hold them, the *last* running request is preempted by recompute (its blocks freed, back to the queue front);
* decodes take one token each from the budget (``max_num_batched_tokens``), then partial prefills take chunks,
  then — only if nothing was preempted in this step — waiting requests are admitted in order while budget,
  ``max_num_seqs`` slots and KV blocks last (admission stops at the first that does not fit); a share of each
  fresh prompt (``prefix_hit_ratio``, whole blocks) comes from the prefix cache;
* the step lasts ``StepModel.step_time_s`` of its token mix; at its end each decode and each finished prefill
  yields one token.

There is no timing model here: durations come from the same ``StepModel`` and the test
``tests/simulator/test_engine_equivalence.py`` drives this core on a virtual clock with the arrivals
``perf.simulate`` replays and checks that every request's TTFT and E2E match.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from servewise.perf import SimEngine, StepModel

__all__ = ["Emission", "EngineCore", "Sequence", "StepOutcome"]


class Sequence:
    """One request inside the engine; times are simulated seconds."""

    __slots__ = (
        "arrival_s",
        "blocks",
        "cancelled",
        "computed",
        "finish_s",
        "first_s",
        "generated",
        "id",
        "output_tokens",
        "preemptions",
        "priority",
        "prompt_tokens",
        "scheduled_s",
        "tag",
        "target",
    )

    def __init__(
        self, seq_id: int, prompt_tokens: int, output_tokens: int, arrival_s: float, priority: int = 0
    ) -> None:
        if prompt_tokens < 1 or output_tokens < 1:
            raise ValueError("prompt_tokens and output_tokens must be >= 1")
        self.id = seq_id
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.arrival_s = arrival_s
        self.priority = priority
        self.computed = 0
        self.target = prompt_tokens
        self.generated = 0
        self.blocks = 0
        self.preemptions = 0
        self.cancelled = False
        self.first_s = math.nan
        self.finish_s = math.nan
        self.scheduled_s = math.nan
        self.tag: object = None
        """Whatever the caller attaches (the server: the request's stream)."""

    @property
    def cached_tokens(self) -> int:
        """Tokens whose KV is in the cache while decoding (the newest sampled token is not written yet)."""
        return self.prompt_tokens + self.generated - 1

    @property
    def finished(self) -> bool:
        return self.generated >= self.output_tokens


@dataclass(frozen=True, slots=True)
class Emission:
    """``sequence`` received one token at the end of a step; ``finished`` when it was its last."""

    sequence: Sequence
    first: bool
    finished: bool


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """One step: when it ran (simulated seconds), its token mix and who got a token at its end."""

    start_s: float
    end_s: float
    scheduled_tokens: int
    prefill_tokens: int
    decodes: int
    emissions: tuple[Emission, ...]
    preempted: tuple[Sequence, ...] = field(default=())


class EngineCore:
    """Scheduler state of one replica; ``step()`` runs one engine step. Pure state, no clock of its own."""

    def __init__(self, step: StepModel, engine: SimEngine, *, prefix_hit_ratio: float = 0.0) -> None:
        self.model = step
        self.engine = engine
        self.block = engine.block_size
        self.capacity = engine.kv_blocks
        self.hit_ratio = min(max(prefix_hit_ratio, 0.0), 1.0)
        self.now_s = 0.0
        self.used_blocks = 0
        self.steps = 0
        self.preemptions = 0
        self._arrivals: list[tuple[float, int, Sequence]] = []
        self._waiting: list[tuple[int, int, Sequence]] = []
        self._order = 0
        self._front = 0
        self._running: dict[int, Sequence] = {}
        self._prefilling: list[Sequence] = []
        self._decoding: dict[int, Sequence] = {}

    # -- inputs --------------------------------------------------------------------------------------------
    def fits(self, prompt_tokens: int, output_tokens: int) -> bool:
        """Can one sequence of this size ever be held? (``perf.simulate`` drops the ones that cannot.)"""
        return prompt_tokens + output_tokens <= self.capacity * self.block

    def submit(self, sequence: Sequence) -> None:
        """Queue ``sequence``; it joins the waiting queue at the first step starting at or after its arrival."""
        if not self.fits(sequence.prompt_tokens, sequence.output_tokens):
            raise ValueError("the sequence is longer than the whole KV cache; check fits() first")
        heapq.heappush(self._arrivals, (sequence.arrival_s, sequence.id, sequence))

    def cancel(self, sequence: Sequence) -> None:
        """The client went away: free the sequence's slot and blocks (vLLM aborts the request)."""
        if sequence.cancelled or sequence.finished:
            return
        sequence.cancelled = True
        if sequence.id in self._running:
            del self._running[sequence.id]
            self.used_blocks -= sequence.blocks
            sequence.blocks = 0
            self._decoding.pop(sequence.id, None)
            if sequence in self._prefilling:
                self._prefilling.remove(sequence)
        # Waiting or not yet arrived: skipped lazily when it reaches the head of its queue.

    # -- observation ---------------------------------------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return sum(1 for *_, s in self._waiting if not s.cancelled) + sum(
            1 for *_, s in self._arrivals if not s.cancelled and s.arrival_s <= self.now_s
        )

    @property
    def queued(self) -> int:
        """Requests submitted that the next step cannot start (free sequence slots take the first ones), whatever
        the core's clock: a live server's arrivals have all happened, while ``waiting`` counts only arrivals at or
        before ``now_s`` (a replay pre-loads future ones), and that clock lags behind requests arriving while the
        engine is idle. The server's ``max_waiting`` limit uses this count."""
        pending = sum(1 for *_, s in self._waiting if not s.cancelled) + sum(
            1 for *_, s in self._arrivals if not s.cancelled
        )
        return max(0, pending - (self.engine.max_num_seqs - len(self._running)))

    @property
    def kv_usage(self) -> float:
        return self.used_blocks / self.capacity

    def has_work(self) -> bool:
        return bool(self._running or self._waiting or self._arrivals)

    # -- queue ---------------------------------------------------------------------------------------------
    def _enqueue(self, sequence: Sequence, *, front: bool = False) -> None:
        if front:
            self._front -= 1
            key = self._front
        else:
            self._order += 1
            key = self._order
        heapq.heappush(self._waiting, (sequence.priority, key, sequence))

    def _admit_arrivals(self) -> None:
        while self._arrivals and self._arrivals[0][0] <= self.now_s:
            sequence = heapq.heappop(self._arrivals)[2]
            if not sequence.cancelled:
                self._enqueue(sequence)

    def _head(self) -> Sequence | None:
        while self._waiting and self._waiting[0][2].cancelled:
            heapq.heappop(self._waiting)
        return self._waiting[0][2] if self._waiting else None

    def _preempt_last(self) -> Sequence:
        """Preempt by recompute at the start of a step (before its decodes take new blocks)."""
        _, sequence = self._running.popitem()
        if self._decoding.pop(sequence.id, None) is None:
            self._prefilling.remove(sequence)
        self.used_blocks -= sequence.blocks
        sequence.blocks = 0
        sequence.target = sequence.prompt_tokens + sequence.generated
        sequence.computed = 0
        sequence.preemptions += 1
        self.preemptions += 1
        self._enqueue(sequence, front=True)
        return sequence

    # -- one step ------------------------------------------------------------------------------------------
    def step(self) -> StepOutcome | None:
        """Run the next engine step; None when there is nothing to do (no request running, waiting or queued).
        When only future arrivals are left, the clock first jumps to the next one, as ``perf.simulate`` does."""
        while True:
            self._admit_arrivals()
            if not self._running and self._head() is None:
                while self._arrivals and self._arrivals[0][2].cancelled:
                    heapq.heappop(self._arrivals)
                if not self._arrivals:
                    return None
                self.now_s = max(self.now_s, self._arrivals[0][0])
                continue
            outcome = self._try_step()
            if outcome is not None:
                return outcome

    def _needing_block(self) -> list[Sequence]:
        block = self.block
        return [s for s in self._decoding.values() if s.cached_tokens % block == 0]

    def _try_step(self) -> StepOutcome | None:
        block, capacity = self.block, self.capacity
        preempted: list[Sequence] = []
        needing = self._needing_block()
        while self.used_blocks + len(needing) > capacity and self._decoding:
            preempted.append(self._preempt_last())
            needing = self._needing_block()
        self.used_blocks += len(needing)
        for sequence in needing:
            sequence.blocks += 1
        decoders = list(self._decoding.values())
        n_dec = len(decoders)
        kv_read = float(sum(self.model.context_tokens(s.cached_tokens) for s in decoders))
        tokens = float(n_dec)
        pairs = kv_read
        sampled = float(n_dec)
        budget = self.engine.max_num_batched_tokens - n_dec
        completing: list[Sequence] = []
        prefill_tokens = 0

        for sequence in list(self._prefilling):
            if budget <= 0:
                break
            if sequence.id not in self._running:
                continue
            chunk = min(sequence.target - sequence.computed, budget)
            extra = math.ceil((sequence.computed + chunk) / block) - sequence.blocks
            while self.used_blocks + extra > capacity and sequence.id in self._running:
                # A partial prefill is always the last running request (it took the rest of a budget).
                if self._preempt_last() is not sequence:
                    raise RuntimeError("live engine: a partial prefill was not the last running request")
                preempted.append(sequence)
            if sequence.id not in self._running:
                break
            self.used_blocks += extra
            sequence.blocks += extra
            prefill_tokens += chunk
            tokens += chunk
            pairs += self.model.chunk_pairs(sequence.computed, chunk)
            kv_read += self.model.context_tokens(sequence.computed)
            budget -= chunk
            sequence.computed += chunk
            if sequence.computed >= sequence.target:
                sampled += 1
                completing.append(sequence)

        if not preempted:
            while budget > 0 and len(self._running) < self.engine.max_num_seqs:
                head = self._head()
                if head is None:
                    break
                start = 0
                if self.hit_ratio and head.generated == 0:
                    start = min(int(head.prompt_tokens * self.hit_ratio) // block * block, head.target - 1)
                chunk = min(head.target - start, budget)
                blocks = math.ceil((start + chunk) / block)
                if self.used_blocks + blocks > capacity:
                    break
                heapq.heappop(self._waiting)
                self.used_blocks += blocks
                head.blocks = blocks
                head.computed = start + chunk
                self._running[head.id] = head
                if math.isnan(head.scheduled_s):
                    head.scheduled_s = self.now_s
                prefill_tokens += chunk
                tokens += chunk
                pairs += self.model.chunk_pairs(start, chunk)
                kv_read += self.model.context_tokens(start)
                budget -= chunk
                if head.computed >= head.target:
                    sampled += 1
                    completing.append(head)
                else:
                    self._prefilling.append(head)

        if tokens == 0:
            if preempted:  # the step's work went to preempted requests; schedule again at the same time
                return None
            raise RuntimeError("live engine stalled: requests wait but none can be scheduled")
        start_s = self.now_s
        self.now_s += self.model.step_time_s(
            tokens=tokens, sampled_seqs=sampled, attn_pairs=pairs, kv_read_tokens=kv_read
        )
        self.steps += 1
        emissions = [self._prefill_done(s) for s in completing]
        emissions += self._decoded(decoders)
        return StepOutcome(
            start_s, self.now_s, int(tokens), prefill_tokens, n_dec, tuple(emissions), tuple(preempted)
        )

    def _prefill_done(self, sequence: Sequence) -> Emission:
        if sequence in self._prefilling:
            self._prefilling.remove(sequence)
        first = sequence.generated == 0
        if first:
            sequence.first_s = self.now_s
        sequence.generated += 1
        if sequence.finished:
            self._complete(sequence)
        else:
            self._decoding[sequence.id] = sequence
        return Emission(sequence, first, sequence.finished)

    def _decoded(self, decoders: list[Sequence]) -> list[Emission]:
        """One token for each sequence that decoded in the step; finishers leave in id order (the order
        ``perf.simulate``'s finish heap releases them, which fixes a closed loop's next sends)."""
        finishing: list[Sequence] = []
        emissions: list[Emission] = []
        for sequence in decoders:
            sequence.generated += 1
            if sequence.finished:
                finishing.append(sequence)
            else:
                emissions.append(Emission(sequence, False, False))
        for sequence in sorted(finishing, key=lambda s: s.id):
            del self._decoding[sequence.id]
            self._complete(sequence)
            emissions.append(Emission(sequence, False, True))
        return emissions

    def _complete(self, sequence: Sequence) -> None:
        del self._running[sequence.id]
        self.used_blocks -= sequence.blocks
        sequence.blocks = 0
        sequence.finish_s = self.now_s
