"""Mixed plans: a bulk pool for short prompts, plus a long-context pool or a hosted API for the long tail.

Why: one pool sized for the longest prompts pays for long context (memory, slower steps, larger GPUs) on every
request; routing the few long prompts elsewhere can be cheaper. The routing rule sends prompts over ``t`` tokens away
from the bulk pool; ``t`` is given (default 4,096) or derived from a local-ratio target r as the smallest whole t with
P(prompt ≤ t) ≥ r. With s = P(prompt ≤ t) from the prompt-length distribution (``_split``):

    bulk pool:  qps × s,        prompts ~ the lengths ≤ t (moment-matched, capped at t)
    long pool:  qps × (1 − s),  prompts ~ the lengths > t (moment-matched)
    API:        requests/month = (1 − s) × qps × 730 h × 3600 s/h
                $/month = requests/month × (mean tail prompt × ((1 − p)·input + p·cached input)
                                            + mean output × output) / 10⁶,  p = the workload's prefix_share

Each pool is planned by ``make_plan`` on a derived workload (same SLO, output lengths, peak factor and constraints;
no budget, which applies to the total). Options compared: the pure plan (one pool), bulk + long-context pool, and,
with an API, bulk + API overflow and API only. The chosen option is the cheapest feasible one within the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from servewise.catalog import ApiPrice, CatalogSnapshot
from servewise.cost import SECONDS_PER_MONTH, ApiCost, api_cost, find_api_price
from servewise.errors import UsageError
from servewise.workload import LengthDistribution, Workload

from ._plan import Plan, PlanOption
from ._rank import infeasibility_message
from ._search import make_plan
from ._split import LengthSplit, length_cdf, partial_moment, side_length, split_lengths, threshold_for_share

__all__ = [
    "DEFAULT_THRESHOLD_TOKENS",
    "ApiOverflow",
    "MixedOption",
    "MixedPlan",
    "Pool",
    "RoutingRule",
    "api_overflow",
    "make_mixed_plan",
    "routing_rule",
]

DEFAULT_THRESHOLD_TOKENS = 4096
"""Default split (an assumption, printed): prompts over 4,096 tokens leave the bulk pool."""

PlanMaker = Callable[[Workload, CatalogSnapshot], Plan]


@dataclass(frozen=True, slots=True)
class RoutingRule:
    threshold_tokens: int
    """Prompts longer than this leave the bulk pool."""
    local_ratio_target: float | None
    """The target the threshold was derived from, when one was given."""
    overflow_api: str | None
    default_threshold: bool = False
    """True when neither a threshold nor a ratio was given (4,096 tokens)."""


def routing_rule(
    workload: Workload,
    *,
    threshold_tokens: int | None = None,
    local_ratio: float | None = None,
    overflow_api: str | None = None,
) -> RoutingRule:
    """The rule from the arguments (flags), else the workload's ``routing`` section, else 4,096 tokens."""
    if threshold_tokens is not None and local_ratio is not None:
        raise UsageError("give --threshold-tokens or --local-ratio, not both")
    if threshold_tokens is not None and threshold_tokens <= 0:
        raise UsageError(f"--threshold-tokens must be > 0 (got {threshold_tokens}); e.g. 4096")
    if local_ratio is not None and not 0 < local_ratio <= 1:
        raise UsageError(f"--local-ratio must be in (0, 1] (got {local_ratio:g}); e.g. 0.98 for 98%")
    routing = workload.routing
    if threshold_tokens is None and local_ratio is None and routing is not None:
        threshold_tokens, local_ratio = routing.threshold_tokens, routing.local_ratio
    api = overflow_api if overflow_api is not None else (routing.overflow_api if routing else None)
    if local_ratio is not None:
        threshold = threshold_for_share(workload.traffic.prompt_tokens, local_ratio)
        return RoutingRule(threshold, local_ratio, api)
    if threshold_tokens is None:
        return RoutingRule(DEFAULT_THRESHOLD_TOKENS, None, api, default_threshold=True)
    return RoutingRule(threshold_tokens, None, api)


@dataclass(frozen=True, slots=True)
class Pool:
    """A self-hosted pool: its role (``all``, ``bulk`` or ``long``), its share of requests and its plan."""

    role: str
    share: float
    workload: Workload
    plan: Plan

    @property
    def option(self) -> PlanOption | None:
        return self.plan.chosen_option


