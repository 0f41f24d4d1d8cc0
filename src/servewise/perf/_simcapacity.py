"""Capacity of one replica from the scheduler simulation: the highest Poisson rate whose simulated p95s meet the SLO.

Why bisection on a simulation rather than the queueing formula: under load the formula misses the scheduler's
effects (KV exhaustion and preemption, chunked prefill stalls), which is where capacity is decided. Why it stays
fast: the search starts from the queueing estimate, every rate replays the same seeded request stream (common
random numbers, so latency is monotone in the rate and the bisection is stable), a run is a few hundred requests
(~20 ms), and results are memoised per (step model, engine, request shape, SLO) — configurations that share them
are simulated once.

A rate is *sustainable* when every SLO percentile is met and the replica keeps up: requests complete at ≥ 85 % of
the arrival rate over the run (otherwise the queue grows without bound and a longer run would miss the SLO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._arrivals import LengthSampler, poisson_arrivals
from ._capacity import LatencyPercentiles
from ._roofline import StepModel
from ._scheduler import SimEngine, SimResult, simulate

__all__ = ["SimPoint", "latency_percentiles", "simulated_max_qps", "simulated_point"]

_KEEP_UP = 0.85
_MEMO: dict[tuple[object, ...], tuple[float, tuple[str, ...], SimResult | None]] = {}
_MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class SimPoint:
    """Latencies of one replica at one rate, from the simulation."""

    qps: float
    ttft: LatencyPercentiles
    itl: LatencyPercentiles
    e2e: LatencyPercentiles
    output_tokens_per_s: float
    preemptions: int
    peak_kv_share: float


def latency_percentiles(result: SimResult, metric: str) -> LatencyPercentiles:
    values = [result.percentile(metric, q) * 1000.0 for q in (50, 90, 95, 99)]
    return LatencyPercentiles(*values)


def _point(result: SimResult, qps: float) -> SimPoint:
    return SimPoint(
        qps=qps,
        ttft=latency_percentiles(result, "ttft"),
        itl=latency_percentiles(result, "itl"),
        e2e=latency_percentiles(result, "e2e"),
        output_tokens_per_s=result.output_tokens_per_s,
        preemptions=result.preemptions,
        peak_kv_share=result.peak_kv_blocks / result.kv_blocks,
    )


def _run(
    step: StepModel,
    engine: SimEngine,
    lengths: LengthSampler,
    qps: float,
    requests: int,
    seed: int,
    hit: float,
) -> SimResult:
    return simulate(step, engine, poisson_arrivals(qps, requests, lengths, seed=seed), prefix_hit_ratio=hit)


def _misses(result: SimResult, qps: float, targets: dict[str, float]) -> list[str]:
    missed: list[str] = []
    span = result.duration_s
    if result.completed and span > 0 and result.completed / span < _KEEP_UP * qps:
        missed.append("throughput")
    for name, target in targets.items():
        metric, percentile, _ = name.split("_")
        value = result.percentile(metric, float(percentile.removeprefix("p"))) * 1000.0
        if not value <= target * (1 + 1e-9):
            missed.append(name)
    return missed


def simulated_point(
    step: StepModel,
    engine: SimEngine,
    lengths: LengthSampler,
    qps: float,
    *,
    prefix_hit_ratio: float = 0.0,
    requests: int = 600,
    seed: int = 0,
) -> SimPoint:
    """Simulated latency percentiles of one replica at ``qps``."""
    return _point(_run(step, engine, lengths, qps, requests, seed, prefix_hit_ratio), qps)


def simulated_max_qps(
    step: StepModel,
    engine: SimEngine,
    lengths: LengthSampler,
    targets: dict[str, float],
    *,
    start_qps: float,
    shape_key: object,
    prefix_hit_ratio: float = 0.0,
    requests: int = 600,
    seed: int = 0,
    rel_tol: float = 0.03,
) -> tuple[float, tuple[str, ...], SimPoint | None]:
    """Highest simulated sustainable rate (req/s) near ``start_qps``, what binds above it, and the point at it.

    ``shape_key`` identifies ``lengths`` in the memo (samplers wrap functions, which do not compare by value).
    Returns rate 0 when even ``start_qps`` / 50 misses the SLO.
    """
    key = (step, engine, shape_key, tuple(sorted(targets.items())), prefix_hit_ratio, requests, seed, rel_tol)
    if key in _MEMO:
        memo_qps, memo_binding, memo_result = _MEMO[key]
        return memo_qps, memo_binding, (_point(memo_result, memo_qps) if memo_result is not None else None)

    def check(rate: float) -> tuple[list[str], SimResult]:
        result = _run(step, engine, lengths, rate, requests, seed, prefix_hit_ratio)
        return _misses(result, rate, targets), result

    rate = max(start_qps, 1e-6)
    missed, result = check(rate)
    low, high = 0.0, math.inf
    best: SimResult | None = None
    binding: list[str] = missed
    if missed:
        high = rate
        for _ in range(8):
            rate *= 0.6
            missed, result = check(rate)
            if not missed:
                low, best = rate, result
                break
            high, binding = rate, missed
        if best is None:
            return _remember(key, 0.0, tuple(binding), None)
    else:
        low, best = rate, result
        for _ in range(6):
            rate *= 1.5
            missed, result = check(rate)
            if missed:
                high, binding = rate, missed
                break
            low, best = rate, result
        if math.isinf(high):
            return _remember(key, low, ("max_num_seqs",), best)
    while high - low > rel_tol * low:
        mid = (low + high) / 2.0
        missed, result = check(mid)
        if missed:
            high, binding = mid, missed
        else:
            low, best = mid, result
    return _remember(key, low, tuple(binding), best)


def _remember(
    key: tuple[object, ...], qps: float, binding: tuple[str, ...], result: SimResult | None
) -> tuple[float, tuple[str, ...], SimPoint | None]:
    if len(_MEMO) >= _MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[key] = (qps, binding, result)
    return qps, binding, (_point(result, qps) if result is not None else None)
