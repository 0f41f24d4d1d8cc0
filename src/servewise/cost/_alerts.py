"""Cost alerts as data: budget thresholds crossed and projected, and daily-spend anomalies.

The deploy stage (Prometheus rules, cloud budget alerts) and the gateway consume the same ``AlertPolicy`` so that
every place that alerts on spend agrees on when. Formulas, with B the monthly budget in USD, S the month-to-date
spend after day D of a month of M days:

    run rate          R = S / D                         (USD/day; the month's average so far)
    month-end spend   S_M = R × M
    threshold t %     T = B × t / 100, crossed now when S ≥ T
    crossing day      d = ⌈T / R⌉  — the first day whose end-of-day spend R × d reaches T; none when d > M or R = 0

Anomaly rule: the spend of day i is anomalous when it exceeds ``anomaly_factor`` × the baseline of the
``anomaly_window_days`` days before it (day i itself excluded). The baseline is the **median** by default: one
spike inside the window (often the very anomaly alerted on yesterday) moves a mean and can hide the next spike, the
median does not move. ``mean`` is available for spend that is steady. No day is judged before the window is full.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from servewise.errors import UsageError

__all__ = [
    "ALERT_POLICY_SCHEMA",
    "AlertPolicy",
    "Baseline",
    "BudgetAlertLevel",
    "BudgetStatus",
    "DailySpend",
    "PlanAlerts",
    "SpendAnomaly",
    "ThresholdStatus",
    "budget_alerts",
    "budget_alerts_from_daily",
    "check_daily_series",
    "plan_alerts",
    "spend_anomalies",
]

ALERT_POLICY_SCHEMA = "servewise.alert_policy/1"
"""Marker of the policy's JSON form; a field removed or changing meaning bumps the number."""