@dataclass(frozen=True, slots=True)
class ApiOverflow:
    """Requests sent to a hosted API: monthly volumes and what they cost (``cost.api_cost``)."""

    share: float
    requests_per_month: float
    input_tokens_per_month: float
    cached_input_tokens_per_month: float
    output_tokens_per_month: float
    cost: ApiCost
    over_context_share: float
    """Share of these requests whose prompt exceeds the API's input limit (0 when it has none)."""

    @property
    def usd_per_month(self) -> float:
        return self.cost.usd_per_month


def api_overflow(
    price: ApiPrice,
    *,
    share: float,
    avg_qps: float,
    mean_prompt_tokens: float,
    mean_output_tokens: float,
    cached_share: float,
    over_context_share: float = 0.0,
) -> ApiOverflow:
    """Monthly tokens and dollars for ``share`` of ``avg_qps`` sent to ``price``'s API (formula in the module
    docstring); cached input is billed at the input price when the API publishes no cached price."""
    requests = share * avg_qps * SECONDS_PER_MONTH
    cost = api_cost(
        price,
        prompt_tokens=mean_prompt_tokens,
        output_tokens=mean_output_tokens,
        cached_share=cached_share,
        monthly_requests=requests,
    )
    prompt = requests * mean_prompt_tokens
    return ApiOverflow(
        share,
        requests,
        prompt,
        prompt * cached_share,
        requests * mean_output_tokens,
        cost,
        over_context_share,
    )


@dataclass(frozen=True, slots=True)
class MixedOption:
    name: str
    pools: tuple[Pool, ...]
    api: ApiOverflow | None
    share_local: float
    usd_per_month: float | None
    """None when a pool has no feasible plan."""
    gpus_total: int
    infeasible_reason: str | None
    within_budget: bool


@dataclass(frozen=True, slots=True)
class MixedPlan:
    workload: Workload
    rule: RoutingRule
    split: LengthSplit
    options: tuple[MixedOption, ...]
    chosen: int | None
    assumptions: tuple[str, ...]

    @property
    def chosen_option(self) -> MixedOption | None:
        return None if self.chosen is None else self.options[self.chosen]


def _pool_workload(workload: Workload, share: float, prompt: LengthDistribution, role: str) -> Workload:
    traffic = workload.traffic.model_copy(
        update={
            "qps": workload.traffic.avg_qps * share,
            "users": None,
            "requests_per_user_hour": None,
            "prompt_tokens": prompt,
        }
    )
    suffix = "" if role == "all" else f" [{role}]"
    return workload.model_copy(
        update={"name": workload.name + suffix, "traffic": traffic, "budget_usd_month": None, "routing": None}
    )


def _option(name: str, pools: tuple[Pool, ...], api: ApiOverflow | None, budget: float | None) -> MixedOption:
    share_local = sum(p.share for p in pools)
    missing = [p for p in pools if p.option is None]
    if missing:
        reason = "; ".join(f"{p.role} pool: {infeasibility_message(p.plan)}" for p in missing)
        return MixedOption(name, pools, api, share_local, None, 0, reason, False)
    usd = sum(p.option.cost.usd_per_month for p in pools if p.option is not None)
    usd += api.usd_per_month if api is not None else 0.0
    gpus = sum(p.option.gpus_total for p in pools if p.option is not None)
    return MixedOption(name, pools, api, share_local, usd, gpus, None, budget is None or usd <= budget)


def _api(price: ApiPrice, workload: Workload, share: float, mean_prompt: float, above: float) -> ApiOverflow:
    """The API's part; ``above`` is the prompt length over which it receives requests (0 for all traffic)."""
    traffic = workload.traffic
    over = 0.0
    limit = price.max_input_tokens
    if limit is not None and share > 0:
        over = (1.0 - length_cdf(traffic.prompt_tokens, max(limit, above))) / share
    return api_overflow(
        price,
        share=share,
        avg_qps=traffic.avg_qps,
        mean_prompt_tokens=mean_prompt,
        mean_output_tokens=traffic.output_tokens.mean,
        cached_share=traffic.prefix_share,
        over_context_share=min(over, 1.0),
    )


