"""Renting GPU instances: the cheapest way to place ``replicas`` × ``tp`` GPUs on whole instances.

Instances are rented whole: an instance with ``g`` GPUs hosts ⌊g / tp⌋ replicas, so ``replicas`` need
⌈replicas / ⌊g / tp⌋⌉ instances, and GPUs left over are paid for and idle. Over the allowed offers for the GPU type:

    usd_per_hour   = instances × instance price (on-demand, or spot where the offer has a spot price)
    usd_per_month  = usd_per_hour × 730
    usd_per_1m_output_tokens = usd_per_month / (avg_qps × output_tokens × 3600 × 730 / 10⁶)
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
class CostEstimate:
    """What a deployment costs; every figure traces to ``offer`` (its source and date)."""

    usd_per_hour: float
    usd_per_month: float
    usd_per_1m_output_tokens: float
    usd_per_1m_tokens: float
    """Per million tokens processed, prompt and output together."""
    instances: int
    replicas_per_instance: int
    idle_gpus: int
    offer: OfferChoice
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
    best: tuple[float, CloudOffer, int, int] | None = None
    for offer in offers:
        price = _price(offer, pricing)
        per_instance = offer.gpu_count // tp
        if price is None or per_instance < 1:
            continue
        instances = math.ceil(replicas / per_instance)
        hourly = instances * price
        key = (hourly, offer.provider, offer.instance_type)
        if best is None or key < (best[0], best[1].provider, best[1].instance_type):
            best = (hourly, offer, instances, per_instance)
    if best is None:
        return None
    hourly, offer, instances, per_instance = best
    price = _price(offer, pricing)
    assert price is not None
    idle = instances * offer.gpu_count - replicas * tp
    monthly = hourly * HOURS_PER_MONTH
    items = [
        LineItem(
            label="GPU instances",
            usd_per_hour=hourly,
            detail=(
                f"{instances} x {offer.instance_type} ({offer.gpu_count}x{offer.gpu}) at ${price:.4g}/h "
                f"{pricing} on {offer.provider} {offer.region}"
            ),
        )
    ]
    if idle:
        items.append(
            LineItem(
                label="idle GPUs (included above)",
                usd_per_hour=idle * price / offer.gpu_count,
                detail=f"{idle} GPU(s) rented but unused: instances come in {offer.gpu_count}-GPU units",
            )
        )
    return CostEstimate(
        usd_per_hour=hourly,
        usd_per_month=monthly,
        usd_per_1m_output_tokens=usd_per_million_tokens(monthly, avg_output_tokens_per_s),
        usd_per_1m_tokens=usd_per_million_tokens(monthly, avg_tokens_per_s),
        instances=instances,
        replicas_per_instance=per_instance,
        idle_gpus=idle,
        offer=OfferChoice(
            provider=offer.provider,
            region=offer.region,
            instance_type=offer.instance_type,
            gpu=offer.gpu or "",
            gpus_per_instance=offer.gpu_count,
            pricing=pricing,
            instance_usd_per_hour=price,
            source=offer.source,
            as_of=offer.as_of,
        ),
        line_items=tuple(items),
    )
