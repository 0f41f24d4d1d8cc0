"""LLM-as-judge cost from named or priced judges: resolving the judges, applying the documented defaults, and the
JSON document ``servewise evalcost --format json`` prints and the REST API returns.

Why apart from the CLI: the CLI and ``POST /api/v1/evalcost`` take the same inputs (messages name the CLI flag; the
API's fields are the flags' names with underscores) and must give the same numbers, defaults and sources.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from servewise.catalog import ApiPrice, fold
from servewise.errors import UnknownNameError, UsageError

from ._evalcost import CascadeMode, EvalCost, EvalCostInputs, JudgePrice, eval_cost

__all__ = [
    "EVALCOST_INPUTS",
    "EvalCostInput",
    "evalcost_document",
    "evalcost_for",
    "find_judge_price",
    "judge_price",
]


@dataclass(frozen=True, slots=True)
class EvalCostInput:
    field: str
    flag: str
    default: float
    label: str


EVALCOST_INPUTS = (
    EvalCostInput("evals_per_month", "--evals-per-month", 10_000_000, "evals produced per month"),
    EvalCostInput("input_tokens", "--input-tokens", 1000, "judge input tokens per call"),
    EvalCostInput("output_tokens", "--output-tokens", 50, "judge output tokens per call"),
    EvalCostInput("sampling_rate", "--sampling-rate", 1.0, "share of evals judged"),
    EvalCostInput("rules_share", "--rules-share", 0.0, "share settled by free rule-based checks"),
    EvalCostInput("cheap_share", "--cheap-share", 0.0, "share settled by the cheap judge"),
    EvalCostInput(
        "judgement_cache_hit_rate", "--cache-hit-rate", 0.0, "share of judged evals reusing a cached verdict"
    ),
    EvalCostInput(
        "prompt_cache_share", "--prompt-cache-share", 0.0, "share of judge input tokens billed as cached"
    ),
)
_FLAG_FOR_FIELD = {i.field: i.flag for i in EVALCOST_INPUTS} | {
    "rules_share + cheap_share": "--rules-share + --cheap-share",
}


def find_judge_price(prices: Sequence[ApiPrice], name: str, flag: str) -> ApiPrice:
    """The catalog's API price for ``name``: the exact model id, ``provider/model``, or the id's last path part
    when only one provider serves it (case-insensitive)."""
    query = fold(name)
    exact = [p for p in prices if fold(p.model) == query or fold(f"{p.provider}/{p.model}") == query]
    if len(exact) == 1:
        return exact[0]
    tail = exact or [p for p in prices if fold(p.model.rsplit("/", 1)[-1]) == query.rsplit("/", 1)[-1]]
    if len(tail) == 1:
        return tail[0]
    if len(tail) > 1:
        choices = ", ".join(sorted(p.model for p in tail))
        raise UsageError(f"{flag} {name!r} is served by several providers; give one of: {choices}")
    price_flags = "--cheap-input-usd-per-1m" if flag == "--cheap-judge" else "--input-usd-per-1m"
    raise UnknownNameError(
        "API model",
        name,
        [p.model for p in prices],
        hint=f"See `servewise catalog list api-prices`, or give prices with {price_flags} and its output twin.",
    )


def judge_price(
    prices: Sequence[ApiPrice] | None,
    *,
    name: str | None,
    flag: str,
    prefix: str,
    input_usd: float | None,
    output_usd: float | None,
    cached_usd: float | None,
) -> JudgePrice | None:
    """The judge named in the catalog (``name``), or priced explicitly; None when neither is given."""
    for suffix, value in (("input", input_usd), ("output", output_usd), ("cached-input", cached_usd)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(
                f"{prefix}{suffix}-usd-per-1m: must be a price ≥ 0 USD per 1M tokens (got {value:g})"
            )
    explicit = input_usd is not None or output_usd is not None
    if name is not None and explicit:
        raise UsageError(f"give {flag} MODEL or {prefix}input/output prices, not both")
    if name is not None:
        if prices is None:
            raise UsageError(f"{flag} {name!r}: no API prices loaded; give prices instead")
        price = find_judge_price(prices, name, flag)
        return JudgePrice(
            name=price.model,
            input_usd_per_1m=price.input_per_1m_usd,
            output_usd_per_1m=price.output_per_1m_usd,
            cached_input_usd_per_1m=cached_usd if cached_usd is not None else price.cached_input_per_1m_usd,
            source=price.source,
            as_of=price.as_of,
        )
    if not explicit:
        return None
    if input_usd is None or output_usd is None:
        raise UsageError(f"give both {prefix}input-usd-per-1m and {prefix}output-usd-per-1m")
    return JudgePrice(
        name="given prices",
        input_usd_per_1m=input_usd,
        output_usd_per_1m=output_usd,
        cached_input_usd_per_1m=cached_usd,
        source=f"{prefix}input-usd-per-1m / {prefix}output-usd-per-1m (given)",
    )


def _flag_message(message: str) -> str:
    for field, flag in sorted(_FLAG_FOR_FIELD.items(), key=lambda kv: -len(kv[0])):
        if message.startswith(f"{field}:"):
            return flag + message.removeprefix(field)
    return message


def evalcost_document(result: EvalCost, given: dict[str, bool]) -> dict[str, Any]:
    inputs = result.inputs
    judges = [j for j in (inputs.judge, inputs.cheap_judge) if j is not None]
    return {
        "inputs": {
            **{i.field: getattr(inputs, i.field) for i in EVALCOST_INPUTS},
            "cascade": str(inputs.cascade),
            "defaults_used": [i.flag for i in EVALCOST_INPUTS if not given[i.field]],
        },
        "judges": [
            {
                "role": "expensive" if judge is inputs.judge else "cheap",
                "model": judge.name,
                "input_usd_per_1m": judge.input_usd_per_1m,
                "output_usd_per_1m": judge.output_usd_per_1m,
                "cached_input_usd_per_1m": judge.cached_input_usd_per_1m,
                "source": judge.source,
                "as_of": judge.as_of.isoformat() if judge.as_of else None,
            }
            for judge in judges
        ],
        "stages": [
            {
                "stage": s.stage,
                "judge": s.judge,
                "evals_per_month": s.evals_per_month,
                "calls_per_month": s.calls_per_month,
                "usd_per_call": s.usd_per_call,
                "usd_per_month": s.usd_per_month,
            }
            for s in result.stages
        ],
        "waterfall": [
            {
                "step": w.step,
                "usd_per_month_before": w.usd_per_month_before,
                "usd_per_month_after": w.usd_per_month_after,
                "saved_usd_per_month": w.saved_usd_per_month,
                "saved_pct": w.saved_pct,
            }
            for w in result.waterfall
        ],
        "baseline_usd_per_month": result.baseline_usd_per_month,
        "usd_per_month": result.usd_per_month,
        "usd_per_eval": result.usd_per_eval,
        "usd_per_judged_eval": result.usd_per_judged_eval,
        "assumptions": list(result.assumptions),
    }


def evalcost_for(
    prices: Sequence[ApiPrice] | None,
    values: Mapping[str, float | None],
    *,
    judge: str | None = None,
    input_usd_per_1m: float | None = None,
    output_usd_per_1m: float | None = None,
    cached_input_usd_per_1m: float | None = None,
    cheap_judge: str | None = None,
    cheap_input_usd_per_1m: float | None = None,
    cheap_output_usd_per_1m: float | None = None,
    cheap_cached_input_usd_per_1m: float | None = None,
    cascade: CascadeMode = CascadeMode.escalate,
) -> dict[str, Any]:
    """The evalcost document. ``values`` maps ``EVALCOST_INPUTS`` fields to the numbers given (None: the default,
    reported under ``defaults_used``); ``prices`` are the catalog's API prices (needed when a judge is named)."""
    values = {i.field: values.get(i.field) for i in EVALCOST_INPUTS}
    price_list = list(prices) if prices is not None else None
    given = {field: value is not None for field, value in values.items()}
    resolved: dict[str, float] = {}
    for i in EVALCOST_INPUTS:
        value = values[i.field]
        resolved[i.field] = float(i.default if value is None else value)
    expensive = judge_price(
        price_list,
        name=judge,
        flag="--judge",
        prefix="--",
        input_usd=input_usd_per_1m,
        output_usd=output_usd_per_1m,
        cached_usd=cached_input_usd_per_1m,
    )
    if expensive is None:
        raise UsageError(
            "name the judge: --judge MODEL (an API model in the catalog) or --input-usd-per-1m and "
            "--output-usd-per-1m"
        )
    cheap = judge_price(
        price_list,
        name=cheap_judge,
        flag="--cheap-judge",
        prefix="--cheap-",
        input_usd=cheap_input_usd_per_1m,
        output_usd=cheap_output_usd_per_1m,
        cached_usd=cheap_cached_input_usd_per_1m,
    )
    try:
        result = eval_cost(
            EvalCostInputs(
                evals_per_month=resolved["evals_per_month"],
                input_tokens=resolved["input_tokens"],
                output_tokens=resolved["output_tokens"],
                judge=expensive,
                cheap_judge=cheap,
                sampling_rate=resolved["sampling_rate"],
                rules_share=resolved["rules_share"],
                cheap_share=resolved["cheap_share"],
                cascade=cascade,
                judgement_cache_hit_rate=resolved["judgement_cache_hit_rate"],
                prompt_cache_share=resolved["prompt_cache_share"],
            )
        )
    except UsageError as err:
        err.args = (_flag_message(str(err)),)
        raise
    return evalcost_document(result, given)
