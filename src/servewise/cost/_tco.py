"""Total cost of ownership: one self-hosted deployment priced five ways, against hosted APIs, with a recommendation.

The deployment (GPU, TP, replicas, max QPS per replica at the SLO) comes from the planner; this module only prices
it. Per mode m the monthly cost at volume V is C_m(r(V)) (see ``_breakeven``), with C from ``rental_curve_usd_per_hour``
for rented modes and ``owned_cost`` for owned GPUs. The tier recommended is the cheapest at the workload's volume of

    API only      min over APIs of a·V
    hybrid        min over APIs of H(k) with the cheapest rented mode, 0 < k < r(V)
    self-host     min over rented modes of C_m(r(V))
    owned         C_owned(r(V))

each with the numbers that decide it. A commitment (reserved, owned) is only as cheap as shown while the volume
stays: the sustained break-even says from which volume that holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from servewise.catalog import Accelerator, ApiPrice, CloudOffer
from servewise.types import PricingMode

from ._api import ApiCost, api_cost
from ._breakeven import BreakEven, HybridSplit, StepCost, best_hybrid, break_even, volume_grid
from ._owned import OwnedCost, OwnedTerms, owned_cost
from ._pricing import PricingTerms
from ._rental import HOURS_PER_MONTH, LineItem, cheapest_rental, rental_curve_usd_per_hour

__all__ = [
    "RENTED_MODES",
    "SECONDS_PER_MONTH",
    "Deployment",
    "TcoOption",
    "TcoReport",
    "Tier",
    "tco_report",
]

SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
RENTED_MODES = (PricingMode.on_demand, PricingMode.spot, PricingMode.reserved_1y, PricingMode.reserved_3y)
OWNED = "owned"
MAX_STEPS = 1024
"""Replica counts priced for the break-even staircase; a break-even beyond it is reported as not found."""
CHART_POINTS = 121


class Tier(StrEnum):
    api_only = "api-only"
    hybrid = "hybrid"
    self_host = "self-host"
    owned = "owned"


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the planner chose, as plain numbers: the thing this module prices."""

    model: str
    gpu: Accelerator
    tp: int
    replicas: int
    max_qps_per_replica: float
    avg_qps: float
    peak_qps: float
    prompt_tokens: float
    output_tokens: float


@dataclass(frozen=True, slots=True)
class TcoOption:
    """One way to pay for the deployment; ``usd_per_month`` is None when it cannot be priced (``note`` says why)."""

    name: str
    usd_per_hour: float | None
    usd_per_month: float | None
    usd_per_1m_tokens: float | None
    line_items: tuple[LineItem, ...]
    note: str


@dataclass(frozen=True, slots=True)
class TcoReport:
    deployment: Deployment
    monthly_requests: float
    requests_per_replica_month: float
    options: tuple[TcoOption, ...]
    apis: tuple[ApiCost, ...]
    break_evens: tuple[BreakEven, ...]
    hybrid: HybridSplit | None
    hybrid_basis: str
    """Which API and rented mode the hybrid combines."""
    tier: Tier
    recommended: str
    recommended_usd_per_month: float
    reasons: tuple[str, ...]
    chart_volumes: tuple[float, ...]
    chart_series: tuple[tuple[str, tuple[float | None, ...]], ...]
    owned: OwnedCost | None


def _rented_option(
    mode: PricingMode, offers: Sequence[CloudOffer], d: Deployment, terms: PricingTerms
) -> TcoOption:
    tokens_per_s = d.avg_qps * (d.prompt_tokens + d.output_tokens)
    cost = cheapest_rental(
        offers,
        tp=d.tp,
        replicas=d.replicas,
        pricing=mode,
        avg_output_tokens_per_s=d.avg_qps * d.output_tokens,
        avg_tokens_per_s=tokens_per_s,
        terms=terms,
    )
    if cost is None:
        return TcoOption(str(mode), None, None, None, (), f"no {mode} offer hosts {d.tp}x{d.gpu.name}")
    note = ""
    if mode is PricingMode.spot:
        spot = sum(p.replicas for p in cost.placements if p.offer.pricing is PricingMode.spot)
        note = (
            f"{spot} spot replica(s) +{terms.spot_overhead:.0%} overhead, {d.replicas - spot} on the on-demand floor"
            if spot
            else f"all {d.replicas} replica(s) on the on-demand floor ({terms.on_demand_floor_share:.0%}, rounded up)"
        )
    elif mode in (PricingMode.reserved_1y, PricingMode.reserved_3y):
        note = f"{terms.discount(mode):.0%} off on-demand; paid for the whole term"
    return TcoOption(
        str(mode), cost.usd_per_hour, cost.usd_per_month, cost.usd_per_1m_tokens, cost.line_items, note
    )


