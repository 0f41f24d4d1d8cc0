"""Where a hosted API stops being cheaper than self-hosting: a straight line against a staircase.

Self-hosting is provisioned for the peak, one replica at a time. With ``cap`` = monthly requests one replica
serves (its max QPS at the SLO × 3600 × 730 × avg/peak), a volume V needs r(V) = max(1, ⌈V / cap⌉) replicas and
costs C(r(V)) per month, a step function. The API costs a·V (a = $ per request), a line through 0.

On step r (volumes in ((r−1)·cap, r·cap]) the two cross at V* = max((r−1)·cap, C(r)/a) when V* ≤ r·cap.

* ``first_requests_per_month``: the smallest such V*, where self-hosting first costs no more than the API.
* ``sustained_requests_per_month``: the volume from which self-hosting stays cheaper on every later step within the
  range computed (just after each jump, C(r) ≤ a·(r−1)·cap). Past the first crossing the API can win again
  right after a jump to a new replica; this is where that stops.

A hybrid keeps k replicas for the first k·cap requests and sends the rest to the API:
H(k) = C(k) + a·max(0, V − k·cap), k = 0…r(V); k = 0 is API only and k = r(V) is self-host only. The overflow share
assumes the traffic scales as a whole (no diurnal shape): a conservative estimate of what a local pool absorbs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BreakEven", "HybridSplit", "StepCost", "best_hybrid", "break_even", "volume_grid"]


@dataclass(frozen=True, slots=True)
class StepCost:
    """Self-hosted $/month as a function of monthly requests: ``usd_per_month_by_replicas[r − 1]`` = C(r)."""

    label: str
    requests_per_replica_month: float
    usd_per_month_by_replicas: tuple[float, ...]

    def replicas_for(self, monthly_requests: float) -> int:
        return max(1, math.ceil(monthly_requests / self.requests_per_replica_month - 1e-9))

    def usd_per_month(self, monthly_requests: float) -> float:
        """C(r(V)); ``inf`` past the replicas computed or where no offer hosts that many."""
        r = self.replicas_for(monthly_requests)
        return self.cost(r)

    def cost(self, replicas: int) -> float:
        if replicas <= 0:
            return 0.0
        costs = self.usd_per_month_by_replicas
        return costs[replicas - 1] if replicas <= len(costs) else math.inf

    @property
    def max_requests(self) -> float:
        """The largest volume the computed steps cover."""
        return len(self.usd_per_month_by_replicas) * self.requests_per_replica_month


@dataclass(frozen=True, slots=True)
class BreakEven:
    option: str
    api_model: str
    first_requests_per_month: float | None
    """None: the API is cheaper at every volume computed."""
    sustained_requests_per_month: float | None
    """None: the API still wins right after some jump within the range computed."""
    range_max_requests: float


@dataclass(frozen=True, slots=True)
class HybridSplit:
    local_replicas: int
    usd_per_month: float
    local_usd_per_month: float
    api_usd_per_month: float
    local_share: float
    """Share of the monthly requests served locally."""


def break_even(step: StepCost, api_usd_per_request: float, *, api_model: str = "") -> BreakEven:
    """First and sustained crossing of the API line with the self-hosting staircase (see the module docstring)."""
    cap = step.requests_per_replica_month
    a = api_usd_per_request
    steps = len(step.usd_per_month_by_replicas)
    crossings: list[float | None] = []
    for r in range(1, steps + 1):
        low, high, cost = (r - 1) * cap, r * cap, step.cost(r)
        if a <= 0 or not math.isfinite(cost):
            crossings.append(None)
            continue
        v = max(low, cost / a)
        crossings.append(v if v <= high * (1 + 1e-12) else None)
    first = next((v for v in crossings if v is not None), None)
    sustained: float | None = None
    for r in range(steps, 0, -1):
        crossing = crossings[r - 1]
        if crossing is None:
            break
        sustained = crossing
        if crossing > (r - 1) * cap * (1 + 1e-12):  # the API wins at this step's start: stop here
            break
    return BreakEven(step.label, api_model, first, sustained, step.max_requests)


def best_hybrid(step: StepCost, api_usd_per_request: float, monthly_requests: float) -> HybridSplit:
    """The cheapest number of local replicas k for ``monthly_requests``, the rest to the API (k = 0 allowed)."""
    cap = step.requests_per_replica_month
    full = step.replicas_for(monthly_requests) if monthly_requests > 0 else 0
    api_only = api_usd_per_request * monthly_requests
    best = HybridSplit(0, api_only, 0.0, api_only, 0.0 if monthly_requests > 0 else 1.0)
    for k in range(1, full + 1):
        local = step.cost(k)
        overflow = max(0.0, monthly_requests - k * cap)
        total = local + api_usd_per_request * overflow
        if total < best.usd_per_month - 1e-9:
            share = 1.0 - overflow / monthly_requests
            best = HybridSplit(k, total, local, api_usd_per_request * overflow, share)
    return best


def volume_grid(max_requests: float, points: int, extra: Sequence[float] = ()) -> tuple[float, ...]:
    """``points`` evenly spaced volumes from 0 to ``max_requests`` plus ``extra`` ones (break-evens, the workload),
    sorted: the x axis of the break-even chart."""
    step = max_requests / max(1, points - 1)
    grid = {round(i * step, 6) for i in range(points)}
    grid.update(round(v, 6) for v in extra if 0 <= v <= max_requests)
    return tuple(sorted(grid))
