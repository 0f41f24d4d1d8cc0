"""Hosted LLM APIs: dollars per request and per month from the catalog's per-token prices.

    usd_per_request = [prompt × (1 − cached_share) × input + prompt × cached_share × cached_input
                       + output × output_price] / 10⁶
    usd_per_month   = usd_per_request × monthly_requests

``cached_share`` is the share of prompt tokens billed at the cached-input price (the workload's prefix share by
default); where the catalog has no cached price, those tokens pay the full input price.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from servewise.catalog import ApiPrice
from servewise.errors import UnknownNameError, UsageError

__all__ = ["ApiCost", "api_cost", "find_api_price"]


@dataclass(frozen=True, slots=True)
class ApiCost:
    """One hosted model at a monthly volume; the price keeps its source and date."""

    provider: str
    model: str
    usd_per_request: float
    usd_per_month: float
    input_usd_per_month: float
    cached_input_usd_per_month: float
    output_usd_per_month: float
    cached_share: float
    cached_price_known: bool
    source: str
    as_of: str


def find_api_price(prices: Sequence[ApiPrice], name: str) -> ApiPrice:
    """The catalog row for ``name``: the exact model id, else the part after the last ``/``
    (``gemini-2.5-flash`` finds ``gemini/gemini-2.5-flash``), case-insensitively."""
    folded = name.casefold()
    exact = [p for p in prices if p.model.casefold() == folded]
    found = exact or [p for p in prices if p.model.casefold().rsplit("/", 1)[-1] == folded]
    if len(found) == 1:
        return found[0]
    if found:
        choices = ", ".join(sorted(p.model for p in found))
        raise UsageError(f"API model {name!r} is ambiguous: use one of {choices}")
    raise UnknownNameError(
        "API model",
        name,
        [p.model for p in prices] + [p.model.rsplit("/", 1)[-1] for p in prices],
        hint="See `servewise catalog list api-prices` for the full list.",
    )


def api_cost(
    price: ApiPrice,
    *,
    prompt_tokens: float,
    output_tokens: float,
    cached_share: float,
    monthly_requests: float,
) -> ApiCost:
    """What ``monthly_requests`` requests of the given mean lengths cost on ``price``."""
    if not 0 <= cached_share <= 1:
        raise UsageError(f"--api-cached-share must be in [0, 1] (got {cached_share:g})")
    if not (math.isfinite(monthly_requests) and monthly_requests >= 0):
        raise UsageError(f"monthly requests must be ≥ 0 (got {monthly_requests:g})")
    cached_price = price.cached_input_per_1m_usd
    cached_rate = price.input_per_1m_usd if cached_price is None else cached_price
    fresh = prompt_tokens * (1 - cached_share) * price.input_per_1m_usd / 1e6
    cached = prompt_tokens * cached_share * cached_rate / 1e6
    output = output_tokens * price.output_per_1m_usd / 1e6
    per_request = fresh + cached + output
    return ApiCost(
        provider=price.provider,
        model=price.model,
        usd_per_request=per_request,
        usd_per_month=per_request * monthly_requests,
        input_usd_per_month=fresh * monthly_requests,
        cached_input_usd_per_month=cached * monthly_requests,
        output_usd_per_month=output * monthly_requests,
        cached_share=cached_share,
        cached_price_known=cached_price is not None,
        source=price.source,
        as_of=price.as_of.isoformat() if price.as_of else "unknown (see `servewise catalog health`)",
    )
