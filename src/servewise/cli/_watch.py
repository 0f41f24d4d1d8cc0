"""``servewise watch``: a running deployment against its plan — SLO compliance, gates, efficiency, right-sizing and
drift over a window of metrics (docs/watch.md).

Exit codes, so it can gate a CI/CD step: 0 every gate passed (or was skipped without being required), 1 a gate
failed, 2 bad input (missing plan, unknown option, unreachable endpoints, malformed gates file, a window ≤ 0).
Everything is checked before the window starts, so a typo never costs the wait.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import TaskID

from servewise.errors import UsageError
from servewise.watch._gates import GateSpec, default_gates, load_gates
from servewise.watch._html import render_html
from servewise.watch._observation import Observation, WatchTarget
from servewise.watch._promql import prometheus_observation
from servewise.watch._report import build_report, report_document
from servewise.watch._scrape import scrape_observation, validate_window
from servewise.watch._target import load_target

from ._output import OutputFormat, check_writable, render, stderr_console, stderr_progress, write_atomically
from ._watch_render import render_report, verdict

__all__ = ["parse_duration", "watch_command"]

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_SCRAPE_INTERVAL_S = 5.0
MIN_PROMQL_STEP_S = 30.0
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h)?\s*$")


class WatchFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def parse_duration(text: str, flag: str) -> float:
    """``"60s"``, ``"5m"``, ``"1h"``, ``"500ms"`` or a bare number of seconds → seconds (> 0)."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"{flag} {text!r} is not a duration; write e.g. 60s, 5m, 1h or 500ms")
    seconds = float(match.group(1)) * _UNITS_S[match.group(2) or "s"]
    if seconds <= 0:
        raise UsageError(f"{flag} must be longer than 0 (got {text!r}); e.g. {flag} 60s")
    return seconds


def _default_interval_s(window_s: float, prometheus: str | None) -> float:
    """5 s for the direct scrape; for PromQL a step of 1/60 of the window but at least 30 s (``rate`` needs two
    scrapes per step, and 15 s is Prometheus's usual scrape interval), never longer than the window."""
    if prometheus is None:
        return min(DEFAULT_SCRAPE_INTERVAL_S, window_s)
    return min(window_s, max(MIN_PROMQL_STEP_S, window_s / 60.0))


def _end(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--end {text!r} is not an ISO-8601 time; e.g. 2026-11-25T10:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _observe(
    endpoints: list[str],
    prometheus: str | None,
    *,
    window_s: float,
    interval_s: float,
    gateway: str | None,
    selector: str,
    gateway_selector: str,
    end: datetime | None,
) -> Observation:
    if prometheus is not None:
        return prometheus_observation(
            prometheus,
            window_s=window_s,
            step_s=interval_s,
            selector=selector,
            gateway_selector=gateway_selector,
            end=end,
        )
    description = f"watching {len(endpoints)} replica(s) for {window_s:g} s"
    progress = stderr_progress()
    task: TaskID | None = None

    def on_round(done: int, total: int) -> None:
        """The bar appears once the baseline answered, so an unreachable endpoint is one error line only."""
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done)

    try:
        return asyncio.run(
            scrape_observation(
                endpoints, window_s=window_s, interval_s=interval_s, gateway=gateway, on_round=on_round
            )
        )
    finally:
        progress.stop()


def _check_sources(
    endpoints: list[str],
    prometheus: str | None,
    gateway: str | None,
    selector: str,
    gateway_selector: str,
    end: str | None,
) -> None:
    if bool(endpoints) == (prometheus is not None):
        raise UsageError(
            "give one metrics source: --endpoint URL (each replica's /metrics; repeat it) or --prometheus URL"
        )
    if prometheus is not None and gateway is not None:
        raise UsageError(
            "with --prometheus, select the gateway's series with --gateway-selector, not --gateway"
        )
    if prometheus is None and (selector or gateway_selector or end):
        raise UsageError("--selector, --gateway-selector and --end apply to --prometheus only")


