"""How many replicas the autoscaler may run, and when it adds one.

With c = ``perf.max_qps_per_replica`` (the most one replica serves within the SLO), N = the option's ``replicas``
(peak provisioning: ⌈peak_qps / c⌉) and the weekly traffic shape m_h (168 hour-of-week multipliers, mean 1,
``cost.shape_multipliers``):

    average qps       λ̄  = peak_qps / peak_factor
    hour h demand     λ_h = λ̄ × m_h
    hour h replicas   n_h = max(min_replicas, ⌈λ_h / c⌉)           (``cost.autoscale_week``)
    minReplicas       = min_h n_h                                  the quietest hour of the week
    maxReplicas       = N                                           the plan's peak provisioning, never more

KEDA trigger on ``vllm:num_requests_waiting`` (AverageValue per replica). By Little's law a queue of w requests ahead
of a new one at arrival rate c adds w / c seconds to its time to first token; the SLO leaves
(TTFT p95 target − predicted TTFT p95) of headroom, so the queue that uses it up is

    threshold = max(1, c × (ttft_p95_target_ms − ttft_p95_predicted_ms) / 1000)   waiting requests per replica

(rounded down to 0.01). Without a TTFT target the E2E p95 target and prediction stand in; with neither, 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.cost import ScalingPolicy, autoscale_week, shape_multipliers
from servewise.errors import UsageError

__all__ = ["Scaling", "keda_threshold", "scaling"]


@dataclass(frozen=True, slots=True)
class Scaling:
    min_replicas: int
    max_replicas: int
    shape: str
    shape_peak_replicas: int
    """Replicas the busiest hour of the shape needs; above ``max_replicas`` when the shape's peak exceeds the
    workload's peak factor (the README says so)."""
    waiting_per_replica: float
    threshold_basis: str
    autoscaled_usd_per_month: float
    """What the month costs when replicas follow the shape (``autoscale_week``, default lag and cold start)."""


def keda_threshold(
    max_qps_per_replica: float, slo: dict[str, tuple[float, float | None]]
) -> tuple[float, str]:
    """(waiting requests per replica, one-line basis); ``slo`` maps check name → (target_ms, predicted_ms)."""
    for name in ("ttft_p95_ms", "e2e_p95_ms"):
        if name in slo:
            target, predicted = slo[name]
            if predicted is None:
                continue
            headroom_ms = max(0.0, target - predicted)
            raw = max_qps_per_replica * headroom_ms / 1000.0
            value = max(1.0, math.floor(raw * 100) / 100)
            return value, (
                f"{max_qps_per_replica:.3g} req/s per replica x ({target:g} - {predicted:.1f}) ms of {name} "
                f"headroom = {raw:.2f} waiting requests{' (floor 1)' if raw < 1 else ''}"
            )
    return 1.0, "no TTFT or E2E p95 target: scale out as soon as a request waits"


def scaling(
    *,
    replicas: int,
    peak_qps: float,
    peak_factor: float,
    max_qps_per_replica: float,
    usd_per_replica_hour: float,
    slo: dict[str, tuple[float, float | None]],
    shape: str = "weekly",
    min_replicas: int = 1,
) -> Scaling:
    """Autoscaling bounds and trigger of one option (formulas in the module docstring)."""
    if min_replicas < 1:
        raise UsageError(
            f"--min-replicas must be >= 1 (got {min_replicas}): a replica takes minutes to start, so scaling to "
            "zero puts that cold start on the first request"
        )
    if min_replicas > replicas:
        raise UsageError(
            f"--min-replicas {min_replicas} is above the plan's {replicas} replica(s), the autoscaling maximum; "
            f"use at most {replicas} or re-plan for more traffic"
        )
    if not max_qps_per_replica > 0:
        raise UsageError("the plan option has no positive max_qps_per_replica; re-plan with this version")
    average = peak_qps / peak_factor if peak_factor > 0 else peak_qps
    curve = tuple(average * m for m in shape_multipliers(shape))
    week = autoscale_week(
        curve,
        max_qps_per_replica=max_qps_per_replica,
        usd_per_replica_hour=usd_per_replica_hour,
        policy=ScalingPolicy(min_replicas=min_replicas),
    )
    targets = [h.target_replicas for h in week.hours]
    threshold, basis = keda_threshold(max_qps_per_replica, slo)
    return Scaling(
        min_replicas=min(min(targets), replicas),
        max_replicas=replicas,
        shape=shape,
        shape_peak_replicas=max(targets),
        waiting_per_replica=threshold,
        threshold_basis=basis,
        autoscaled_usd_per_month=week.usd_per_month,
    )
