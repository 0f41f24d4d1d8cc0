"""What ``/api/v1/watch`` and the web *Watch* page both call: read a watch report document, check the inputs of a
live watch, and run one (scrape the replicas over the window, compare with the plan).

Why a module of its own next to ``_services``: the REST route and the page must refuse the same inputs with the same
one-line messages and produce the same report, so the checks and the run live here once. The watch functions
(``servewise.watch``) are imported when called: the API app must start even where a watch module is missing.

Limits, because a live watch holds the request open for the whole window: at most ``WINDOW_MAX_S`` seconds and
``ENDPOINTS_MAX`` endpoints; a scrape every ``interval_s`` ≥ ``INTERVAL_MIN_S`` seconds and at most the window
(the first scrape is the baseline: counter and histogram deltas need a first and a last reading). Longer windows
belong to the CLI (``servewise watch``) or to Prometheus (``--prometheus``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool

from servewise.errors import ServewiseError, UsageError
from servewise.planner import check_plan_document
from servewise.watch._html import render_report_body
from servewise.watch._observation import WatchReport

from ._egress import allowed_networks, check_egress

__all__ = [
    "DEFAULT_INTERVAL_S",
    "ENDPOINTS_MAX",
    "INTERVAL_MIN_S",
    "WINDOW_MAX_S",
    "WINDOW_MIN_S",
    "check_endpoints",
    "check_window",
    "default_interval_s",
    "live_report",
    "parse_json_text",
    "plan_from_json",
    "report_document",
    "report_from_json",
]

WINDOW_MIN_S = 1.0
WINDOW_MAX_S = 120.0
ENDPOINTS_MAX = 16
INTERVAL_MIN_S = 0.5
DEFAULT_INTERVAL_S = 5.0


def default_interval_s(window_s: float) -> float:
    """A scrape every 5 s, or every half window for windows under 10 s (a chart then has at least 2 points)."""
    return max(INTERVAL_MIN_S, min(DEFAULT_INTERVAL_S, window_s / 2))


def parse_json_text(text: str, what: str) -> Any:
    """``text`` as JSON, or a one-line ``UsageError`` naming ``what`` and the line of the mistake."""
    if not text.strip():
        raise UsageError(f"{what} is empty; paste the JSON document or choose its file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{what} is not JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


def report_from_json(document: Any) -> WatchReport:
    """A report document (``servewise watch --format json``) as a ``WatchReport``; one-line error otherwise.

    Why it is drawn once here: ``report_from_document`` checks the shape, not every value's type, and a hand-edited
    file with a string where a number belongs must be a 400 naming the problem, not a 500 while rendering."""
    from servewise.watch._report import report_from_document

    if not isinstance(document, dict):
        raise UsageError(
            "the watch report must be a JSON object, as `servewise watch --format json` writes it "
            f"(got {type(document).__name__})"
        )
    how = "write one with `servewise watch ... --format json`"
    try:
        report = report_from_document(document)
    except ServewiseError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
        raise UsageError(f"not a watch report document ({detail}); {how}") from None
    try:
        render_report_body(report)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"the watch report has a value of the wrong type ({detail}); {how}") from None
    return report


def report_document(report: WatchReport) -> dict[str, Any]:
    """The stable JSON document of ``report`` (the CLI's ``--format json``)."""
    from servewise.watch._report import report_document as document_of

    return document_of(report)


def plan_from_json(document: Any, where: str = "the plan") -> dict[str, Any]:
    """A plan document (``servewise plan --format json``), checked as ``servewise deploy`` checks it."""
    return check_plan_document(document, where)


def check_endpoints(endpoints: Sequence[str]) -> list[str]:
    """Non-blank http(s) URLs, at most ``ENDPOINTS_MAX``, duplicates dropped (order kept), each on a host this
    server may fetch from (``_egress``: never link-local, only ``SERVEWISE_WATCH_ALLOW`` when it is set)."""
    cleaned = list(dict.fromkeys(e.strip() for e in endpoints if e.strip()))
    if not cleaned:
        raise UsageError(
            "no endpoints: give each replica's metrics URL, one per line, e.g. http://10.0.0.5:8000/metrics"
        )
    if len(cleaned) > ENDPOINTS_MAX:
        raise UsageError(
            f"{len(cleaned)} endpoints is more than the {ENDPOINTS_MAX} a live watch scrapes; "
            "watch a Prometheus instead (`servewise watch --prometheus URL`)"
        )
    allowed = allowed_networks()
    for url in cleaned:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"endpoint {url!r} is not an http(s) URL; give e.g. http://10.0.0.5:8000/metrics"
            )
        check_egress(url, allowed)
    return cleaned


def check_window(window_s: float, interval_s: float) -> None:
    """The window and scrape interval a live watch may use (module docstring)."""
    if not WINDOW_MIN_S <= window_s <= WINDOW_MAX_S:
        raise UsageError(
            f"window {window_s:g} s is out of range: a live watch lasts {WINDOW_MIN_S:g} to {WINDOW_MAX_S:g} s; "
            "for longer windows run `servewise watch` from the command line or point it at Prometheus"
        )
    if interval_s < INTERVAL_MIN_S:
        raise UsageError(f"interval {interval_s:g} s is too short: scrape at most every {INTERVAL_MIN_S:g} s")
    if interval_s > window_s:
        raise UsageError(
            f"interval {interval_s:g} s is longer than the {window_s:g} s window; the first scrape is the "
            "baseline and each later one closes an interval, so use an interval of at most the window"
        )


async def live_report(
    plan: dict[str, Any],
    *,
    plan_path: str,
    option: int | None,
    endpoints: Sequence[str],
    window_s: float,
    interval_s: float,
    gateway: str | None = None,
    drift_threshold_pct: float = 25.0,
    db_url: str | None = None,
) -> WatchReport:
    """Scrape ``endpoints`` (and the gateway) over the window, then compare with the plan's option.

    The plan is resolved before scraping, so a bad option fails at once instead of after the window. Nothing is
    written: drift rows are not stored (the CLI ``servewise watch`` can store them)."""
    from servewise.watch._report import build_report
    from servewise.watch._scrape import scrape_observation
    from servewise.watch._target import target_from_plan

    urls = await run_in_threadpool(check_endpoints, endpoints)  # may resolve host names
    check_window(window_s, interval_s)
    if gateway is not None:
        gateway = (await run_in_threadpool(check_endpoints, [gateway]))[0] if gateway.strip() else None
    document = plan_from_json(plan)
    try:
        target = target_from_plan(document, plan_path, option)
    except ServewiseError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise UsageError(
            f"the plan's option {option or 'chosen'} cannot be watched ({type(err).__name__}: {err}); "
            "give the document `servewise plan --format json` wrote"
        ) from None
    observation = await scrape_observation(urls, window_s=window_s, interval_s=interval_s, gateway=gateway)
    return await run_in_threadpool(
        build_report, target, observation, drift_threshold_pct=drift_threshold_pct, db_url=db_url
    )
