"""``servewise autoscale``: the chosen plan's replicas following a weekly traffic curve, vs static peak provisioning."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.cost import (
    HOURS_PER_MONTH,
    HOURS_PER_WEEK,
    SHAPES,
    AutoscaleResult,
    ScalingPolicy,
    autoscale_week,
    shape_multipliers,
    weekly_curve,
)
from servewise.errors import UsageError
from servewise.planner import PlanOption, make_plan, require_feasible

from ._output import Column, OutputFormat, render, stdout_console
from ._plan import with_workload_options, workload_from_options, write_json_atomically

__all__ = ["autoscale_command", "autoscale_document", "read_curve"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SUMMARY = (
    Column("mark", ""),
    Column("provisioning", "provisioning"),
    Column("replicas", "replicas"),
    Column("replica_hours_per_month", "replica-h/month", numeric=True),
    Column("usd_per_month", "$/month", numeric=True),
    Column("vs_static", "vs static", numeric=True),
    Column("hours_at_risk_per_week", "hours at risk/week", numeric=True),
    Column("share_over_capacity", "requests over capacity", numeric=True),
)
_HOURLY = (
    Column("hour", "hour", numeric=True),
    Column("when", "when"),
    Column("qps", "req/s", numeric=True),
    Column("target_replicas", "target", numeric=True),
    Column("ready_replicas_min", "ready min", numeric=True),
    Column("billed_replica_hours", "replica-h", numeric=True),
    Column("minutes_at_risk", "min at risk", numeric=True),
    Column("requests_over_capacity", "req over cap", numeric=True),
    Column("usd", "$", numeric=True),
)


def read_curve(path: Path, avg_qps: float) -> tuple[tuple[float, ...], str]:
    """168 hourly QPS values from a CSV with a header ``hour,multiplier`` (× the workload's average QPS) or
    ``hour,qps``, and 24 (every day alike) or 168 rows (hour 0 = Monday 00:00); any problem is one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--curve: cannot read {path}: {getattr(err, 'strerror', None) or err}") from err
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    header = [cell.strip().casefold() for cell in rows[0]] if rows else []
    if header not in (["hour", "multiplier"], ["hour", "qps"]):
        raise UsageError(
            f"--curve {path}: the first line must be 'hour,multiplier' or 'hour,qps', got {header}"
        )
    values: dict[int, float] = {}
    for number, row in enumerate(rows[1:], start=2):
        try:
            hour, value = int(row[0]), float(row[1])
            if len(row) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise UsageError(
                f"--curve {path}: line {number}: expected 'hour,{header[1]}' with numbers, got {','.join(row)!r}"
            ) from None
        if hour in values:
            raise UsageError(f"--curve {path}: line {number}: hour {hour} appears twice")
        values[hour] = value
    if sorted(values) not in (list(range(24)), list(range(HOURS_PER_WEEK))):
        raise UsageError(
            f"--curve {path}: hours must be 0-23 (one day) or 0-167 (one week, 0 = Monday 00:00), "
            f"each once; got {len(values)} row(s)"
        )
    try:
        curve = weekly_curve([values[h] for h in sorted(values)])
    except UsageError as err:
        raise UsageError(f"--curve {path}: {err}") from None
    if header[1] == "multiplier":
        return tuple(avg_qps * m for m in curve), f"{path} (multipliers of {avg_qps:g} req/s)"
    return curve, f"{path} (req/s)"


def _when(hour: int) -> str:
    return f"{_DAYS[hour // 24]} {hour % 24:02d}:00"


def _replica_price(option: PlanOption) -> float:
    return option.cost.usd_per_hour / option.replicas


def autoscale_document(
    result: AutoscaleResult, option: PlanOption, curve: str, assumptions: list[str]
) -> dict[str, Any]:
    """The month as JSON (documented in docs/mixed-and-autoscale.md)."""
    c, offer = option.candidate, option.cost.placements[0].offer
    policy = result.policy
    return {
        "plan_option": {
            "model": c.model,
            "gpu": c.gpu,
            "tp": c.tp,
            "precision": str(c.precision),
            "max_qps_per_replica": result.max_qps_per_replica,
            "usd_per_replica_hour": result.usd_per_replica_hour,
            "offer": {
                "provider": offer.provider,
                "instance_type": offer.instance_type,
                "source": offer.source,
                "as_of": offer.as_of.isoformat() if offer.as_of else None,
            },
        },
        "curve": curve,
        "policy": {
            "min_replicas": policy.min_replicas,
            "scale_up_lag_min": policy.scale_up_lag_min,
            "cold_start_min": policy.cold_start_min,
        },
        "summary": {
            "mean_qps": result.mean_qps,
            "peak_qps": result.peak_qps,
            "replica_hours_per_month": result.replica_hours_per_month,
            "usd_per_month": result.usd_per_month,
            "static_replicas": result.static_replicas,
            "static_usd_per_month": result.static_usd_per_month,
            "savings_usd_per_month": result.savings_usd_per_month,
            "hours_at_risk_per_week": result.hours_at_risk_per_week,
            "share_requests_over_capacity": result.share_requests_over_capacity,
        },
        "hours": [
            {
                "hour": h.hour,
                "when": _when(h.hour),
                "qps": h.qps,
                "target_replicas": h.target_replicas,
                "ready_replicas_min": h.ready_replicas_min,
                "billed_replica_hours": h.billed_replica_hours,
                "minutes_at_risk": h.minutes_at_risk,
                "requests": h.requests,
                "requests_over_capacity": h.requests_over_capacity,
                "usd": h.usd,
            }
            for h in result.hours
        ],
        "assumptions": assumptions,
    }


def _print(
    result: AutoscaleResult, document: dict[str, Any], fmt: OutputFormat, hourly: bool, title: str
) -> None:
    if fmt is OutputFormat.json:
        render([], _SUMMARY, fmt, json_document=document)
        return
    if fmt is OutputFormat.csv:  # the data: one row per hour of the week
        render(document["hours"], _HOURLY, fmt)
        return
    fancy = fmt is OutputFormat.table
    static = result.static_usd_per_month
    replicas = [h.target_replicas for h in result.hours]
    rows: list[dict[str, object]] = [
        {
            "mark": "★" if fancy else "*",
            "provisioning": "autoscaled",
            "replicas": f"{min(replicas)}-{max(replicas)}",
            "replica_hours_per_month": round(result.replica_hours_per_month, 1),
            "usd_per_month": round(result.usd_per_month, 2),
            "vs_static": f"{(result.usd_per_month - static) / static:+.0%}" if static else "",
            "hours_at_risk_per_week": result.hours_at_risk_per_week,
            "share_over_capacity": f"{result.share_requests_over_capacity:.3%}",
        },
        {
            "mark": "",
            "provisioning": "static peak",
            "replicas": str(result.static_replicas),
            "replica_hours_per_month": round(result.static_replicas * HOURS_PER_MONTH, 1),
            "usd_per_month": round(static, 2),
            "vs_static": "+0%",
            "hours_at_risk_per_week": 0,
            "share_over_capacity": f"{0:.3%}",
        },
    ]
    render(rows, _SUMMARY, fmt, title=title, marked_row=0)
    if hourly:
        shown = [{**h, "qps": round(h["qps"], 3), "usd": round(h["usd"], 2)} for h in document["hours"]]
        render(shown, _HOURLY, fmt, title="hour by hour (one week; a month is 730/168 weeks)")
    lines = [f"assumption: {a}" for a in document["assumptions"]]
    if not hourly:
        lines.append("hour by hour: --hourly, or --format csv/json")
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="dim", highlight=False)


