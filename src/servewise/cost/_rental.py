"""Renting GPU instances: the cheapest way to place ``replicas`` × ``tp`` GPUs on whole instances.

Instances are rented whole: an instance type with ``g`` GPUs hosts k = ⌊g / tp⌋ replicas, and GPUs left over are paid
for and idle. Within one provider and region, instance types can be mixed: the cheapest placement is the covering
knapsack

    cost(r) = min over types t of [ cost(max(0, r − k_t)) + price_t ],   cost(0) = 0

solved by dynamic programming up to r = replicas; the provider and region with the lowest cost(replicas) win.
Then usd_per_month = usd_per_hour × 730 and usd_per_1m_output_tokens = usd_per_month / (avg output tokens/s × 3600
× 730 / 10⁶). Prices per mode are in ``_pricing``: on-demand; reserved (on-demand less the commitment discount);
spot where the offer has a spot price, with the on-demand floor placed as a second knapsack in the same provider
and region and the interruption overhead on the spot part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from servewise.catalog import CloudOffer
from servewise.types import PricingMode

from ._pricing import LIST_TERMS, PRICING_SOURCES, PricingTerms, listed_price, on_demand_replicas

__all__ = [
    "HOURS_PER_MONTH",
    "CostEstimate",
    "LineItem",
    "OfferChoice",
    "Placement",
    "allowed_offers",
    "cheapest_rental",
    "rental_curve_usd_per_hour",
    "usd_per_million_tokens",
]

HOURS_PER_MONTH = 730.0
"""Average hours in a month (8760 / 12), the convention of cloud price calculators."""


@dataclass(frozen=True, slots=True)
class OfferChoice:
    provider: str
    region: str
    instance_type: str
    gpu: str
    gpus_per_instance: int
    pricing: PricingMode
    instance_usd_per_hour: float
    source: str
    as_of: date | None


@dataclass(frozen=True, slots=True)
class LineItem:
    label: str
    usd_per_hour: float
    detail: str


@dataclass(frozen=True, slots=True)
class Placement:
    """``instances`` of one offer, hosting ``replicas`` replicas."""

    offer: OfferChoice
    instances: int
    replicas: int


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a deployment costs; every figure traces to the offers placed (their source and date)."""

    usd_per_hour: float
    usd_per_month: float
    usd_per_1m_output_tokens: float
    usd_per_1m_tokens: float
    """Per million tokens processed, prompt and output together."""
    placements: tuple[Placement, ...]
    """Most replicas first; all in one provider and region."""
    instances: int
    idle_gpus: int
    line_items: tuple[LineItem, ...]


def _price(offer: CloudOffer, pricing: PricingMode, terms: PricingTerms = LIST_TERMS) -> float | None:
    return listed_price(offer, pricing, terms)


def allowed_offers(
    offers: Iterable[CloudOffer], gpu: str, *, pricing: PricingMode, providers: Sequence[str] = ()
) -> list[CloudOffer]:
    """Offers of ``gpu`` with a price in ``pricing`` mode from ``providers`` (all when empty)."""
    wanted = {p.casefold() for p in providers}
    return [
        o
        for o in offers
        if o.gpu == gpu
        and o.gpu_count > 0
        and _price(o, pricing) is not None
        and (not wanted or o.provider.casefold() in wanted)
    ]


def usd_per_million_tokens(usd_per_month: float, tokens_per_second: float) -> float:
    """Dollars per million tokens at a steady ``tokens_per_second`` over a 730-hour month."""
    tokens = tokens_per_second * 3600.0 * HOURS_PER_MONTH
    return math.inf if tokens <= 0 else usd_per_month / (tokens / 1e6)


_Type = tuple[float, int, CloudOffer]
"""(instance $/h in the mode, replicas one instance hosts, the offer)."""


def _cover_table(types: Sequence[_Type], replicas: int) -> tuple[list[float], list[int]]:
    """cost[r] = cheapest $/h hosting at least r replicas, and the instance type picked last, for r = 0…replicas."""
    cost = [0.0] + [math.inf] * replicas
    pick = [-1] * (replicas + 1)
    for r in range(1, replicas + 1):
        for index, (price, per_instance, _) in enumerate(types):
            candidate = cost[max(0, r - per_instance)] + price
            if candidate < cost[r] - 1e-12:
                cost[r], pick[r] = candidate, index
    return cost, pick