def _owned_option(owned: OwnedCost | None, d: Deployment) -> TcoOption:
    if owned is None:
        return TcoOption(
            OWNED,
            None,
            None,
            None,
            (),
            f"no purchase price or TDP for {d.gpu.name} in the catalog: give --purchase-price-usd",
        )
    tokens = d.avg_qps * (d.prompt_tokens + d.output_tokens) * SECONDS_PER_MONTH
    per_1m = owned.usd_per_month / (tokens / 1e6) if tokens > 0 else math.inf
    guess = "purchase price is a GUESS; " if owned.price_is_guess else ""
    note = f"{guess}capex ${owned.capex_usd:,.0f} for {owned.gpus} GPUs"
    return TcoOption(OWNED, owned.usd_per_hour, owned.usd_per_month, per_1m, owned.line_items, note)


def tco_report(
    deployment: Deployment,
    offers: Sequence[CloudOffer],
    api_prices: Sequence[ApiPrice],
    *,
    terms: PricingTerms,
    owned_terms: OwnedTerms,
    purchase_usd: float | None = None,
    cached_share: float = 0.0,
) -> TcoReport:
    """Price ``deployment`` in every mode, against every API in ``api_prices``, and recommend a tier."""
    d = deployment
    monthly = d.avg_qps * SECONDS_PER_MONTH
    cap = d.max_qps_per_replica * SECONDS_PER_MONTH * (d.avg_qps / d.peak_qps if d.peak_qps > 0 else 1.0)
    options = [_rented_option(mode, offers, d, terms) for mode in RENTED_MODES]
    owned_one = owned_cost(d.gpu, d.tp, owned_terms, purchase_usd=purchase_usd)
    owned = owned_cost(d.gpu, d.tp * d.replicas, owned_terms, purchase_usd=purchase_usd)
    options.append(_owned_option(owned, d))

    steps: list[StepCost] = []
    for mode in RENTED_MODES:
        hourly = rental_curve_usd_per_hour(offers, tp=d.tp, max_replicas=MAX_STEPS, pricing=mode, terms=terms)
        if math.isfinite(hourly[0]):
            steps.append(StepCost(str(mode), cap, tuple(h * HOURS_PER_MONTH for h in hourly)))
    if owned_one is not None:
        per_replica = owned_one.usd_per_month
        steps.append(StepCost(OWNED, cap, tuple(per_replica * r for r in range(1, MAX_STEPS + 1))))

    apis = tuple(
        api_cost(
            p,
            prompt_tokens=d.prompt_tokens,
            output_tokens=d.output_tokens,
            cached_share=cached_share,
            monthly_requests=monthly,
        )
        for p in api_prices
    )
    break_evens = tuple(break_even(s, a.usd_per_request, api_model=a.model) for a in apis for s in steps)

    rented = [o for o in options if o.name != OWNED and o.usd_per_month is not None]
    best_rented = min(rented, key=lambda o: o.usd_per_month or math.inf, default=None)
    hybrid: HybridSplit | None = None
    basis = ""
    best_api = min(apis, key=lambda a: a.usd_per_month, default=None)
    if best_api is not None and best_rented is not None:
        step = next(s for s in steps if s.label == best_rented.name)
        hybrid = best_hybrid(step, best_api.usd_per_request, monthly)
        basis = f"{hybrid.local_replicas} {best_rented.name} replica(s) + {best_api.model} for the overflow"

    tier, label, usd, reasons = _recommend(
        options, best_rented, best_api, hybrid, basis, break_evens, monthly
    )
    volumes, series = _chart(steps, apis, break_evens, monthly)
    return TcoReport(
        deployment=d,
        monthly_requests=monthly,
        requests_per_replica_month=cap,
        options=tuple(options),
        apis=apis,
        break_evens=break_evens,
        hybrid=hybrid,
        hybrid_basis=basis,
        tier=tier,
        recommended=label,
        recommended_usd_per_month=usd,
        reasons=tuple(reasons),
        chart_volumes=volumes,
        chart_series=series,
        owned=owned,
    )


