"""The *Watch* page (``/watch``): a running deployment against its plan, from a report file or watched live.

Two ways in: open a report document (``servewise watch --format json``, uploaded or pasted; ``POST /watch/report``),
or watch live (``POST /watch/live``): a plan from this server's plan store or an uploaded plan JSON, the replicas'
``/metrics`` URLs and a window of at most 120 s, scraped during the request. Either way the report is shown by
``servewise.watch._html.render_report_body`` with the charts of ``report_charts`` — the same code as the HTML file
``servewise watch --html`` writes — so the page and the file never differ. ``POST /watch/download`` gives the shown
report back as that HTML file or as JSON (the report travels in the form: nothing is kept on the server).

Bad input re-renders the page with a one-line message next to the field (HTTP 400); the checks are
``servewise.api._services_watch``'s, the same as ``/api/v1/watch``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from servewise.api import _services_watch as watch
from servewise.errors import ServewiseError, UsageError
from servewise.watch._html import render_html, render_report_body
from servewise.watch._html_charts import report_charts
from servewise.watch._observation import WatchReport
from servewise.web._router import db_url, plan_store, templates

__all__ = ["UPLOAD_MAX_BYTES", "watch_router"]

watch_router = APIRouter(include_in_schema=False)

UPLOAD_MAX_BYTES = 8 * 1024 * 1024
"""Largest report or plan file accepted (a day of 60 s samples is under 1 MB; a 50-option plan about 1 MB)."""
DEFAULT_WINDOW_S = 30.0


@dataclass
class LiveForm:
    """The live-watch fields as typed, and a message per field that is wrong."""

    plan_id: str = ""
    option: str = ""
    endpoints: str = ""
    gateway: str = ""
    window_s: str = f"{DEFAULT_WINDOW_S:g}"
    interval_s: str = f"{watch.DEFAULT_INTERVAL_S:g}"
    errors: dict[str, str] = field(default_factory=dict)


def _page(
    request: Request,
    *,
    live: LiveForm | None = None,
    report: WatchReport | None = None,
    report_errors: dict[str, str] | None = None,
    report_text: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    live = live or LiveForm(plan_id=request.query_params.get("plan", ""))
    context: dict[str, Any] = {
        "active": "watch",
        "live": live,
        "recent_plans": plan_store(request).recent(20),
        "report_errors": report_errors or {},
        "report_text": report_text,
        "window_max_s": watch.WINDOW_MAX_S,
        "endpoints_max": watch.ENDPOINTS_MAX,
        "interval_min_s": watch.INTERVAL_MIN_S,
        "error_message": (report_errors or {}).get("page") or live.errors.get("page"),
    }
    if report is not None:
        charts = report_charts(report)
        context |= {
            "report": report,
            "report_body": render_report_body(report, charts),
            "charts": charts,
            "with_charts": bool(charts),
            "report_json": json.dumps(watch.report_document(report), separators=(",", ":")),
        }
    return templates.TemplateResponse(request, "watch.html", context, status_code=status_code)


async def _text(form: FormData, file_key: str, text_key: str, what: str) -> str:
    """The uploaded file's text when one was chosen, else the pasted text (``UsageError`` when too large)."""
    upload = form.get(file_key)
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(UPLOAD_MAX_BYTES + 1)
        if len(data) > UPLOAD_MAX_BYTES:
            raise UsageError(f"{what} file is larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(
                f"{what} file {upload.filename!r} is not UTF-8 text; choose the JSON file"
            ) from None
    value = form.get(text_key)
    return value if isinstance(value, str) else ""


@watch_router.get("/watch", response_class=HTMLResponse)
def watch_page(request: Request) -> HTMLResponse:
    """The two forms (open a report, watch live); ``?plan=ID`` preselects a plan of this server."""
    return _page(request)


@watch_router.post("/watch/report", response_class=HTMLResponse)
async def watch_report(request: Request) -> HTMLResponse:
    """Show an uploaded or pasted report document."""
    async with request.form(max_part_size=UPLOAD_MAX_BYTES) as form:  # closes the uploaded file's buffer
        return await _show_report(request, form)


async def _show_report(request: Request, form: FormData) -> HTMLResponse:
    pasted = form.get("report_json")
    pasted_text = pasted if isinstance(pasted, str) else ""
    try:
        text = await _text(form, "report_file", "report_json", "the watch report")
        report = watch.report_from_json(watch.parse_json_text(text, "the watch report"))
    except ServewiseError as err:
        return _page(request, report_errors={"report": str(err)}, report_text=pasted_text, status_code=400)
    return _page(request, report=report)