def watch_command(
    plan: Annotated[
        Path, typer.Option("--plan", help="plan JSON the deployment was made from (servewise plan -o)")
    ],
    option: Annotated[
        int | None,
        typer.Option("--option", min=1, help="rank of the deployed option (default: the chosen one)"),
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option("--endpoint", help="a vLLM replica's /metrics URL to scrape; repeat for each replica"),
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="read the metrics from this Prometheus server instead")
    ] = None,
    selector: Annotated[
        str, typer.Option("--selector", help='PromQL label matchers of the replicas, e.g. job="vllm"')
    ] = "",
    gateway: Annotated[
        str | None, typer.Option("--gateway", help="a Servewise gateway's /metrics URL (spend, fallbacks)")
    ] = None,
    gateway_selector: Annotated[
        str, typer.Option("--gateway-selector", help="PromQL label matchers of the gateway's series")
    ] = "",
    window: Annotated[str, typer.Option("--window", help="how long to watch (60s, 5m, 1h)")] = "60s",
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            help="scrape interval, or the PromQL step (default: 5s; PromQL: window/60, at least 30s)",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="with --prometheus: end of the window (ISO-8601; default now)")
    ] = None,
    gates: Annotated[
        Path | None, typer.Option("--gates", help="YAML file of gate thresholds (docs/watch.md)")
    ] = None,
    drift_threshold: Annotated[
        float, typer.Option("--drift-threshold", help="predicted-vs-observed error (%) that counts as drift")
    ] = 25.0,
    store_observed: Annotated[
        bool,
        typer.Option("--store-observed", help="when drifted, store the window as measured benchmark rows"),
    ] = False,
    html: Annotated[Path | None, typer.Option("--html", help="also write an HTML report with charts")] = None,
    fmt: Annotated[WatchFormat, typer.Option("--format", help="table, json or markdown")] = WatchFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the JSON report here")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Watch a deployment against its plan: SLO compliance, gates (exit 1 when one fails), efficiency,
    right-sizing and drift."""
    endpoints = list(endpoint or [])
    _check_sources(endpoints, prometheus, gateway, selector, gateway_selector, end)
    window_s = parse_duration(window, "--window")
    interval_s = (
        parse_duration(interval, "--interval") if interval else _default_interval_s(window_s, prometheus)
    )
    validate_window(window_s, interval_s)
    if not drift_threshold > 0:
        raise UsageError(
            f"--drift-threshold must be a positive percentage (got {drift_threshold:g}); e.g. 25"
        )
    target = load_target(plan, option)
    specs = load_gates(gates, target) if gates is not None else default_gates(target)
    for path, example in ((output, "watch.json"), (html, "watch.html")):
        if path is not None:
            check_writable(path, example)
    observation = _observe(
        endpoints,
        prometheus,
        window_s=window_s,
        interval_s=interval_s,
        gateway=gateway,
        selector=selector,
        gateway_selector=gateway_selector,
        end=_end(end),
    )
    passed = _report(target, observation, specs, drift_threshold, store_observed, db_url, fmt, output, html)
    if not passed:
        raise SystemExit(1)


def _report(
    target: WatchTarget,
    observation: Observation,
    specs: list[GateSpec],
    drift_threshold: float,
    store_observed: bool,
    db_url: str | None,
    fmt: WatchFormat,
    output: Path | None,
    html: Path | None,
) -> bool:
    report = build_report(
        target,
        observation,
        gates=specs,
        drift_threshold_pct=drift_threshold,
        store_drift_rows=store_observed,
        db_url=db_url,
    )
    document = report_document(report)
    console = stderr_console()
    for warning in report.observation.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if fmt is WatchFormat.json:
        render([], [], OutputFormat.json, json_document=document)
    else:
        render_report(report, OutputFormat(fmt.value))
    if output is not None:
        write_atomically(output, json.dumps(document, indent=2) + "\n", example="watch.json")
    if html is not None:
        write_atomically(html, render_html(report), flag="--html", example="watch.html")
    console.print(verdict(report), highlight=False)
    return report.passed
