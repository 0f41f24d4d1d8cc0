"""What one scheduler run is given and gives back: the engine's limits, the step mix it records for calibration,
and the per-request results with their summaries.

Why apart from the scheduler: these are the simulation's contract with everything that reads it (``predict``,
``plan``'s capacity search, ``calibrate``, the live simulator, benchmarks), and they change for other reasons than
the scheduling rules do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SimEngine", "SimResult", "StepRecord", "kv_usage_series"]


@dataclass(frozen=True, slots=True)
class SimEngine:
    """Scheduler limits of one replica (one attention data-parallel rank)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    kv_blocks: int
    block_size: int = 16

    def __post_init__(self) -> None:
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError(
                "max_num_batched_tokens must be >= max_num_seqs (vLLM refuses to start otherwise)"
            )
        if self.max_num_seqs < 1 or self.kv_blocks < 1 or self.block_size < 1:
            raise ValueError("max_num_seqs, kv_blocks and block_size must be >= 1")


@dataclass(slots=True)
class StepRecord:
    """Step mix for calibration; one row per single step or per jumped run of ``count`` decode-only steps."""

    count: list[int] = field(default_factory=list)
    tokens: list[float] = field(default_factory=list)
    sampled: list[float] = field(default_factory=list)
    pairs: list[float] = field(default_factory=list)
    kv_read: list[float] = field(default_factory=list)
    growth: list[float] = field(default_factory=list)
    """Per step of a run, ``pairs`` and ``kv_read`` grow by this much (the number of decodes, less the windowed
    layers' share of those past their window; 0 for single steps)."""
    ttft_weight: list[float] = field(default_factory=list)
    """Σ weight of requests waiting for their first token during the step."""
    tpot_weight: list[float] = field(default_factory=list)
    """Σ weight / (output − 1) of requests between their first and last token during the step."""

    def add(self, count: int, tokens: float, sampled: float, pairs: float, kv_read: float, growth: float,
            ttft_weight: float, tpot_weight: float) -> None:  # fmt: skip
        self.count.append(count)
        self.tokens.append(tokens)
        self.sampled.append(sampled)
        self.pairs.append(pairs)
        self.kv_read.append(kv_read)
        self.growth.append(growth)
        self.ttft_weight.append(ttft_weight)
        self.tpot_weight.append(tpot_weight)


@dataclass(frozen=True, slots=True)
class SimResult:
    """Per-request arrays (seconds, in request order) and engine-level series of one simulated run."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    """NaN for requests with a single output token."""
    e2e_s: np.ndarray
    queue_s: np.ndarray
    """Arrival to first scheduled step."""
    weight: np.ndarray
    """0 for warm-up and dropped requests."""
    itl_s: np.ndarray
    itl_weight: np.ndarray
    """Inter-token gaps with the number of tokens that saw each one."""
    kv_usage: tuple[tuple[float, float], ...]
    """(time s, share of KV blocks in use), at most a few hundred points."""
    output_tokens: int
    duration_s: float
    steps: int
    preemptions: int
    dropped: int
    """Requests whose prompt + output exceed the whole KV cache: never admitted (vLLM rejects them at the API,
    since its ``max_model_len`` cannot exceed the cache)."""
    peak_kv_blocks: int
    kv_blocks: int
    record: StepRecord | None = None
    prefill_tokens: int = 0
    """Prompt tokens computed (prefix-cache hits excluded), including those recomputed after preemptions."""

    @property
    def completed(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.e2e_s)))

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    def mean(self, metric: str) -> float:
        """Weighted mean of ``ttft``, ``tpot``, ``e2e`` or ``queue`` (seconds)."""
        values: np.ndarray = getattr(self, f"{metric}_s")
        mask = (self.weight > 0) & ~np.isnan(values)
        if not mask.any():
            return math.nan
        return float(np.average(values[mask], weights=self.weight[mask]))

    def percentile(self, metric: str, q: float) -> float:
        """Percentile ``q`` (0–100) of ``ttft``, ``tpot``, ``e2e``, ``queue`` or ``itl`` (seconds)."""
        if metric == "itl":
            return _weighted_percentile(self.itl_s, self.itl_weight, q)
        values: np.ndarray = getattr(self, f"{metric}_s")
        mask = (self.weight > 0) & ~np.isnan(values)
        return _weighted_percentile(values[mask], np.ones(int(mask.sum())), q)


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, q / 100.0 * cumulative[-1], side="left"))
    return float(values[order][min(index, values.size - 1)])


def kv_usage_series(
    trace: list[tuple[float, int]], capacity: int, points: int = 400
) -> tuple[tuple[float, float], ...]:
    """(time s, share of ``capacity`` blocks in use) from a per-step trace, thinned to about ``points`` points."""
    stride = max(1, len(trace) // points)
    return tuple((t, used / capacity) for t, used in trace[::stride])