@with_workload_options
def autoscale_command(
    workload_options: dict[str, Any],
    shape: Annotated[
        str, typer.Option("--shape", help=f"built-in weekly curve: {', '.join(SHAPES)}")
    ] = "weekly",
    curve: Annotated[
        Path | None,
        typer.Option(
            "--curve", help="CSV 'hour,multiplier' or 'hour,qps', 24 or 168 rows (overrides --shape)"
        ),
    ] = None,
    min_replicas: Annotated[int, typer.Option("--min-replicas", help="never fewer replicas")] = 1,
    scale_up_lag_min: Annotated[
        int, typer.Option("--scale-up-lag-min", help="minutes from rising demand to replicas requested")
    ] = 5,
    cold_start_min: Annotated[
        int, typer.Option("--cold-start-min", help="minutes from a replica requested to it serving")
    ] = 10,
    hourly: Annotated[bool, typer.Option("--hourly", help="also show the 168-hour table")] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv (hourly series) or markdown")
    ] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the month as JSON")] = None,
) -> None:
    """Cost of an autoscaled month on the chosen plan's replicas vs static peak provisioning, and the ramp risk."""
    policy = ScalingPolicy(min_replicas, scale_up_lag_min, cold_start_min)
    multipliers = shape_multipliers(shape) if curve is None else ()  # an unknown shape fails before planning
    workload, snapshot = workload_from_options(workload_options)
    avg = workload.traffic.avg_qps
    if curve is not None:
        qps, curve_text = read_curve(curve, avg)
    else:
        qps = tuple(avg * m for m in multipliers)
        curve_text = f"shape {shape}: {SHAPES[shape]} (an assumption; weekly mean = {avg:g} req/s)"
    plan = require_feasible(make_plan(workload, snapshot))
    option = plan.options[plan.chosen or 0]
    result = autoscale_week(
        qps,
        max_qps_per_replica=option.perf.max_qps_per_replica,
        usd_per_replica_hour=_replica_price(option),
        policy=policy,
    )
    offer = option.cost.placements[0].offer
    assumptions = [
        f"curve: {curve_text}; peak {result.peak_qps:.4g} req/s = {result.peak_qps / result.mean_qps:.3g}x the "
        f"curve's mean (the workload's peak factor {workload.traffic.peak_factor:g} is not used)"
        if result.mean_qps > 0
        else f"curve: {curve_text}",
        f"replica: {option.candidate.label()} (the plan's chosen option) serves {result.max_qps_per_replica:.4g} "
        f"req/s within the SLO and costs ${result.usd_per_replica_hour:.4g}/h (plan $/h / replicas); "
        f"price source {offer.source}; as of {offer.as_of or 'unknown'}",
        f"scaling: min {policy.min_replicas} replica(s), scale-up lag {policy.scale_up_lag_min} min, cold start "
        f"{policy.cold_start_min} min (assumptions: --min-replicas, --scale-up-lag-min, --cold-start-min); "
        "scale-down at the hour boundary; replicas billed from request to removal",
        "month: 730 h = 730/168 repeats of the week; demand steps at hour boundaries",
    ]
    document = autoscale_document(result, option, curve_text, assumptions)
    if output is not None:
        write_json_atomically(output, document, example="autoscale.json")
    title = (
        f"{workload.name}: {result.mean_qps:.4g} req/s mean, {result.peak_qps:.4g} peak; "
        f"{option.candidate.label()} at {result.max_qps_per_replica:.4g} req/s per replica"
    )
    _print(result, document, fmt, hourly, title)