def make_mixed_plan(
    workload: Workload,
    catalog: CatalogSnapshot,
    rule: RoutingRule,
    *,
    plan_maker: PlanMaker = make_plan,
) -> MixedPlan:
    """Pure vs mixed options for ``workload`` under ``rule``; a pure function of its inputs (plans via
    ``plan_maker``)."""
    prompt = workload.traffic.prompt_tokens
    split = split_lengths(prompt, rule.threshold_tokens)
    price = find_api_price(catalog.api_prices, rule.overflow_api) if rule.overflow_api else None
    budget = workload.budget_usd_month
    pure_workload = _pool_workload(workload, 1.0, prompt, "all")
    options = [
        _option("pure", (Pool("all", 1.0, pure_workload, plan_maker(pure_workload, catalog)),), None, budget)
    ]
    if split.share_above > 0 and split.share_below > 0:
        bulk_length = side_length(split.mean_below_tokens, split.cv_below, rule.threshold_tokens)
        bulk_workload = _pool_workload(workload, split.share_below, bulk_length, "bulk")
        bulk = Pool("bulk", split.share_below, bulk_workload, plan_maker(bulk_workload, catalog))
        long_length = side_length(split.mean_above_tokens, split.cv_above, prompt.max_tokens)
        long_workload = _pool_workload(workload, split.share_above, long_length, "long")
        long = Pool("long", split.share_above, long_workload, plan_maker(long_workload, catalog))
        options.append(_option("bulk + long-context pool", (bulk, long), None, budget))
        if price is not None:
            tail = _api(price, workload, split.share_above, split.mean_above_tokens, rule.threshold_tokens)
            options.append(_option("bulk + API overflow", (bulk,), tail, budget))
    if price is not None:
        everything = _api(price, workload, 1.0, partial_moment(prompt, math.inf, 1), 0.0)
        options.append(_option("API only", (), everything, budget))
    feasible = [i for i, o in enumerate(options) if o.usd_per_month is not None]
    within = [i for i in feasible if options[i].within_budget] or feasible
    chosen = min(within, key=lambda i: options[i].usd_per_month or 0.0) if within else None
    return MixedPlan(
        workload, rule, split, tuple(options), chosen, _assumptions(workload, rule, split, price)
    )


def _assumptions(
    workload: Workload, rule: RoutingRule, split: LengthSplit, price: ApiPrice | None
) -> tuple[str, ...]:
    prompt = workload.traffic.prompt_tokens
    derived = (
        f" (derived from --local-ratio {rule.local_ratio_target:g}: the prompt-length quantile, rounded up)"
        if rule.local_ratio_target is not None
        else (" (default; --threshold-tokens to change)" if rule.default_threshold else "")
    )
    lines = [
        f"routing: prompts over {rule.threshold_tokens:,} tokens leave the bulk pool{derived}; "
        f"{split.share_below:.2%} of requests stay, from the {prompt.kind} prompt distribution "
        f"(mean {prompt.mean:g}{f', cv {prompt.cv:g}' if prompt.kind == 'lognormal' else ''}"
        f"{f', max {prompt.max_tokens}' if prompt.max_tokens else ''})",
        "pool lengths: each side of the threshold is planned as a lognormal with that side's mean and cv "
        "(moment matching of the truncated distribution; the bulk side capped at the threshold)",
        "output lengths, SLO, peak factor and constraints are the same in every pool (output length assumed "
        "independent of prompt length); the budget applies to the total",
    ]
    if split.share_above == 0:
        lines.append(
            f"no prompt is longer than {rule.threshold_tokens:,} tokens: every request stays on one pool, "
            "so there is no mixed option"
        )
    elif split.share_below == 0:
        lines.append(f"every prompt is longer than {rule.threshold_tokens:,} tokens: there is no bulk pool")
    if price is not None:
        cached = (
            f"${price.cached_input_per_1m_usd:g}"
            if price.cached_input_per_1m_usd is not None
            else "the input price (no cached price published)"
        )
        lines.append(
            f"API {price.provider}/{price.model}: ${price.input_per_1m_usd:g} input, {cached} cached input, "
            f"${price.output_per_1m_usd:g} output per 1M tokens; the prefix share "
            f"{workload.traffic.prefix_share:g} of prompt tokens billed as cached; source {price.source}; "
            f"as of {price.as_of or 'unknown'}; API latency is not modelled"
        )
    return tuple(lines)