def _number(text: str, name: str, live: LiveForm) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        live.errors[name] = f"{text.strip()!r} is not a number of seconds"
        return None


async def _live_plan(request: Request, form: FormData, live: LiveForm) -> tuple[dict[str, Any], str] | None:
    """(plan document, label) from the uploaded or pasted plan JSON, else the chosen stored plan."""
    try:
        text = await _text(form, "plan_file", "plan_json", "the plan")
        if text.strip():
            return watch.plan_from_json(
                watch.parse_json_text(text, "the plan"), "the uploaded plan"
            ), "upload"
    except ServewiseError as err:
        live.errors["plan"] = str(err)
        return None
    stored = plan_store(request).get(live.plan_id) if live.plan_id else None
    if stored is None:
        live.errors["plan"] = (
            f"no plan with id {live.plan_id!r} on this server (plans are kept in memory); choose its JSON file"
            if live.plan_id
            else "choose a plan of this server or its JSON file (`servewise plan ... -o plan.json`)"
        )
        return None
    return stored.document, f"web:plan/{stored.plan_id}"


@watch_router.post("/watch/live", response_class=HTMLResponse)
async def watch_live(request: Request) -> HTMLResponse:
    """Scrape the given replicas over the window (≤ 120 s) and compare them with the plan."""
    async with request.form(max_part_size=UPLOAD_MAX_BYTES) as form:
        return await _live(request, form)


async def _live(request: Request, form: FormData) -> HTMLResponse:
    def value(key: str, default: str = "") -> str:
        found = form.get(key)
        return found if isinstance(found, str) else default

    live = LiveForm(
        plan_id=value("plan_id").strip(),
        option=value("option").strip(),
        endpoints=value("endpoints"),
        gateway=value("gateway").strip(),
        window_s=value("window_s", f"{DEFAULT_WINDOW_S:g}"),
        interval_s=value("interval_s", f"{watch.DEFAULT_INTERVAL_S:g}"),
    )
    plan = await _live_plan(request, form, live)
    option: int | None = None
    if live.option:
        if live.option.isdigit() and int(live.option) >= 1:
            option = int(live.option)
        else:
            live.errors["option"] = (
                f"option {live.option!r} is not a rank (1, 2, …); leave it empty for the chosen one"
            )
    endpoints = live.endpoints.splitlines()
    try:
        endpoints = await run_in_threadpool(watch.check_endpoints, endpoints)  # may resolve host names
    except UsageError as err:
        live.errors["endpoints"] = str(err)
    window_s = _number(live.window_s, "window_s", live)
    interval_s = _number(live.interval_s, "interval_s", live)
    if window_s is not None and interval_s is not None:
        try:
            watch.check_window(window_s, interval_s)
        except UsageError as err:
            live.errors["interval_s" if str(err).startswith("interval") else "window_s"] = str(err)
    if live.errors or plan is None or window_s is None or interval_s is None:
        return _page(request, live=live, status_code=400)
    try:
        report = await watch.live_report(
            plan[0],
            plan_path=plan[1],
            option=option,
            endpoints=endpoints,
            window_s=window_s,
            interval_s=interval_s,
            gateway=live.gateway or None,
            db_url=db_url(request),
        )
    except ServewiseError as err:
        live.errors["page"] = str(err)
        return _page(request, live=live, status_code=400)
    return _page(request, live=live, report=report)


@watch_router.post("/watch/download", response_model=None)
async def watch_download(request: Request) -> Response:
    """The shown report as the standalone HTML file (``format=html``) or as its JSON document."""
    async with request.form(max_part_size=UPLOAD_MAX_BYTES) as form:
        text, kind = form.get("report_json"), form.get("format")
    try:
        report = watch.report_from_json(
            watch.parse_json_text(text if isinstance(text, str) else "", "the report")
        )
    except ServewiseError as err:
        return _page(request, report_errors={"report": str(err)}, status_code=400)
    stem = "servewise-watch-" + re.sub(r"[^0-9A-Za-z-]", "", report.observation.ended_at[:19])
    if kind == "json":
        body, media, name = (
            json.dumps(watch.report_document(report), indent=2),
            "application/json",
            f"{stem}.json",
        )
    else:
        body, media, name = render_html(report), "text/html; charset=utf-8", f"{stem}.html"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
