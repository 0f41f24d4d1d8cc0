"""``servewise tco``: the planner's best deployment priced on-demand, spot, reserved 1y/3y and owned, against hosted
APIs (``--vs``), with the break-even volume, a tier recommendation, chart data (``--chart``) and a PNG (``--plot``)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.cost import (
    HOURS_PER_MONTH,
    TCO_SCHEMA,
    OwnedTerms,
    PricingTerms,
    TcoReport,
    find_api_price,
    tco_defaults,
    tco_document,
)
from servewise.errors import UsageError
from servewise.planner import make_plan, plan_tco

from ._output import Column, OutputFormat, check_writable, render, stdout_console, write_atomically
from ._plan import with_workload_options, workload_from_options

__all__ = ["TCO_SCHEMA", "tco_command", "tco_document"]

_COLUMNS = (
    Column("mark", ""),
    Column("option", "option"),
    Column("tier", "tier"),
    Column("usd_per_hour", "$/h", numeric=True),
    Column("usd_per_month", "$/month", numeric=True),
    Column("usd_per_1m_tokens", "$/1M tok", numeric=True),
    Column("vs_on_demand", "vs on-demand", numeric=True),
    Column("note", "note"),
)

_TIER_OF = {
    "on-demand": "self-host",
    "spot": "self-host",
    "reserved-1y": "self-host",
    "reserved-3y": "self-host",
}


def _rows(report: TcoReport, fancy: bool) -> tuple[list[dict[str, object]], int | None]:
    on_demand = next((o.usd_per_month for o in report.options if o.name == "on-demand"), None)
    rows: list[dict[str, object]] = []
    for o in report.options:
        vs = f"{o.usd_per_month / on_demand - 1:+.0%}" if o.usd_per_month and on_demand else ""
        rows.append(
            {
                "option": o.name,
                "tier": _TIER_OF.get(o.name, "owned"),
                "usd_per_hour": None if o.usd_per_hour is None else round(o.usd_per_hour, 4),
                "usd_per_month": None if o.usd_per_month is None else round(o.usd_per_month, 2),
                "usd_per_1m_tokens": None
                if o.usd_per_1m_tokens is None or not math.isfinite(o.usd_per_1m_tokens)
                else round(o.usd_per_1m_tokens, 4),
                "vs_on_demand": vs,
                "note": o.note,
            }
        )
    tokens_per_month = report.monthly_requests * (
        report.deployment.prompt_tokens + report.deployment.output_tokens
    )
    for a in report.apis:
        vs = f"{a.usd_per_month / on_demand - 1:+.0%}" if on_demand else ""
        rows.append(
            {
                "option": f"API {a.model}",
                "tier": "api-only",
                "usd_per_hour": round(a.usd_per_month / HOURS_PER_MONTH, 4),
                "usd_per_month": round(a.usd_per_month, 2),
                "usd_per_1m_tokens": round(a.usd_per_month / (tokens_per_month / 1e6), 4)
                if tokens_per_month
                else None,
                "vs_on_demand": vs,
                "note": f"${a.usd_per_request * 1000:.4g} per 1k requests; {a.provider}",
            }
        )
    h = report.hybrid
    if h is not None and h.local_replicas > 0 and h.api_usd_per_month > 0:
        rows.append(
            {
                "option": "hybrid",
                "tier": "hybrid",
                "usd_per_hour": round(h.usd_per_month / HOURS_PER_MONTH, 4),
                "usd_per_month": round(h.usd_per_month, 2),
                "usd_per_1m_tokens": None,
                "vs_on_demand": f"{h.usd_per_month / on_demand - 1:+.0%}" if on_demand else "",
                "note": f"{report.hybrid_basis}; {h.local_share:.0%} local",
            }
        )
    marked = _marked_row(report, rows)
    for index, row in enumerate(rows):
        row["mark"] = ("★" if fancy else "*") if index == marked else ""
    return rows, marked


def _marked_row(report: TcoReport, rows: list[dict[str, object]]) -> int | None:
    label = report.recommended
    for index, row in enumerate(rows):
        name = str(row["option"])
        if (
            label == f"self-host {name}"
            or (label == "owned GPUs" and name == "owned")
            or label == name
            or (label.startswith("hybrid") and name == "hybrid")
        ):
            return index
    return None


def _chart_csv(report: TcoReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    labels = [label for label, _ in report.chart_series]
    writer.writerow(["monthly_requests", *labels])
    for index, volume in enumerate(report.chart_volumes):
        values = [
            "" if series[index] is None else round(series[index] or 0.0, 4)
            for _, series in report.chart_series
        ]
        writer.writerow([round(volume, 2), *values])
    return buffer.getvalue()


def _plot_png(report: TcoReport) -> bytes:
    """Cost vs monthly requests, one line per option (steps for self-hosting), the workload marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    volumes = [v / 1e6 for v in report.chart_volumes]
    for label, values in report.chart_series:
        ys = [math.nan if v is None else v for v in values]
        style = "steps-post" if not label.startswith("API") else "default"
        axes.plot(
            volumes, ys, label=label, drawstyle=style, linestyle="--" if label.startswith("API") else "-"
        )
    axes.axvline(report.monthly_requests / 1e6, color="grey", linewidth=1, linestyle=":")
    axes.annotate("workload", (report.monthly_requests / 1e6, 0), rotation=90, fontsize=8, color="grey")
    d = report.deployment
    axes.set_title(f"{d.model} on {d.tp}x{d.gpu.name}: cost vs monthly volume")
    axes.set_xlabel("requests per month (millions)")
    axes.set_ylabel("USD per month")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _print(report: TcoReport, defaults: list[dict[str, Any]], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=tco_document(report, defaults))
        return
    fancy = fmt is OutputFormat.table
    rows, marked = _rows(report, fancy)
    d = report.deployment
    title = (
        f"TCO of {d.model} on {d.tp}x{d.gpu.name} x{d.replicas} replica(s): "
        f"{report.monthly_requests:,.0f} requests/month"
    )
    caption = f"recommended: {report.tier} ({report.recommended})" if fancy else None
    render(rows, _COLUMNS, fmt, title=title, marked_row=marked, caption=caption)
    if fmt is OutputFormat.csv:
        return
    lines = [f"recommendation: {report.tier} - {report.recommended}"]
    lines.extend(f"  {reason}" for reason in report.reasons)
    for option in report.options:
        for item in option.line_items:
            lines.append(f"{option.name}: {item.label} ${item.usd_per_hour:,.4g}/h - {item.detail}")
    for api in report.apis:
        lines.append(f"price: {api.model} ({api.provider}) source {api.source}; as of {api.as_of}")
    lines.extend(f"default: {row['flag']} {row['value']:g} - {row['source']}" for row in defaults)
    lines.append(
        "assumption: the hosted API model and the self-hosted model are taken as equally good for this use case; "
        "check quality yourself"
    )
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line.strip()}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(
            escape(line), style="bold" if line.startswith("recommendation") else "dim", highlight=False
        )


