"""Pricing terms of rented GPUs: what a spot hour and a committed hour really cost next to the on-demand list price.

The catalog has on-demand and (for some offers) spot prices, and no reserved prices, so the commitment discounts
are defaults with a public source, and the spot terms are labelled assumptions. Every one is a field of
``PricingTerms`` (a CLI flag) and is printed with its source by ``servewise tco``.

    on-demand     p_od                                       listed per instance-hour
    spot          p_spot × (1 + spot_overhead)               for r_spot = r − r_od replicas, where
                  r_od = min(r, max(floor_replicas, ⌈floor_share × r⌉)) replicas stay on on-demand at p_od
    reserved-Ny   p_od × (1 − discount_Ny)                   a 1- or 3-year commitment, paid whether used or not

The interruption overhead stands for capacity lost while a reclaimed replica is replaced (cold start, in-flight
requests retried) and for the spare capacity kept to absorb it; the on-demand floor keeps serving when the spot
market takes every spot instance at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from servewise.catalog import CloudOffer
from servewise.errors import UsageError
from servewise.types import PricingMode

__all__ = [
    "DEFAULT_TERMS",
    "LIST_TERMS",
    "PRICING_SOURCES",
    "PricingTerms",
    "listed_price",
    "on_demand_replicas",
]

RESERVED_1Y_SOURCE = (
    "assumption: 37% = Google Cloud resource-based committed-use discount, 1 year, as summarised at "
    "https://lillytechsystems.com/ai-school/gcp-ai-cost/cuds.html (third-party; AWS EC2 Instance Savings Plans "
    "advertise up to 72%, https://aws.amazon.com/savingsplans/); not a quote for your instance"
)
RESERVED_3Y_SOURCE = (
    "assumption: 55% = Google Cloud's 'up to 55% for most resources like machine types or GPUs', 3 years, "
    "https://cloud.google.com/compute/docs/instances/signing-up-committed-use-discounts; not a quote for your "
    "instance"
)
SPOT_OVERHEAD_SOURCE = (
    "assumption: 10% extra capacity and re-provisioning time for reclaimed spot replicas (AWS reports interruption "
    "frequency per instance type in bands from <5% to >20% a month, https://aws.amazon.com/ec2/spot/instance-advisor/)"
)
FLOOR_SOURCE = (
    "assumption: 20% of replicas on on-demand, the low end of the 20-30% on-demand baseline commonly advised for "
    "spot fleets (https://finopsforge.com/aws-spot-instances-guide, third-party)"
)

PRICING_SOURCES = {
    "spot_overhead": SPOT_OVERHEAD_SOURCE,
    "on_demand_floor_share": FLOOR_SOURCE,
    "on_demand_floor_replicas": "assumption: no fixed minimum beyond the share",
    "reserved_1y_discount": RESERVED_1Y_SOURCE,
    "reserved_3y_discount": RESERVED_3Y_SOURCE,
}
"""Where each default of ``PricingTerms`` comes from, printed next to it."""


@dataclass(frozen=True, slots=True)
class PricingTerms:
    """The knobs that turn listed prices into what a mode costs; defaults are the ``servewise tco`` defaults."""

    spot_overhead: float = 0.10
    """Fraction added to the spot price of every spot replica-hour (interruption overhead)."""
    on_demand_floor_share: float = 0.20
    """Share of replicas (rounded up) that stay on on-demand in spot mode."""
    on_demand_floor_replicas: int = 0
    """Minimum replicas on on-demand in spot mode, whatever the share."""
    reserved_1y_discount: float = 0.37
    reserved_3y_discount: float = 0.55

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spot_overhead) and self.spot_overhead >= 0):
            raise UsageError(f"--spot-overhead must be ≥ 0 (got {self.spot_overhead:g}); 0.1 means +10%")
        if not 0 <= self.on_demand_floor_share <= 1:
            raise UsageError(
                f"--on-demand-floor must be in [0, 1] (got {self.on_demand_floor_share:g}); 0.2 keeps 20% on-demand"
            )
        if self.on_demand_floor_replicas < 0:
            raise UsageError(f"--on-demand-floor-replicas must be ≥ 0 (got {self.on_demand_floor_replicas})")
        for flag, value in (
            ("--reserved-1y-discount", self.reserved_1y_discount),
            ("--reserved-3y-discount", self.reserved_3y_discount),
        ):
            if not 0 <= value < 1:
                raise UsageError(f"{flag} must be in [0, 1) (got {value:g}); 0.37 means 37% off on-demand")

    def discount(self, pricing: PricingMode) -> float:
        """Fraction taken off the on-demand price (0 for on-demand and spot)."""
        if pricing is PricingMode.reserved_1y:
            return self.reserved_1y_discount
        if pricing is PricingMode.reserved_3y:
            return self.reserved_3y_discount
        return 0.0


DEFAULT_TERMS = PricingTerms()
LIST_TERMS = dataclasses.replace(DEFAULT_TERMS, spot_overhead=0.0, on_demand_floor_share=0.0)
"""Spot at its listed price with no floor: what ``servewise plan --pricing spot`` ranks by (a uniform overhead
would not change the ranking). ``servewise tco`` uses ``DEFAULT_TERMS``."""


def listed_price(offer: CloudOffer, pricing: PricingMode, terms: PricingTerms) -> float | None:
    """Instance $/h in ``pricing`` mode before spot overhead; None when the offer has no such price."""
    if pricing is PricingMode.spot:
        return offer.spot_price_per_hour_usd
    return offer.price_per_hour_usd * (1.0 - terms.discount(pricing))


def on_demand_replicas(replicas: int, terms: PricingTerms) -> int:
    """Replicas of a spot deployment kept on on-demand (the floor)."""
    floor = max(terms.on_demand_floor_replicas, math.ceil(terms.on_demand_floor_share * replicas - 1e-9))
    return min(replicas, floor)