def _counts(types: Sequence[_Type], pick: Sequence[int], replicas: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    r = replicas
    while r > 0:
        index = pick[r]
        counts[index] = counts.get(index, 0) + 1
        r = max(0, r - types[index][1])
    return counts


def _groups(
    offers: Sequence[CloudOffer], tp: int, pricing: PricingMode, terms: PricingTerms
) -> dict[tuple[str, str], list[_Type]]:
    """Instance types per (provider, region) that host at least one replica, cheapest per replica first."""
    groups: dict[tuple[str, str], list[_Type]] = {}
    for offer in offers:
        price = listed_price(offer, pricing, terms)
        per_instance = offer.gpu_count // tp
        if price is not None and per_instance >= 1:
            groups.setdefault((offer.provider, offer.region), []).append((price, per_instance, offer))
    for types in groups.values():
        types.sort(key=lambda t: (t[0] / t[1], t[2].instance_type))
    return groups


@dataclass(frozen=True, slots=True)
class _Tranche:
    """Replicas priced in one mode: all of them, or in spot mode the spot part and the on-demand floor."""

    pricing: PricingMode
    replicas: int
    multiplier: float
    groups: dict[tuple[str, str], list[_Type]]


def _tranches(
    offers: Sequence[CloudOffer], tp: int, replicas: int, pricing: PricingMode, terms: PricingTerms
) -> list[_Tranche]:
    if pricing is not PricingMode.spot:
        return [_Tranche(pricing, replicas, 1.0, _groups(offers, tp, pricing, terms))]
    floor = on_demand_replicas(replicas, terms)
    return [
        _Tranche(pricing, replicas - floor, 1.0 + terms.spot_overhead, _groups(offers, tp, pricing, terms)),
        _Tranche(PricingMode.on_demand, floor, 1.0, _groups(offers, tp, PricingMode.on_demand, terms)),
    ]


def cheapest_rental(
    offers: Iterable[CloudOffer],
    *,
    tp: int,
    replicas: int,
    pricing: PricingMode,
    avg_output_tokens_per_s: float,
    avg_tokens_per_s: float,
    terms: PricingTerms = LIST_TERMS,
) -> CostEstimate | None:
    """The cheapest whole-instance placement of ``replicas`` replicas of ``tp`` GPUs; None if no offer fits.

    ``terms`` sets the reserved discounts and, in spot mode, the interruption overhead and the on-demand floor;
    the default prices spot as listed (what the planner ranks by)."""
    tranches = [t for t in _tranches(list(offers), tp, replicas, pricing, terms) if t.replicas > 0]
    keys = set.intersection(*(set(t.groups) for t in tranches)) if tranches else set()
    best: tuple[float, tuple[str, str], list[dict[int, int]]] | None = None
    for key in sorted(keys):
        hourly, picks = 0.0, []
        for tranche in tranches:
            types = tranche.groups[key]
            cost, pick = _cover_table(types, tranche.replicas)
            hourly += cost[tranche.replicas] * tranche.multiplier
            picks.append(_counts(types, pick, tranche.replicas))
        if best is None or hourly < best[0] - 1e-9:
            best = (hourly, key, picks)
    if best is None:
        return None
    hourly, key, picks = best
    placements: list[tuple[Placement, _Tranche]] = []
    for tranche, counts in zip(tranches, picks, strict=True):
        types = tranche.groups[key]
        left = tranche.replicas
        for index in sorted(counts, key=lambda i: -counts[i] * types[i][1]):
            price, per_instance, offer = types[index]
            hosted = min(left, counts[index] * per_instance)
            left -= hosted
            choice = _choice(offer, tranche.pricing, price)
            placements.append((Placement(choice, counts[index], hosted), tranche))
    placements.sort(key=lambda pt: -pt[0].replicas)
    instances = sum(p.instances for p, _ in placements)
    idle = sum(p.instances * p.offer.gpus_per_instance for p, _ in placements) - replicas * tp
    items = [_instance_item(p, pricing, terms) for p, _ in placements]
    overhead = sum(
        p.instances * p.offer.instance_usd_per_hour * (t.multiplier - 1.0)
        for p, t in placements
        if t.multiplier != 1
    )
    if overhead > 0:
        items.append(
            LineItem(
                label="spot interruption overhead",
                usd_per_hour=overhead,
                detail=f"+{terms.spot_overhead:.0%} of the spot instances: {PRICING_SOURCES['spot_overhead']}",
            )
        )
    if idle:
        per_gpu = max(p.offer.instance_usd_per_hour / p.offer.gpus_per_instance for p, _ in placements)
        items.append(
            LineItem(
                label="idle GPUs (included above)",
                usd_per_hour=idle * per_gpu,
                detail=f"{idle} GPU(s) rented but unused: instances come in whole units",
            )
        )
    monthly = hourly * HOURS_PER_MONTH
    return CostEstimate(
        usd_per_hour=hourly,
        usd_per_month=monthly,
        usd_per_1m_output_tokens=usd_per_million_tokens(monthly, avg_output_tokens_per_s),
        usd_per_1m_tokens=usd_per_million_tokens(monthly, avg_tokens_per_s),
        placements=tuple(p for p, _ in placements),
        instances=instances,
        idle_gpus=idle,
        line_items=tuple(items),
    )


def rental_curve_usd_per_hour(
    offers: Iterable[CloudOffer],
    *,
    tp: int,
    max_replicas: int,
    pricing: PricingMode,
    terms: PricingTerms = LIST_TERMS,
) -> tuple[float, ...]:
    """``cheapest_rental(...).usd_per_hour`` for replicas = 1…max_replicas in one pass (``inf`` where none fits):
    the step function a break-even needs, without re-solving the knapsack per point."""
    offers = list(offers)
    best = [math.inf] * max_replicas
    floors = [
        on_demand_replicas(r, terms) if pricing is PricingMode.spot else 0 for r in range(1, max_replicas + 1)
    ]
    main = _groups(offers, tp, pricing, terms)
    backup = _groups(offers, tp, PricingMode.on_demand, terms) if any(floors) else {}
    multiplier = 1.0 + terms.spot_overhead if pricing is PricingMode.spot else 1.0
    for key in sorted(set(main) | set(backup)):
        main_cost = (
            _cover_table(main[key], max_replicas)[0] if key in main else [0.0] + [math.inf] * max_replicas
        )
        top_floor = max(floors)
        backup_cost = (
            _cover_table(backup[key], top_floor)[0] if key in backup else [0.0] + [math.inf] * top_floor
        )
        for r in range(1, max_replicas + 1):
            floor = floors[r - 1]
            value = main_cost[r - floor] * multiplier + backup_cost[floor]
            if value < best[r - 1]:
                best[r - 1] = value
    return tuple(best)


def _instance_item(placement: Placement, mode: PricingMode, terms: PricingTerms) -> LineItem:
    p = placement
    label = "GPU instances"
    if mode is PricingMode.spot and p.offer.pricing is PricingMode.on_demand:
        label = "GPU instances (on-demand floor)"
    detail = (
        f"{p.instances} x {p.offer.instance_type} ({p.offer.gpus_per_instance}x{p.offer.gpu}) at "
        f"${p.offer.instance_usd_per_hour:.4g}/h {p.offer.pricing} on {p.offer.provider} {p.offer.region}, "
        f"{p.replicas} replica(s)"
    )
    discount = terms.discount(p.offer.pricing)
    if discount:
        source = PRICING_SOURCES[f"{p.offer.pricing.name}_discount"]
        detail += f"; {discount:.0%} off on-demand ({source})"
    return LineItem(label=label, usd_per_hour=p.instances * p.offer.instance_usd_per_hour, detail=detail)


def _choice(offer: CloudOffer, pricing: PricingMode, price: float) -> OfferChoice:
    return OfferChoice(
        provider=offer.provider,
        region=offer.region,
        instance_type=offer.instance_type,
        gpu=offer.gpu or "",
        gpus_per_instance=offer.gpu_count,
        pricing=pricing,
        instance_usd_per_hour=price,
        source=offer.source,
        as_of=offer.as_of,
    )