_OWNED = OwnedTerms()
_TERMS = PricingTerms()
"""The flags' defaults are the terms' own defaults: one place to change them, and what `tco` prints."""


@with_workload_options
def tco_command(
    workload_options: dict[str, Any],
    vs: Annotated[
        list[str] | None,
        typer.Option("--vs", help="hosted API model to compare with (repeatable), e.g. gpt-4o-mini"),
    ] = None,
    amortize_months: Annotated[
        float, typer.Option("--amortize-months", help="owned: months to amortise over")
    ] = _OWNED.amortize_months,
    utilization: Annotated[
        float, typer.Option("--utilization", help="owned: average power draw, share of TDP")
    ] = _OWNED.utilization,
    pue: Annotated[
        float, typer.Option("--pue", help="owned: power usage effectiveness of the site")
    ] = _OWNED.pue,
    usd_per_kwh: Annotated[
        float, typer.Option("--usd-per-kwh", help="owned: electricity price")
    ] = _OWNED.usd_per_kwh,
    ops_overhead: Annotated[
        float, typer.Option("--ops-overhead", help="owned: host/network/ops, share of the amortisation")
    ] = _OWNED.ops_overhead,
    purchase_price_usd: Annotated[
        float | None,
        typer.Option("--purchase-price-usd", help="owned: price per GPU [default: catalog GUESS]"),
    ] = None,
    spot_overhead: Annotated[
        float, typer.Option("--spot-overhead", help="spot: interruption overhead")
    ] = _TERMS.spot_overhead,
    on_demand_floor: Annotated[
        float, typer.Option("--on-demand-floor", help="spot: share of replicas kept on on-demand")
    ] = _TERMS.on_demand_floor_share,
    on_demand_floor_replicas: Annotated[
        int, typer.Option("--on-demand-floor-replicas", help="spot: minimum replicas on on-demand")
    ] = _TERMS.on_demand_floor_replicas,
    reserved_1y_discount: Annotated[
        float, typer.Option("--reserved-1y-discount", help="reserved 1y: discount off on-demand")
    ] = _TERMS.reserved_1y_discount,
    reserved_3y_discount: Annotated[
        float, typer.Option("--reserved-3y-discount", help="reserved 3y: discount off on-demand")
    ] = _TERMS.reserved_3y_discount,
    api_cached_share: Annotated[
        float | None,
        typer.Option(
            "--api-cached-share",
            help="API: share of prompt tokens at the cached price [default: prefix share]",
        ),
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="write break-even chart data (.csv, else JSON)")
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write the break-even chart as PNG")] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
) -> None:
    """Total cost of ownership: rent (on-demand, spot, reserved) or own the planned deployment, or call a hosted API."""
    terms = PricingTerms(
        spot_overhead=spot_overhead,
        on_demand_floor_share=on_demand_floor,
        on_demand_floor_replicas=on_demand_floor_replicas,
        reserved_1y_discount=reserved_1y_discount,
        reserved_3y_discount=reserved_3y_discount,
    )
    owned_terms = OwnedTerms(
        amortize_months=amortize_months,
        utilization=utilization,
        pue=pue,
        usd_per_kwh=usd_per_kwh,
        ops_overhead=ops_overhead,
    )
    for path, example in ((chart, "tco.csv"), (plot, "tco.png")):
        if path is not None:
            check_writable(path, example)
    if api_cached_share is not None and not 0 <= api_cached_share <= 1:
        raise UsageError(f"--api-cached-share must be in [0, 1] (got {api_cached_share:g})")
    workload, snapshot = workload_from_options(workload_options)
    apis = [find_api_price(snapshot.api_prices, name) for name in dict.fromkeys(vs or [])]
    cached = workload.traffic.prefix_share if api_cached_share is None else api_cached_share
    report = plan_tco(
        make_plan(workload, snapshot),
        snapshot,
        apis=apis,
        terms=terms,
        owned_terms=owned_terms,
        purchase_usd=purchase_price_usd,
        cached_share=cached,
    )
    defaults = tco_defaults(terms, owned_terms, cached, api_cached_share is not None)
    if chart is not None:
        text = (
            _chart_csv(report)
            if chart.suffix.lower() == ".csv"
            else json.dumps(tco_document(report, defaults)["chart"], indent=2) + "\n"
        )
        write_atomically(chart, text, flag="--chart", example="tco.csv")
    if plot is not None:
        write_atomically(plot, _plot_png(report), flag="--plot", example="tco.png")
    _print(report, defaults, fmt)
