"""The observed workload: the plan's workload with its traffic replaced by what the window measured.

Why one place: efficiency, right-sizing and drift all run the perf model "at the observed load", and must agree on
what that load is.

**Rate.** Interval QPS is noisy (a 5-s interval at 5 req/s holds 25 ± 5 requests), and the perf model already
simulates Poisson bursts within a steady rate. So the load is read on a one-minute scale, the time an autoscaler
needs to react anyway:

    qps_1m(i)  = mean of the interval QPS of the samples ending in (t_i − 60 s, t_i]   (time-weighted)
    peak       = max(observed mean QPS, max_i qps_1m(i))       (the observation's ``qps_peak`` without samples)

A window shorter than a minute therefore has its mean as its peak.

**Lengths.** The mean prompt/output length is exact (token counter delta / requests). The p95, when vLLM exposes
``vllm:request_prompt_tokens`` / ``vllm:request_generation_tokens``, comes from histogram buckets on vLLM's 1-2-5
series (``build_1_2_5_buckets``: 1, 2, 5, 10, 20, 50, …), so a constant 512-token prompt reads as p95 ≈ 975 (linear
interpolation in (500, 1000]). The length is therefore described as the least-dispersed lognormal whose p95 *seen
through the same buckets* reaches the observed p95:

    σ = min { σ ∈ [0, σ_max] : bucketed_p95(lognormal(mean, σ)) ≥ observed p95 }     (grid of 0.01)
    bucketed_p95 = histogram_quantile(0.95, {b: Φ((ln b − μ)/σ)}),   μ = ln(mean) − σ²/2
    σ = 0 → ``fixed``;  else lognormal with cv = √(e^{σ²} − 1)  (σ_max = √ln(101), the cv ≤ 10 the workload allows)

A lognormal's p95 is at most e^{1.645²/2} ≈ 3.9 × its mean (at σ = 1.645); an observed p95 beyond what any σ
reaches takes the σ whose bucketed p95 comes closest.

Without a p95 the plan's distribution keeps its shape (kind, cv) with the observed mean; without a mean, the plan's
distribution is kept. Prompts are capped at the deployed ``max-model-len`` (what vLLM accepted in the window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from pydantic import ValidationError

from servewise.errors import UsageError
from servewise.planner import max_model_len
from servewise.workload import LengthDistribution, Workload

from ._exposition import histogram_quantile
from ._observation import Observation, Sample, WatchTarget

__all__ = [
    "LENGTH_BUCKETS_TOKENS",
    "SMOOTHING_S",
    "observed_length",
    "observed_workload",
    "planned_workload",
    "smoothed_qps",
    "sustained_peak_qps",
]

SMOOTHING_S = 60.0
"""The time scale on which the load is read (module docstring)."""
LENGTH_BUCKETS_TOKENS = tuple(float(m * 10**e) for e in range(7) for m in (1, 2, 5))
"""vLLM's ``build_1_2_5_buckets`` for request prompt / generation tokens (vllm/v1/metrics/loggers.py)."""
_SIGMA_MAX = math.sqrt(math.log(101.0))
_SIGMA_STEP = 0.01