def _recommend(
    options: Sequence[TcoOption],
    best_rented: TcoOption | None,
    best_api: ApiCost | None,
    hybrid: HybridSplit | None,
    basis: str,
    break_evens: Sequence[BreakEven],
    monthly: float,
) -> tuple[Tier, str, float, list[str]]:
    owned = next(o for o in options if o.name == OWNED)
    candidates: list[tuple[float, Tier, str]] = []
    if best_api is not None:
        candidates.append((best_api.usd_per_month, Tier.api_only, f"API {best_api.model}"))
    if hybrid is not None and hybrid.local_replicas > 0 and hybrid.api_usd_per_month > 0:
        candidates.append((hybrid.usd_per_month, Tier.hybrid, f"hybrid: {basis}"))
    if best_rented is not None and best_rented.usd_per_month is not None:
        candidates.append((best_rented.usd_per_month, Tier.self_host, f"self-host {best_rented.name}"))
    if owned.usd_per_month is not None:
        candidates.append((owned.usd_per_month, Tier.owned, "owned GPUs"))
    if not candidates:
        return Tier.self_host, "none", math.inf, ["no option could be priced"]
    candidates.sort(key=lambda c: c[0])
    usd, tier, label = candidates[0]
    reasons = [f"{name}: ${cost:,.0f}/month" for cost, _, name in candidates]
    reasons.insert(0, f"workload volume: {monthly:,.0f} requests/month")
    if len(candidates) > 1:
        runner = candidates[1]
        saving = runner[0] - usd
        reasons.append(
            f"{label} is cheapest, ${saving:,.0f}/month ({saving / runner[0]:.0%}) below {runner[2]}"
            if runner[0] > 0
            else f"{label} is cheapest"
        )
    if best_api is not None and best_rented is not None:
        be = next(
            (b for b in break_evens if b.option == best_rented.name and b.api_model == best_api.model), None
        )
        if be is not None:
            reasons.append(_break_even_text(be))
    if tier is Tier.owned:
        reasons.append(
            "owning pays only if the volume lasts the amortisation period; the purchase price may be a GUESS"
        )
    return tier, label, usd, reasons


def _break_even_text(be: BreakEven) -> str:
    if be.first_requests_per_month is None:
        return f"{be.option} never costs less than {be.api_model} up to {be.range_max_requests:,.0f} requests/month"
    text = f"break-even {be.option} vs {be.api_model}: {be.first_requests_per_month:,.0f} requests/month"
    if (
        be.sustained_requests_per_month is not None
        and be.sustained_requests_per_month > be.first_requests_per_month
    ):
        text += f" (self-host stays cheaper from {be.sustained_requests_per_month:,.0f})"
    return text


def _chart(
    steps: Sequence[StepCost], apis: Sequence[ApiCost], break_evens: Sequence[BreakEven], monthly: float
) -> tuple[tuple[float, ...], tuple[tuple[str, tuple[float | None, ...]], ...]]:
    """Cost vs monthly requests, one series per option, from 0 to past the workload and the break-evens."""
    firsts = [b.first_requests_per_month for b in break_evens if b.first_requests_per_month is not None]
    top = max([2.0 * monthly, *(1.25 * f for f in firsts)], default=2.0 * monthly)
    limit = min((s.max_requests for s in steps), default=top)
    top = min(top, limit) if top > 0 else (steps[0].requests_per_replica_month if steps else 1.0)
    volumes = volume_grid(top, CHART_POINTS, [monthly, *firsts])
    series: list[tuple[str, tuple[float | None, ...]]] = []
    for s in steps:
        values = [s.usd_per_month(v) for v in volumes]
        series.append((s.label, tuple(v if math.isfinite(v) else None for v in values)))
    for a in apis:
        series.append((f"API {a.model}", tuple(a.usd_per_request * v for v in volumes)))
    return volumes, tuple(series)
