"""Renting GPU instances: the cheapest way to place ``replicas`` × ``tp`` GPUs on whole instances.

Instances are rented whole: an instance type with ``g`` GPUs hosts k = ⌊g / tp⌋ replicas, and GPUs left over are paid
for and idle. Within one provider and region, instance types can be mixed: the cheapest placement is the covering
knapsack

    cost(r) = min over types t of [ cost(max(0, r − k_t)) + price_t ],   cost(0) = 0

solved by dynamic programming up to r = replicas; the provider and region with the lowest cost(replicas) win.
Then usd_per_month = usd_per_hour × 730 and usd_per_1m_output_tokens = usd_per_month / (avg output tokens/s × 3600
× 730 / 10⁶). Prices are on-demand, or spot where the offer has a spot price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from servewise.catalog import CloudOffer
from servewise.types import PricingMode

__all__ = [
    "HOURS_PER_MONTH",
    "CostEstimate",
    "LineItem",
    "OfferChoice",
    "Placement",
    "allowed_offers",
    "cheapest_rental",
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


def _price(offer: CloudOffer, pricing: PricingMode) -> float | None:
    return offer.spot_price_per_hour_usd if pricing is PricingMode.spot else offer.price_per_hour_usd


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


def _cheapest_cover(
    types: Sequence[tuple[float, int, CloudOffer]], replicas: int
) -> tuple[float, dict[int, int]]:
    """Cheapest multiset of instance types hosting at least ``replicas``: (usd/h, {type index: instances})."""
    cost = [0.0] + [math.inf] * replicas
    pick = [-1] * (replicas + 1)
    for r in range(1, replicas + 1):
        for index, (price, per_instance, _) in enumerate(types):
            candidate = cost[max(0, r - per_instance)] + price
            if candidate < cost[r] - 1e-12:
                cost[r], pick[r] = candidate, index
    counts: dict[int, int] = {}
    r = replicas
    while r > 0:
        index = pick[r]
        counts[index] = counts.get(index, 0) + 1
        r = max(0, r - types[index][1])
    return cost[replicas], counts


def cheapest_rental(
    offers: Iterable[CloudOffer],
    *,
    tp: int,
    replicas: int,
    pricing: PricingMode,
    avg_output_tokens_per_s: float,
    avg_tokens_per_s: float,
) -> CostEstimate | None:
    """The cheapest whole-instance placement of ``replicas`` replicas of ``tp`` GPUs; None if no offer fits."""
    groups: dict[tuple[str, str], list[tuple[float, int, CloudOffer]]] = {}
    for offer in offers:
        price = _price(offer, pricing)
        per_instance = offer.gpu_count // tp
        if price is not None and per_instance >= 1:
            groups.setdefault((offer.provider, offer.region), []).append((price, per_instance, offer))
    best: tuple[float, tuple[str, str], dict[int, int]] | None = None
    for key in sorted(groups):
        types = sorted(groups[key], key=lambda t: (t[0] / t[1], t[2].instance_type))
        hourly, counts = _cheapest_cover(types, replicas)
        if best is None or hourly < best[0] - 1e-9:
            best = (hourly, key, counts)
    if best is None:
        return None
    hourly, key, counts = best
    types = sorted(groups[key], key=lambda t: (t[0] / t[1], t[2].instance_type))
    placements: list[Placement] = []
    left = replicas
    for index in sorted(counts, key=lambda i: -counts[i] * types[i][1]):
        price, per_instance, offer = types[index]
        hosted = min(left, counts[index] * per_instance)
        left -= hosted
        placements.append(Placement(_choice(offer, pricing, price), counts[index], hosted))
    instances = sum(p.instances for p in placements)
    idle = sum(p.instances * p.offer.gpus_per_instance for p in placements) - replicas * tp
    items = [
        LineItem(
            label="GPU instances",
            usd_per_hour=p.instances * p.offer.instance_usd_per_hour,
            detail=(
                f"{p.instances} x {p.offer.instance_type} ({p.offer.gpus_per_instance}x{p.offer.gpu}) at "
                f"${p.offer.instance_usd_per_hour:.4g}/h {pricing} on {p.offer.provider} {p.offer.region}, "
                f"{p.replicas} replica(s)"
            ),
        )
        for p in placements
    ]
    if idle:
        per_gpu = max(p.offer.instance_usd_per_hour / p.offer.gpus_per_instance for p in placements)
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
        placements=tuple(placements),
        instances=instances,
        idle_gpus=idle,
        line_items=tuple(items),
    )


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
