"""``servewise alerts``: which budget thresholds this month's spend has crossed, where the run rate takes it by the
month's end, and which days spent anomalously — from a CSV of daily spend (``date,spend_usd``).

The month is the one of the CSV's last day; its rows must start on the 1st (a missing day would understate the
month-to-date). The rules are ``cost.AlertPolicy``'s, the same data the deploy stage and the gateway consume.
"""

from __future__ import annotations

import calendar
import csv
import math
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.cost import (
    AlertPolicy,
    Baseline,
    BudgetStatus,
    DailySpend,
    SpendAnomaly,
    ThresholdStatus,
    budget_alerts_from_daily,
    check_daily_series,
    spend_anomalies,
)
from servewise.errors import UsageError

from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["alerts_command", "read_daily_spend"]

COLUMNS = ("date", "spend_usd")


def read_daily_spend(path: Path) -> list[DailySpend]:
    """Rows of ``date,spend_usd`` (ISO dates, USD); anything else is a one-line error naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise UsageError(
            f"--spend {path}: cannot read ({reason}); give a CSV with columns date,spend_usd"
        ) from err
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    if header[:2] != list(COLUMNS):
        raise UsageError(
            f"--spend {path}: header must start with date,spend_usd (got {','.join(header) or 'none'})"
        )
    rows: list[DailySpend] = []
    for line, row in enumerate(reader, start=2):
        raw_day, raw_usd = ((row.get(name) or "").strip() for name in COLUMNS)
        try:
            day = date.fromisoformat(raw_day)
            usd = float(raw_usd)
        except ValueError as err:
            raise UsageError(
                f"--spend {path} line {line}: expected an ISO date and a number in USD, got {raw_day!r},{raw_usd!r}"
            ) from err
        if not (math.isfinite(usd) and usd >= 0):
            raise UsageError(f"--spend {path} line {line}: spend must be ≥ 0 USD (got {raw_usd})")
        rows.append(DailySpend(day, usd))
    if not rows:
        raise UsageError(f"--spend {path}: no rows; give one row per day: date,spend_usd")
    return rows


def _parse_thresholds(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise UsageError(
            f"--thresholds: expected percentages separated by commas, e.g. 80,95,100 (got {text!r})"
        ) from err


def _month_to_date(series: list[DailySpend], path: Path) -> tuple[list[float], int]:
    last = series[-1].day
    month = [d for d in series if (d.day.year, d.day.month) == (last.year, last.month)]
    if month[0].day.day != 1:
        raise UsageError(
            f"--spend {path}: {last:%Y-%m} starts on {month[0].day}; the month-to-date needs every day from the 1st "
            "(add rows with spend 0 if nothing was spent)"
        )
    return [d.usd for d in month], calendar.monthrange(last.year, last.month)[1]


def _status_text(threshold: ThresholdStatus) -> str:
    if threshold.crossed:
        return f"CROSSED on day {threshold.crossed_on_day}"
    if threshold.projected_day is not None:
        return f"projected on day {threshold.projected_day}"
    return "not this month at the current rate"


def _document(
    policy: AlertPolicy, status: BudgetStatus, anomalies: list[SpendAnomaly], month: str, days: int
) -> dict[str, Any]:
    return {
        "policy": policy.to_json(),
        "month": month,
        "budget_usd_month": status.budget_usd_month,
        "spend_to_date_usd": status.spend_to_date_usd,
        "day_of_month": status.day_of_month,
        "days_in_month": status.days_in_month,
        "run_rate_usd_per_day": status.run_rate_usd_per_day,
        "projected_month_usd": status.projected_month_usd,
        "thresholds": [
            {
                "threshold_pct": t.threshold_pct,
                "threshold_usd": t.threshold_usd,
                "crossed": t.crossed,
                "crossed_on_day": t.crossed_on_day,
                "projected_day": t.projected_day,
            }
            for t in status.thresholds
        ],
        "anomalies": [
            {"date": a.day.isoformat(), "spend_usd": a.usd, "baseline_usd": a.baseline_usd, "ratio": a.ratio}
            for a in anomalies
        ],
        "days_judged_for_anomalies": max(0, days - policy.anomaly_window_days),
    }


_CSV_COLUMNS = (
    Column("kind", "kind"),
    Column("threshold_pct", "threshold %", numeric=True),
    Column("threshold_usd", "threshold $", numeric=True),
    Column("crossed", "crossed"),
    Column("crossed_on_day", "crossed on day", numeric=True),
    Column("projected_day", "projected day", numeric=True),
    Column("date", "date"),
    Column("spend_usd", "spend $", numeric=True),
    Column("baseline_usd", "baseline $", numeric=True),
    Column("ratio", "x baseline", numeric=True),
)
_THRESHOLD_COLUMNS = (
    Column("threshold_pct", "threshold %", numeric=True),
    Column("threshold_usd", "threshold $", numeric=True),
    Column("status", "status"),
)
_ANOMALY_COLUMNS = (
    Column("date", "date"),
    Column("spend_usd", "spend $", numeric=True),
    Column("baseline_usd", "baseline $", numeric=True),
    Column("ratio", "x baseline", numeric=True),
)


def _print(document: dict[str, Any], status: BudgetStatus, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _CSV_COLUMNS, fmt, json_document=document)
        return
    if fmt is OutputFormat.csv:
        rows = [{"kind": "threshold", **t} for t in document["thresholds"]]
        rows += [{"kind": "anomaly", **a} for a in document["anomalies"]]
        render(rows, _CSV_COLUMNS, fmt)
        return
    policy = document["policy"]
    budget = document["budget_usd_month"]
    rows = [
        {"threshold_pct": t.threshold_pct, "threshold_usd": t.threshold_usd, "status": _status_text(t)}
        for t in status.thresholds
    ]
    crossed = [i for i, t in enumerate(status.thresholds) if t.crossed]
    render(
        rows,
        _THRESHOLD_COLUMNS,
        fmt,
        title=f"budget {document['month']}",
        marked_row=crossed[-1] if crossed else None,
    )
    rule = (
        f"spend > {policy['anomaly_factor']:g} x the trailing {policy['anomaly_window_days']}-day "
        f"{policy['anomaly_baseline']}, {document['days_judged_for_anomalies']} days judged"
    )
    if document["anomalies"]:
        if fmt is OutputFormat.markdown:
            print()
        render(document["anomalies"], _ANOMALY_COLUMNS, fmt, title="anomalous days")
    lines = [
        f"month to date: ${document['spend_to_date_usd']:,.2f} of ${budget:,.2f} "
        f"({100 * document['spend_to_date_usd'] / budget:.0f} %) after day {document['day_of_month']} of "
        f"{document['days_in_month']}",
        f"projection: ${document['run_rate_usd_per_day']:,.2f}/day so far this month -> "
        f"${document['projected_month_usd']:,.2f} at month end "
        f"({100 * document['projected_month_usd'] / budget:.0f} % of the budget)",
    ]
    lines.append(f"anomalous days ({rule}): {len(document['anomalies']) or 'none'}")
    lines.append(
        "policy: thresholds "
        + "/".join(f"{p:g}" for p in policy["budget_thresholds_pct"])
        + f" % [--thresholds], anomaly factor {policy['anomaly_factor']:g} [--anomaly-factor], window "
        f"{policy['anomaly_window_days']} days [--window-days], baseline {policy['anomaly_baseline']} [--baseline]"
    )
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="bold" if line.startswith("projection") else "dim", highlight=False)


_POLICY = AlertPolicy()
_THRESHOLDS = ",".join(f"{pct:g}" for pct in _POLICY.budget_thresholds_pct)
"""The flags' defaults are the policy's own (the plan document carries the same policy)."""


def alerts_command(
    budget: Annotated[float, typer.Option("--budget", help="monthly budget, USD")],
    spend: Annotated[Path, typer.Option("--spend", help="CSV of daily spend: date,spend_usd (ISO dates)")],
    thresholds: Annotated[
        str, typer.Option("--thresholds", help="budget alert levels, % of the budget, comma-separated")
    ] = _THRESHOLDS,
    anomaly_factor: Annotated[
        float, typer.Option("--anomaly-factor", help="a day over this multiple of the baseline is anomalous")
    ] = _POLICY.anomaly_factor,
    window_days: Annotated[
        int, typer.Option("--window-days", help="trailing days the baseline is taken over")
    ] = _POLICY.anomaly_window_days,
    baseline: Annotated[
        Baseline, typer.Option("--baseline", help="median (robust to an earlier spike) or mean")
    ] = _POLICY.anomaly_baseline,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
) -> None:
    """Budget alerts (thresholds crossed, month-end projection) and anomalous days from a daily-spend CSV."""
    try:
        policy = AlertPolicy(
            budget_thresholds_pct=_parse_thresholds(thresholds),
            anomaly_factor=anomaly_factor,
            anomaly_window_days=window_days,
            anomaly_baseline=baseline,
        )
    except UsageError as err:
        flags = {"budget_thresholds_pct": "--thresholds", "anomaly_factor": "--anomaly-factor"}
        flags["anomaly_window_days"] = "--window-days"
        message = str(err)
        for field, flag in flags.items():
            message = message.replace(f"{field}:", f"{flag}:")
        raise UsageError(message) from err
    if not (math.isfinite(budget) and budget > 0):
        raise UsageError(f"--budget: must be > 0 USD per month (got {budget:g})")
    try:
        series = check_daily_series(read_daily_spend(spend))
    except UsageError as err:
        message = str(err)
        raise UsageError(message if message.startswith("--spend") else f"--spend {spend}: {message}") from err
    daily, days_in_month = _month_to_date(series, spend)
    status = budget_alerts_from_daily(
        policy, budget_usd_month=budget, daily_usd=daily, days_in_month=days_in_month
    )
    anomalies = spend_anomalies(policy, series)
    month = f"{series[-1].day:%Y-%m}"
    _print(_document(policy, status, anomalies, month, len(series)), status, fmt)
