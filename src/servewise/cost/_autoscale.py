"""Autoscaled month: replicas that follow a weekly traffic curve, what they cost, and the SLO risk while they ramp.

Why: a pool sized for the peak hour pays for the peak all month; an autoscaled pool pays for what each hour needs,
but new replicas serve only after the autoscaler reacts and the engine loads, so traffic rising faster than that runs
over capacity (queueing, SLO misses). The week is 168 hours (hour 0 = Monday 00:00 local time) and repeats, so the
first hours of a week follow the last hours of the one before. With c = max QPS per replica and qps_h the demand in
hour h:

    target_h   = max(min_replicas, ⌈qps_h / c⌉)                    piecewise constant per hour
    billed(m)  = min target over minutes [m − lag, m]              requested replicas, paid while they start
    ready(m)   = min target over minutes [m − lag − cold_start, m] replicas that serve
    at risk    = minutes with ready(m) × c < qps_h
    over       = Σ_m max(0, qps_h − ready(m) × c) × 60 s           requests above ready capacity
    $/month    = Σ_m billed(m) / 60 × $/replica-hour × 730 / 168
    static     = max_h ⌈qps_h / c⌉ replicas × $/replica-hour × 730  (peak provisioning; min_replicas is the
                                                                    autoscaler's floor, not the static pool's)

A minimum over the window is exact for hourly steps: a replica added inside the window is not ready yet, and one
removed inside it (scale-down is immediate at the hour boundary) is gone; removing and re-adding pays the cold
start again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from servewise.errors import UsageError

from ._rental import HOURS_PER_MONTH

__all__ = [
    "HOURS_PER_WEEK",
    "SHAPES",
    "AutoscaleResult",
    "HourScaling",
    "ScalingPolicy",
    "autoscale_week",
    "shape_multipliers",
    "weekly_curve",
]

HOURS_PER_WEEK = 168
_OFFICE_DAY = (
    0.30, 0.25, 0.20, 0.20, 0.20, 0.25, 0.35, 0.55, 0.80, 0.95, 1.00, 1.00,
    0.95, 1.00, 1.00, 0.95, 0.85, 0.70, 0.55, 0.45, 0.40, 0.38, 0.35, 0.32,
)  # fmt: skip
_EVENING_DAY = (
    0.60, 0.40, 0.30, 0.25, 0.20, 0.20, 0.30, 0.50, 0.70, 0.80, 0.85, 0.90,
    0.95, 0.95, 0.90, 0.90, 0.95, 1.05, 1.20, 1.40, 1.60, 1.60, 1.30, 0.90,
)  # fmt: skip
SHAPES: dict[str, str] = {
    "flat": "the same load every hour",
    "business_hours": "weekdays 08:00-18:00 at 10x the load of nights and weekends (a step)",
    "consumer_evening": "every day the same: low 02:00-06:00, rising through the day, peak 20:00-22:00",
    "weekly": "office-hours profile on weekdays (peak 10:00-15:00), weekends at half the weekday level",
}
"""Built-in curves: stylised assumptions, not measurements; each is scaled to a weekly mean of 1, so the workload's
average QPS stays the average. Exact hourly values: docs/mixed-and-autoscale.md and ``shape_multipliers``."""


def _normalized(raw: Sequence[float]) -> tuple[float, ...]:
    mean = sum(raw) / len(raw)
    return tuple(value / mean for value in raw)


def shape_multipliers(name: str) -> tuple[float, ...]:
    """168 hour-of-week multipliers of the average QPS, mean 1, for a built-in shape."""
    weekdays, weekend = range(5), range(5, 7)
    if name == "flat":
        return (1.0,) * HOURS_PER_WEEK
    if name == "business_hours":
        return _normalized(
            [1.0 if day in weekdays and 8 <= hour < 18 else 0.1 for day in range(7) for hour in range(24)]
        )
    if name == "consumer_evening":
        return _normalized(_EVENING_DAY * 7)
    if name == "weekly":
        return _normalized([v * (0.5 if day in weekend else 1.0) for day in range(7) for v in _OFFICE_DAY])
    raise UsageError(
        f"unknown traffic shape {name!r}; choose one of {', '.join(SHAPES)} or give --curve FILE.csv"
    )


def weekly_curve(values: Sequence[float]) -> tuple[float, ...]:
    """168 hourly values from 24 (one day, repeated every day) or 168 (one week, hour 0 = Monday 00:00)."""
    if len(values) not in (24, HOURS_PER_WEEK):
        raise UsageError(f"a traffic curve needs 24 or 168 hourly values, got {len(values)}")
    for value in values:
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(f"a traffic curve value must be a finite number >= 0, got {value!r}")
    return tuple(values) * (7 if len(values) == 24 else 1)


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """How the pool scales; the defaults are assumptions, printed by the CLI and set by its flags."""

    min_replicas: int = 1
    scale_up_lag_min: int = 5
    """From demand rising to replicas being requested (metrics window + autoscaler period)."""
    cold_start_min: int = 10
    """From a replica being requested to it serving (node, image pull, weights load, engine warm-up)."""

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise UsageError(f"--min-replicas must be >= 0 (got {self.min_replicas})")
        if self.scale_up_lag_min < 0 or self.cold_start_min < 0:
            raise UsageError(
                f"--scale-up-lag-min and --cold-start-min must be >= 0 minutes "
                f"(got {self.scale_up_lag_min} and {self.cold_start_min})"
            )


@dataclass(frozen=True, slots=True)
class HourScaling:
    """One hour of the week."""

    hour: int
    qps: float
    target_replicas: int
    billed_replica_hours: float
    ready_replicas_min: int
    """The fewest replicas serving at any minute of the hour."""
    minutes_at_risk: int
    requests: float
    requests_over_capacity: float
    usd: float


@dataclass(frozen=True, slots=True)
class AutoscaleResult:
    hours: tuple[HourScaling, ...]
    """One week; a month is 730 / 168 of these."""
    policy: ScalingPolicy
    max_qps_per_replica: float
    usd_per_replica_hour: float
    replica_hours_per_month: float
    usd_per_month: float
    static_replicas: int
    static_usd_per_month: float
    hours_at_risk_per_week: int
    share_requests_over_capacity: float

    @property
    def savings_usd_per_month(self) -> float:
        return self.static_usd_per_month - self.usd_per_month

    @property
    def peak_qps(self) -> float:
        return max(h.qps for h in self.hours)

    @property
    def mean_qps(self) -> float:
        return sum(h.qps for h in self.hours) / len(self.hours)


def _windowed_min(targets: Sequence[int], minute: int, window_min: int) -> int:
    """Min of the hourly targets over minutes [minute − window, minute] of the repeating week."""
    first_hour = (minute - window_min) // 60
    last_hour = minute // 60
    return min(targets[h % HOURS_PER_WEEK] for h in range(first_hour, last_hour + 1))


def autoscale_week(
    qps_by_hour: Sequence[float],
    *,
    max_qps_per_replica: float,
    usd_per_replica_hour: float,
    policy: ScalingPolicy,
) -> AutoscaleResult:
    """Replicas, dollars and ramp risk for a 168-hour curve of demand (formulas in the module docstring)."""
    if len(qps_by_hour) != HOURS_PER_WEEK:
        raise UsageError(f"the curve must have {HOURS_PER_WEEK} hours, got {len(qps_by_hour)}")
    if not max_qps_per_replica > 0:
        raise UsageError(f"max QPS per replica must be > 0, got {max_qps_per_replica}")
    targets = [max(policy.min_replicas, math.ceil(qps / max_qps_per_replica - 1e-9)) for qps in qps_by_hour]
    lag, ready_after = policy.scale_up_lag_min, policy.scale_up_lag_min + policy.cold_start_min
    hours = []
    for hour, qps in enumerate(qps_by_hour):
        billed_minutes = 0
        ready_min = targets[hour]
        at_risk = 0
        over = 0.0
        for minute in range(hour * 60, hour * 60 + 60):
            billed_minutes += _windowed_min(targets, minute, lag)
            ready = _windowed_min(targets, minute, ready_after)
            ready_min = min(ready_min, ready)
            shortfall = qps - ready * max_qps_per_replica
            if shortfall > 1e-9 * max(qps, 1.0):
                at_risk += 1
                over += shortfall * 60.0
        replica_hours = billed_minutes / 60.0
        hours.append(
            HourScaling(
                hour,
                qps,
                targets[hour],
                replica_hours,
                ready_min,
                at_risk,
                qps * 3600.0,
                over,
                replica_hours * usd_per_replica_hour,
            )
        )
    weeks_per_month = HOURS_PER_MONTH / HOURS_PER_WEEK
    replica_hours_month = sum(h.billed_replica_hours for h in hours) * weeks_per_month
    requests = sum(h.requests for h in hours)
    static = max(1, *(math.ceil(qps / max_qps_per_replica - 1e-9) for qps in qps_by_hour))
    return AutoscaleResult(
        hours=tuple(hours),
        policy=policy,
        max_qps_per_replica=max_qps_per_replica,
        usd_per_replica_hour=usd_per_replica_hour,
        replica_hours_per_month=replica_hours_month,
        usd_per_month=replica_hours_month * usd_per_replica_hour,
        static_replicas=static,
        static_usd_per_month=static * usd_per_replica_hour * HOURS_PER_MONTH,
        hours_at_risk_per_week=sum(1 for h in hours if h.minutes_at_risk),
        share_requests_over_capacity=sum(h.requests_over_capacity for h in hours) / requests
        if requests
        else 0.0,
    )
