"""``servewise evalcost``: what LLM-as-judge evaluation costs per month, per stage, and what each lever saves.

Judge prices come from the catalog's hosted-API prices by name (``--judge``, ``--cheap-judge``) or from explicit
per-1M-token prices; every other input is a flag whose default is printed with the result and marked as such.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.catalog import ApiPrice, open_catalog
from servewise.cost import EVALCOST_INPUTS, CascadeMode, evalcost_for

from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["evalcost_command"]


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
    for i in EVALCOST_INPUTS:
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
    prices: list[ApiPrice] | None = None
    if judge is not None or cheap_judge is not None:
        with open_catalog(db_url) as catalog:
            prices = catalog.api_prices()
    document = evalcost_for(
        prices,
        values,
        judge=judge,
        input_usd_per_1m=input_usd_per_1m,
        output_usd_per_1m=output_usd_per_1m,
        cached_input_usd_per_1m=cached_input_usd_per_1m,
        cheap_judge=cheap_judge,
        cheap_input_usd_per_1m=cheap_input_usd_per_1m,
        cheap_output_usd_per_1m=cheap_output_usd_per_1m,
        cheap_cached_input_usd_per_1m=cheap_cached_input_usd_per_1m,
        cascade=cascade,
    )
    _print(document, fmt)