def planned_workload(target: WatchTarget) -> Workload:
    """The plan document's workload block as a ``Workload``; one-line ``UsageError`` when it does not validate."""
    try:
        return Workload.model_validate(target.workload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "workload"
        raise UsageError(
            f"the plan's workload block is not valid ({where}: {first['msg']}); re-plan with "
            "`servewise plan ... -o plan.json`"
        ) from None


def smoothed_qps(samples: Sequence[Sample], window_s: float = SMOOTHING_S) -> list[float]:
    """For each sample, the time-weighted mean interval QPS over the samples ending in ``(t − window_s, t]``."""
    out = []
    for i, sample in enumerate(samples):
        weight = total = 0.0
        for earlier in samples[: i + 1]:
            if earlier.t_s > sample.t_s - window_s:
                weight += earlier.interval_s
                total += earlier.qps * earlier.interval_s
        out.append(total / weight if weight > 0 else sample.qps)
    return out


def sustained_peak_qps(observation: Observation) -> float:
    """The highest one-minute QPS of the window, never below its mean (module docstring)."""
    if not observation.samples:
        return max(observation.qps, observation.qps_peak)
    return max([observation.qps, *smoothed_qps(observation.samples)])


def _bucketed_p95(mean: float, sigma: float, bounds: Sequence[float]) -> float | None:
    buckets: dict[float, float] = {math.inf: 1.0}
    if sigma <= 0:
        for b in bounds:
            buckets[b] = 1.0 if mean <= b else 0.0
    else:
        mu = math.log(mean) - sigma * sigma / 2
        normal = NormalDist()
        for b in bounds:
            buckets[b] = normal.cdf((math.log(b) - mu) / sigma)
    return histogram_quantile(0.95, buckets)


def observed_length(
    mean: float | None,
    p95: float | None,
    planned: LengthDistribution,
    *,
    cap_tokens: int | None = None,
    bounds: Sequence[float] = LENGTH_BUCKETS_TOKENS,
) -> LengthDistribution:
    """The length distribution the window shows (module docstring), capped at ``cap_tokens``."""
    cap = planned.max_tokens
    if cap_tokens is not None:
        cap = cap_tokens if cap is None else min(cap, cap_tokens)
    if mean is None or not mean > 0:
        return planned
    mean = min(mean, float(cap)) if cap is not None else mean
    cap = None if cap is None else max(cap, math.ceil(mean))
    if p95 is None:
        return planned.model_copy(update={"mean": mean, "max_tokens": cap})
    sigma, best_sigma, best_p95 = 0.0, 0.0, -math.inf
    while True:
        reached = _bucketed_p95(mean, sigma, bounds)
        if reached is None or reached >= p95 * (1 - 1e-9):
            best_sigma = sigma
            break
        if reached > best_p95:
            best_sigma, best_p95 = sigma, reached
        if sigma >= _SIGMA_MAX:
            break
        sigma = min(sigma + _SIGMA_STEP, _SIGMA_MAX)
    sigma = best_sigma
    if sigma <= 0:
        return LengthDistribution(mean=mean, kind="fixed", max_tokens=cap)
    cv = min(math.sqrt(math.expm1(sigma * sigma)), 10.0)
    return LengthDistribution(mean=mean, kind="lognormal", cv=cv, max_tokens=cap)


def observed_workload(target: WatchTarget, observation: Observation) -> Workload:
    """The plan's workload (SLO, constraints, priority, budget) with the observed rate, peak and lengths.

    Raises ``UsageError`` when the window finished no request (there is no observed rate to plan for)."""
    planned = planned_workload(target)
    if observation.requests <= 0 or not observation.qps > 0:
        raise UsageError(
            f"no request finished in the {observation.window_s:g}-s window, so there is no observed load to "
            "re-plan for; watch a window with traffic (a longer --window, or during the day)"
        )
    deployed_len = max_model_len(planned)
    traffic = planned.traffic
    prompt = observed_length(
        observation.prompt_tokens_mean,
        observation.prompt_tokens_p95,
        traffic.prompt_tokens,
        cap_tokens=deployed_len,
    )
    output = observed_length(
        observation.output_tokens_mean,
        observation.output_tokens_p95,
        traffic.output_tokens,
        cap_tokens=deployed_len,
    )
    peak = sustained_peak_qps(observation)
    observed = traffic.model_copy(
        update={
            "qps": observation.qps,
            "users": None,
            "requests_per_user_hour": None,
            "peak_factor": min(max(peak / observation.qps, 1.0), 100.0),
            "prompt_tokens": prompt,
            "output_tokens": output,
        }
    )
    return planned.model_copy(update={"name": f"{planned.name} (observed)", "traffic": observed})