class Baseline(StrEnum):
    median = "median"
    mean = "mean"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When to alert on spend. Defaults: 80/95/100 % of the monthly budget, a day over 1.5× the trailing 7-day
    median. These are conventions (the usual budget-alert levels), not measured facts; every one is a flag."""

    budget_thresholds_pct: tuple[float, ...] = (80.0, 95.0, 100.0)
    anomaly_factor: float = 1.5
    anomaly_window_days: int = 7
    anomaly_baseline: Baseline = Baseline.median

    def __post_init__(self) -> None:
        if not self.budget_thresholds_pct:
            raise UsageError("budget_thresholds_pct: give at least one threshold, e.g. 80,95,100")
        for pct in self.budget_thresholds_pct:
            if not (math.isfinite(pct) and pct > 0):
                raise UsageError(
                    f"budget_thresholds_pct: each threshold must be a percentage > 0 (got {pct:g})"
                )
        if len(set(self.budget_thresholds_pct)) != len(self.budget_thresholds_pct):
            raise UsageError("budget_thresholds_pct: thresholds must be distinct")
        object.__setattr__(self, "budget_thresholds_pct", tuple(sorted(self.budget_thresholds_pct)))
        if not (math.isfinite(self.anomaly_factor) and self.anomaly_factor > 1.0):
            raise UsageError(
                f"anomaly_factor: must be > 1 (got {self.anomaly_factor:g}); 1.5 flags a day at +50 %"
            )
        if self.anomaly_window_days < 1:
            raise UsageError(f"anomaly_window_days: must be ≥ 1 (got {self.anomaly_window_days})")

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form that deploy and the gateway read."""
        return {
            "schema": ALERT_POLICY_SCHEMA,
            "budget_thresholds_pct": list(self.budget_thresholds_pct),
            "anomaly_factor": self.anomaly_factor,
            "anomaly_window_days": self.anomaly_window_days,
            "anomaly_baseline": str(self.anomaly_baseline),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertPolicy:
        if data.get("schema", ALERT_POLICY_SCHEMA) != ALERT_POLICY_SCHEMA:  # a plan's copy carries no marker
            raise UsageError(
                f"alert policy: expected schema {ALERT_POLICY_SCHEMA!r}, got {data.get('schema')!r}"
            )
        try:
            return cls(
                budget_thresholds_pct=tuple(float(p) for p in data["budget_thresholds_pct"]),
                anomaly_factor=float(data["anomaly_factor"]),
                anomaly_window_days=int(data["anomaly_window_days"]),
                anomaly_baseline=Baseline(data["anomaly_baseline"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UsageError(f"alert policy: malformed ({err})") from err


@dataclass(frozen=True, slots=True)
class BudgetAlertLevel:
    threshold_pct: float
    threshold_usd: float


@dataclass(frozen=True, slots=True)
class PlanAlerts:
    """The ``alerts`` block of a plan document: the policy and its thresholds in dollars for the plan's budget."""

    policy: AlertPolicy
    budget_usd_month: float | None
    budget_source: str
    """``workload`` (the workload's budget), ``chosen option`` (no budget given: the chosen plan's monthly cost) or
    ``none`` (neither, so no dollar thresholds)."""
    levels: tuple[BudgetAlertLevel, ...]


def plan_alerts(policy: AlertPolicy, budget_usd_month: float | None, budget_source: str) -> PlanAlerts:
    levels = (
        ()
        if budget_usd_month is None
        else tuple(BudgetAlertLevel(p, budget_usd_month * p / 100.0) for p in policy.budget_thresholds_pct)
    )
    return PlanAlerts(
        policy, budget_usd_month, budget_source if budget_usd_month is not None else "none", levels
    )


@dataclass(frozen=True, slots=True)
class ThresholdStatus:
    threshold_pct: float
    threshold_usd: float
    crossed: bool
    crossed_on_day: int | None
    """Day of month it was crossed, when known (daily spend given); None otherwise."""
    projected_day: int | None
    """For a threshold not crossed yet: the day of month it will be crossed at the current run rate, None when not
    this month."""


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget_usd_month: float
    spend_to_date_usd: float
    day_of_month: int
    days_in_month: int
    run_rate_usd_per_day: float
    projected_month_usd: float
    thresholds: tuple[ThresholdStatus, ...]

    @property
    def crossed(self) -> tuple[ThresholdStatus, ...]:
        return tuple(t for t in self.thresholds if t.crossed)


def _crossing_day(threshold_usd: float, rate_usd_per_day: float) -> int:
    days = threshold_usd / rate_usd_per_day
    rounded = round(days)
    return int(rounded) if math.isclose(days, rounded, rel_tol=1e-9) else math.ceil(days)


def budget_alerts(
    policy: AlertPolicy,
    *,
    budget_usd_month: float,
    spend_to_date_usd: float,
    day_of_month: int,
    days_in_month: int,
) -> BudgetStatus:
    """Thresholds crossed after ``day_of_month`` full days and where the month-average run rate takes the rest."""
    if not (math.isfinite(budget_usd_month) and budget_usd_month > 0):
        raise UsageError(f"budget: must be > 0 USD per month (got {budget_usd_month:g})")
    if not (math.isfinite(spend_to_date_usd) and spend_to_date_usd >= 0):
        raise UsageError(f"spend to date: must be ≥ 0 USD (got {spend_to_date_usd:g})")
    if not 28 <= days_in_month <= 31:
        raise UsageError(f"days in month: must be 28..31 (got {days_in_month})")
    if not 1 <= day_of_month <= days_in_month:
        raise UsageError(f"day of month: must be 1..{days_in_month} (got {day_of_month})")
    rate = spend_to_date_usd / day_of_month
    statuses = []
    for pct in policy.budget_thresholds_pct:
        threshold = budget_usd_month * pct / 100.0
        crossed = spend_to_date_usd >= threshold * (1 - 1e-12)
        projected: int | None = None
        if not crossed and rate > 0:
            day = _crossing_day(threshold, rate)
            projected = day if day <= days_in_month else None
        statuses.append(ThresholdStatus(pct, threshold, crossed, None, projected))
    return BudgetStatus(
        budget_usd_month=budget_usd_month,
        spend_to_date_usd=spend_to_date_usd,
        day_of_month=day_of_month,
        days_in_month=days_in_month,
        run_rate_usd_per_day=rate,
        projected_month_usd=rate * days_in_month,
        thresholds=tuple(statuses),
    )


def budget_alerts_from_daily(
    policy: AlertPolicy, *, budget_usd_month: float, daily_usd: Sequence[float], days_in_month: int
) -> BudgetStatus:
    """``budget_alerts`` from the spend of each day since the 1st, which also tells the day each crossing happened."""
    if not daily_usd:
        raise UsageError("daily spend: need at least the 1st of the month")
    status = budget_alerts(
        policy,
        budget_usd_month=budget_usd_month,
        spend_to_date_usd=math.fsum(daily_usd),
        day_of_month=len(daily_usd),
        days_in_month=days_in_month,
    )
    cumulative, running = [], 0.0
    for usd in daily_usd:
        running += usd
        cumulative.append(running)
    thresholds = []
    for t in status.thresholds:
        day = next((i + 1 for i, c in enumerate(cumulative) if c >= t.threshold_usd * (1 - 1e-12)), None)
        thresholds.append(
            ThresholdStatus(
                t.threshold_pct, t.threshold_usd, t.crossed, day if t.crossed else None, t.projected_day
            )
        )
    return BudgetStatus(
        budget_usd_month=status.budget_usd_month,
        spend_to_date_usd=status.spend_to_date_usd,
        day_of_month=status.day_of_month,
        days_in_month=status.days_in_month,
        run_rate_usd_per_day=status.run_rate_usd_per_day,
        projected_month_usd=status.projected_month_usd,
        thresholds=tuple(thresholds),
    )


@dataclass(frozen=True, slots=True)
class DailySpend:
    day: date
    usd: float


@dataclass(frozen=True, slots=True)
class SpendAnomaly:
    day: date
    usd: float
    baseline_usd: float
    ratio: float | None
    """usd / baseline_usd; None when the baseline is 0 (any spend after a window of none is flagged)."""


def check_daily_series(series: Sequence[DailySpend]) -> list[DailySpend]:
    """The series sorted by day; a duplicate day, a gap or a negative amount is an error, because a missing day
    would silently shift the trailing window and the month-to-date."""
    ordered = sorted(series, key=lambda d: d.day)
    for previous, current in itertools.pairwise(ordered):
        if current.day == previous.day:
            raise UsageError(f"daily spend: {current.day} appears twice; give one total per day")
        if current.day - previous.day != timedelta(days=1):
            missing = previous.day + timedelta(days=1)
            raise UsageError(f"daily spend: no row for {missing}; add one (spend 0 if nothing was spent)")
    for point in ordered:
        if not (math.isfinite(point.usd) and point.usd >= 0):
            raise UsageError(f"daily spend: {point.day} has {point.usd:g} USD; spend must be ≥ 0")
    return ordered


def spend_anomalies(policy: AlertPolicy, series: Sequence[DailySpend]) -> list[SpendAnomaly]:
    """Days whose spend exceeds ``anomaly_factor`` × the baseline of the window before them."""
    ordered = check_daily_series(series)
    window = policy.anomaly_window_days
    summary = statistics.median if policy.anomaly_baseline is Baseline.median else statistics.fmean
    found = []
    for index in range(window, len(ordered)):
        baseline = float(summary([d.usd for d in ordered[index - window : index]]))
        point = ordered[index]
        if point.usd > policy.anomaly_factor * baseline:
            ratio = point.usd / baseline if baseline > 0 else None
            found.append(SpendAnomaly(point.day, point.usd, baseline, ratio))
    return found
