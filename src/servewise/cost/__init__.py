"""Dollars for a deployment: rental today (on-demand or spot), per hour, per 730-hour month, per million tokens.

Pure functions of catalog offers and plain numbers; no I/O.
"""

from ._rental import (
    HOURS_PER_MONTH,
    CostEstimate,
    LineItem,
    OfferChoice,
    Placement,
    allowed_offers,
    cheapest_rental,
    usd_per_million_tokens,
)

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
