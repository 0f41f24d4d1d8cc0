"""``servewise evalcost``: what LLM-as-judge evaluation costs per month, per stage, and what each lever saves.

Judge prices come from the catalog's hosted-API prices by name (``--judge``, ``--cheap-judge``) or from explicit
per-1M-token prices; every other input is a flag whose default is printed with the result and marked as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.catalog import ApiPrice, fold, open_catalog
from servewise.cost import CascadeMode, EvalCost, EvalCostInputs, JudgePrice, eval_cost
from servewise.errors import UnknownNameError, UsageError

from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["evalcost_command", "find_api_price"]


@dataclass(frozen=True, slots=True)
class _Input:
    field: str
    flag: str
    default: float
    label: str


_INPUTS = (
    _Input("evals_per_month", "--evals-per-month", 10_000_000, "evals produced per month"),
    _Input("input_tokens", "--input-tokens", 1000, "judge input tokens per call"),
    _Input("output_tokens", "--output-tokens", 50, "judge output tokens per call"),
    _Input("sampling_rate", "--sampling-rate", 1.0, "share of evals judged"),
    _Input("rules_share", "--rules-share", 0.0, "share settled by free rule-based checks"),
    _Input("cheap_share", "--cheap-share", 0.0, "share settled by the cheap judge"),
    _Input(
        "judgement_cache_hit_rate", "--cache-hit-rate", 0.0, "share of judged evals reusing a cached verdict"
    ),
    _Input("prompt_cache_share", "--prompt-cache-share", 0.0, "share of judge input tokens billed as cached"),
)
_FLAG_FOR_FIELD = {i.field: i.flag for i in _INPUTS} | {
    "rules_share + cheap_share": "--rules-share + --cheap-share",
}


def find_api_price(prices: list[ApiPrice], name: str, flag: str) -> ApiPrice:
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


def _judge(
    prices: list[ApiPrice] | None,
    *,
    name: str | None,
    flag: str,
    prefix: str,
    input_usd: float | None,
    output_usd: float | None,
    cached_usd: float | None,
) -> JudgePrice | None:
    for suffix, value in (("input", input_usd), ("output", output_usd), ("cached-input", cached_usd)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(
                f"{prefix}{suffix}-usd-per-1m: must be a price ≥ 0 USD per 1M tokens (got {value:g})"
            )
    explicit = input_usd is not None or output_usd is not None
    if name is not None and explicit:
        raise UsageError(f"give {flag} MODEL or {prefix}input/output prices, not both")
    if name is not None:
        assert prices is not None  # loaded whenever a name is given
        price = find_api_price(prices, name, flag)
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


def _document(result: EvalCost, given: dict[str, bool]) -> dict[str, Any]:
    inputs = result.inputs
    judges = [j for j in (inputs.judge, inputs.cheap_judge) if j is not None]
    return {
        "inputs": {
            **{i.field: getattr(inputs, i.field) for i in _INPUTS},
            "cascade": str(inputs.cascade),
            "defaults_used": [i.flag for i in _INPUTS if not given[i.field]],
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


_STAGE_COLUMNS = (
    Column("stage", "stage"),
    Column("judge", "judge"),
    Column("evals_per_month", "evals/month", numeric=True),
    Column("calls_per_month", "judge calls/month", numeric=True),
    Column("usd_per_call", "$/call", numeric=True),
    Column("usd_per_month", "$/month", numeric=True),
)
_WATERFALL_COLUMNS = (
    Column("step", "saving step"),
    Column("usd_per_month_before", "$/month before", numeric=True),
    Column("usd_per_month_after", "$/month after", numeric=True),
    Column("saved_usd_per_month", "saved $/month", numeric=True),
    Column("saved_pct", "saved %", numeric=True),
)


def _print(document: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _STAGE_COLUMNS, fmt, json_document=document)
        return
    total_row = {
        "stage": "total",
        "judge": "",
        "evals_per_month": document["inputs"]["evals_per_month"],
        "calls_per_month": sum(s["calls_per_month"] for s in document["stages"]),
        "usd_per_call": None,
        "usd_per_month": document["usd_per_month"],
    }
    rows = [*document["stages"], total_row]
    title = (
        f"LLM-as-judge cost: ${document['usd_per_month']:,.2f}/month, "
        f"${document['usd_per_eval']:.6g} per eval produced, ${document['usd_per_judged_eval']:.6g} per judged eval"
    )
    render(rows, _STAGE_COLUMNS, fmt, title=title, marked_row=len(rows) - 1)
    if fmt is OutputFormat.csv:
        return
    if fmt is OutputFormat.markdown:
        print()
    render(document["waterfall"], _WATERFALL_COLUMNS, fmt, title="savings, lever by lever (in this order)")
    lines = []
    for judge in document["judges"]:
        cached = judge["cached_input_usd_per_1m"]
        cached_text = f"${cached:g}" if cached is not None else "n/a"
        lines.append(
            f"price ({judge['role']} judge): {judge['model']}, ${judge['input_usd_per_1m']:g} in / "
            f"${judge['output_usd_per_1m']:g} out / {cached_text} cached input per 1M tokens; "
            f"source {judge['source']}; as of {judge['as_of'] or 'not recorded'}"
        )
    inputs = document["inputs"]
    for i in _INPUTS:
        marker = " (default, an assumption)" if i.flag in inputs["defaults_used"] else ""
        lines.append(f"input: {i.label} = {inputs[i.field]:,.10g} [{i.flag}]{marker}")
    lines.append(f"input: cascade = {inputs['cascade']} [--cascade]")
    lines.extend(f"assumption: {a}" for a in document["assumptions"])
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="dim", highlight=False)


def _help(text: str, default: float) -> str:
    return f"{text} [default: {default:,.10g}]"


def evalcost_command(
    judge: Annotated[
        str | None, typer.Option("--judge", help="expensive (or only) judge: an API model in the catalog")
    ] = None,
    input_usd_per_1m: Annotated[
        float | None, typer.Option("--input-usd-per-1m", help="judge input price, USD per 1M tokens")
    ] = None,
    output_usd_per_1m: Annotated[
        float | None, typer.Option("--output-usd-per-1m", help="judge output price, USD per 1M tokens")
    ] = None,
    cached_input_usd_per_1m: Annotated[
        float | None,
        typer.Option(
            "--cached-input-usd-per-1m", help="judge cached-input price (default: the catalog's, if any)"
        ),
    ] = None,
    cheap_judge: Annotated[
        str | None,
        typer.Option("--cheap-judge", help="cheap judge of a cascade: an API model in the catalog"),
    ] = None,
    cheap_input_usd_per_1m: Annotated[
        float | None,
        typer.Option("--cheap-input-usd-per-1m", help="cheap judge input price, USD per 1M tokens"),
    ] = None,
    cheap_output_usd_per_1m: Annotated[
        float | None,
        typer.Option("--cheap-output-usd-per-1m", help="cheap judge output price, USD per 1M tokens"),
    ] = None,
    cheap_cached_input_usd_per_1m: Annotated[
        float | None,
        typer.Option(
            "--cheap-cached-input-usd-per-1m", help="cheap judge cached-input price, USD per 1M tokens"
        ),
    ] = None,
    evals_per_month: Annotated[
        float | None, typer.Option("--evals-per-month", help=_help("evals produced per month", 10_000_000))
    ] = None,
    input_tokens: Annotated[
        float | None, typer.Option("--input-tokens", help=_help("judge input tokens per call", 1000))
    ] = None,
    output_tokens: Annotated[
        float | None, typer.Option("--output-tokens", help=_help("judge output tokens per call", 50))
    ] = None,
    sampling_rate: Annotated[
        float | None, typer.Option("--sampling-rate", help=_help("share of evals judged, 0..1", 1.0))
    ] = None,
    rules_share: Annotated[
        float | None, typer.Option("--rules-share", help=_help("share settled by free rules, 0..1", 0.0))
    ] = None,
    cheap_share: Annotated[
        float | None, typer.Option("--cheap-share", help=_help("share settled by the cheap judge, 0..1", 0.0))
    ] = None,
    cascade: Annotated[
        CascadeMode,
        typer.Option(
            "--cascade", help="escalate: cheap judge first, unsure evals go on; route: one judge each"
        ),
    ] = CascadeMode.escalate,
    cache_hit_rate: Annotated[
        float | None,
        typer.Option(
            "--cache-hit-rate", help=_help("share of judged evals reusing a cached verdict, 0..1", 0.0)
        ),
    ] = None,
    prompt_cache_share: Annotated[
        float | None,
        typer.Option(
            "--prompt-cache-share", help=_help("share of judge input tokens billed as cached, 0..1", 0.0)
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Cost of LLM-as-judge evaluation per month: sampling, judgement cache, rules, cheap and expensive judges."""
    values: dict[str, float | None] = {
        "evals_per_month": evals_per_month,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "sampling_rate": sampling_rate,
        "rules_share": rules_share,
        "cheap_share": cheap_share,
        "judgement_cache_hit_rate": cache_hit_rate,
        "prompt_cache_share": prompt_cache_share,
    }
    given = {field: value is not None for field, value in values.items()}
    resolved: dict[str, float] = {}
    for i in _INPUTS:
        value = values[i.field]
        resolved[i.field] = float(i.default if value is None else value)
    prices: list[ApiPrice] | None = None
    if judge is not None or cheap_judge is not None:
        with open_catalog(db_url) as catalog:
            prices = catalog.api_prices()
    expensive = _judge(
        prices,
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
    cheap = _judge(
        prices,
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
    _print(_document(result, given), fmt)
