"""What one token costs on each route, so local pools and hosted APIs sit on one ledger in dollars.

Hosted APIs: the catalog's ``api_prices`` row for the route's ``model`` (``servewise.cost.find_api_price``; its
source and date travel in ``RoutePrice.source``), unless the config gives both per-1M prices.

Local pools: the pool's dollars per hour spread over the tokens it serves at its *planned* throughput, one price
for input and output tokens alike. From a plan, that is the option's ``cost.usd_per_1m_tokens`` (the plan's
$/month over its average input+output tokens/s); by hand, ``usd_per_hour / (3600 × tokens_per_s) × 1e6``. This is
an allocation, not a meter: when the pool serves fewer tokens than planned, the hours it idles are not charged to
any request (docs/gateway.md, "Pricing"). Money is counted in integer micro-dollars: worst cases round up (a
reservation never under-reserves), settled costs round to nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servewise.catalog import open_catalog
from servewise.cost import find_api_price
from servewise.errors import UsageError
from servewise.planner import load_plan_document

from ._config import ApiConfig, GatewayConfig, PoolConfig

__all__ = ["MICRO_USD_PER_USD", "RoutePrice", "api_price", "pool_price", "route_prices"]

MICRO_USD_PER_USD = 1_000_000


@dataclass(frozen=True, slots=True)
class RoutePrice:
    """Dollars per million input and output tokens on one route, and where the numbers come from."""

    usd_per_1m_input: float
    usd_per_1m_output: float
    source: str

    def worst_case_micro_usd(self, prompt_tokens: int, max_tokens: int) -> int:
        """The most a request can cost (its reservation): rounded up to the next micro-dollar."""
        return math.ceil(self._micro(prompt_tokens, max_tokens) - 1e-9)

    def cost_micro_usd(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What a served request costs (its settlement): rounded to the nearest micro-dollar."""
        return round(self._micro(prompt_tokens, completion_tokens))

    def _micro(self, prompt_tokens: int, completion_tokens: int) -> float:
        # usd_per_1m × tokens / 1e6 dollars = usd_per_1m × tokens micro-dollars
        return self.usd_per_1m_input * prompt_tokens + self.usd_per_1m_output * completion_tokens


def _plan_option(plan: dict[str, Any], rank: int | None, path: Path) -> dict[str, Any]:
    options = plan.get("options") or []
    if rank is None:
        chosen = plan.get("chosen")
        if not isinstance(chosen, int) or not 0 <= chosen < len(options):
            raise UsageError(f"plan {path} has no chosen option; set `option: RANK` on the pool")
        picked: dict[str, Any] = options[chosen]
        return picked
    for option in options:
        if option.get("rank") == rank:
            found: dict[str, Any] = option
            return found
    ranks = ", ".join(str(o.get("rank")) for o in options) or "none"
    raise UsageError(f"plan {path} has no option of rank {rank} (ranks: {ranks}); fix `option` of the pool")


def pool_price(pool: PoolConfig) -> RoutePrice:
    """A local pool's price per token (module docstring): from the plan option, or $/hour over tokens/s."""
    if pool.plan is not None:
        option = _plan_option(load_plan_document(pool.plan), pool.option, pool.plan)
        cost = option.get("cost") or {}
        per_1m = cost.get("usd_per_1m_tokens")
        if not isinstance(per_1m, int | float) or not math.isfinite(per_1m) or per_1m < 0:
            raise UsageError(
                f"pool {pool.name!r}: plan {pool.plan} option {option.get('rank')} has no usable "
                "cost.usd_per_1m_tokens; re-run `servewise plan -o` or price the pool by hand "
                "(usd_per_hour, tokens_per_s)"
            )
        source = f"plan {pool.plan.name} option {option.get('rank')}: cost.usd_per_1m_tokens at planned load"
        return RoutePrice(float(per_1m), float(per_1m), source)
    assert pool.usd_per_hour is not None and pool.tokens_per_s is not None  # the config checked both
    per_1m = pool.usd_per_hour / (3600.0 * pool.tokens_per_s) * 1e6
    source = f"${pool.usd_per_hour:g}/h over {pool.tokens_per_s:g} tokens/s planned (config)"
    return RoutePrice(per_1m, per_1m, source)


def api_price(api: ApiConfig, db_url: str | None = None) -> RoutePrice:
    """A hosted API's price: the config's per-1M prices, else the catalog row for ``api.model``."""
    if api.usd_per_1m_input is not None and api.usd_per_1m_output is not None:
        return RoutePrice(api.usd_per_1m_input, api.usd_per_1m_output, "config")
    with open_catalog(db_url) as catalog:
        row = find_api_price(catalog.api_prices(), api.model)
    as_of = f" as of {row.as_of}" if row.as_of else ""
    source = f"catalog api_prices {row.provider}/{row.model}: {row.source}{as_of}"
    return RoutePrice(row.input_per_1m_usd, row.output_per_1m_usd, source)


def route_prices(config: GatewayConfig, db_url: str | None = None) -> dict[str, RoutePrice]:
    """Every route's price by route name (pools first, then APIs, as in the config)."""
    prices = {pool.name: pool_price(pool) for pool in config.pools}
    prices.update({api.name: api_price(api, db_url) for api in config.apis})
    return prices
