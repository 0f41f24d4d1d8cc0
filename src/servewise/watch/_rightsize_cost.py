"""Dollars and SLO risk of a right-sizing recommendation.

**Dollars** come from the cost model: the cheapest whole-instance placement of ``replicas`` × ``tp`` GPUs under the
plan's pricing mode and providers (``cost.cheapest_rental``, as the planner prices options), per 730-hour month.
When the catalog no longer has an offer for the deployed GPU, the deployment's own price is scaled per replica (the
plan's $/hour ÷ its replicas). A saving is *current deployment − recommended deployment*, so savings of different
recommendations overlap (each replaces the current deployment; they do not add up).

**SLO risk** from the predicted margin at the observed one-minute peak λ, for a configuration of capacity c per
replica (the perf model's highest QPS per replica meeting every SLO target) and n replicas:

    margin = 1 − (λ / n) / c
    high    margin < 10 %, or a predicted p95 over its target
    medium  margin < 25 %, or n·c is below the plan's own peak QPS while the window is shorter than a day
            (the window may have missed the daily peak the plan was sized for)
    low     otherwise
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from servewise.catalog import CatalogSnapshot
from servewise.cost import HOURS_PER_MONTH, allowed_offers, cheapest_rental
from servewise.perf import LatencyPercentiles
from servewise.workload import Workload

from ._observation import WatchTarget

__all__ = ["DAY_S", "Pricing", "Risk", "predicted_p95_s", "slo_risk"]

Risk = Literal["low", "medium", "high"]
DAY_S = 86_400.0
HIGH_MARGIN = 0.10
MEDIUM_MARGIN = 0.25


@dataclass(frozen=True, slots=True)
class Pricing:
    """$/month of a number of replicas of (GPU, TP), from the catalog's offers (module docstring)."""

    snapshot: CatalogSnapshot
    workload: Workload
    target: WatchTarget

    def usd_per_month(self, gpu: str, tp: int, replicas: int) -> float | None:
        """None when no offer can host it (and it is not the deployed GPU and TP)."""
        if replicas <= 0:
            return 0.0
        constraints = self.workload.constraints
        offers = allowed_offers(
            self.snapshot.offers, gpu, pricing=constraints.pricing, providers=constraints.providers
        )
        traffic = self.workload.traffic
        cost = cheapest_rental(
            offers,
            tp=tp,
            replicas=replicas,
            pricing=constraints.pricing,
            avg_output_tokens_per_s=traffic.avg_qps * traffic.output_tokens.mean,
            avg_tokens_per_s=traffic.avg_qps * (traffic.output_tokens.mean + traffic.prompt_tokens.mean),
        )
        if cost is not None:
            return cost.usd_per_month
        if (gpu, tp) == (self.target.gpu, self.target.tp) and self.target.replicas > 0:
            return self.target.usd_per_hour / self.target.replicas * replicas * HOURS_PER_MONTH
        return None


def predicted_p95_s(
    ttft: LatencyPercentiles, itl: LatencyPercentiles, e2e: LatencyPercentiles
) -> dict[str, float]:
    """The p95s of a prediction in seconds, keyed as ``Recommendation.predicted_s``."""
    return {"ttft_p95": ttft.p95_ms / 1000.0, "itl_p95": itl.p95_ms / 1000.0, "e2e_p95": e2e.p95_ms / 1000.0}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}-s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}-minute"
    return f"{seconds / 3600:.1f}-hour"


def slo_risk(
    *,
    peak_qps: float,
    replicas: int,
    capacity_qps: float,
    predicted_s: Mapping[str, float],
    targets_s: Mapping[str, float],
    plan_peak_qps: float,
    window_s: float,
) -> tuple[Risk, str]:
    """The risk level and its one-line reason (module docstring)."""
    load = peak_qps / replicas
    margin = 1.0 - load / capacity_qps if capacity_qps > 0 else -1.0
    over = [
        f"{name} {predicted_s[name] * 1000:.4g} ms > {target * 1000:g} ms"
        for name, target in sorted(targets_s.items())
        if name in predicted_s and predicted_s[name] > target * (1 + 1e-9)
    ]
    reason = (
        f"{load:.3g} req/s per replica at the observed one-minute peak vs {capacity_qps:.3g} req/s capacity under "
        f"the SLO: {margin:.0%} margin"
    )
    if over:
        return "high", f"predicted {', '.join(over)}; {reason}"
    if margin < HIGH_MARGIN:
        return "high", reason
    short_window = window_s < DAY_S and replicas * capacity_qps < plan_peak_qps * (1 - 1e-9)
    if short_window:
        reason += (
            f"; the plan expected {plan_peak_qps:.3g} req/s at peak, over these replicas' "
            f"{replicas * capacity_qps:.3g} req/s, and a {_duration(window_s)} window may have missed that peak"
        )
    if margin < MEDIUM_MARGIN or short_window:
        return "medium", reason
    return "low", reason
