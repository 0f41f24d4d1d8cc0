"""The operations pages: Deploy (YAML preview, validation, zip), Catalog (facts with their sources and ages) and
Spend (the gateway ledger against budgets).

Why these pages only shape data for display: every number comes from ``servewise.api._services`` — the same
functions the REST API answers with — so the page and ``/api/v1`` can never disagree. What is left here is input
checking (messages next to the field) and arranging rows into tables and one chart. The preview shows the files of
``deploy_bundle`` and the download is ``deploy_zip`` of the same choices — the same rendering. The services are
imported inside the handlers: ``servewise.api`` builds the app that installs these pages, so a module-level import
would be circular.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from servewise.catalog import STALE_AFTER_DAYS
from servewise.errors import ServewiseError
from servewise.web._router import db_url as app_db_url
from servewise.web._router import plan_store, templates
from servewise.web._store import StoredPlan

__all__ = ["TARGETS", "ops_router"]

ops_router = APIRouter(include_in_schema=False)
T = TypeVar("T")

TARGETS = ("vllm", "kserve", "helm")
"""Deploy targets, as ``servewise deploy --target`` names them."""
DEFAULT_NAMESPACE = "servewise"
CATALOG_SECTIONS = (
    ("gpus", "GPUs"),
    ("models", "Models"),
    ("offers", "Cloud prices"),
    ("api-prices", "API prices"),
)
PRICED_KINDS = ("offers", "api-prices")


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


# -- Deploy ------------------------------------------------------------------------------------------------------
@dataclass
class DeployForm:
    """The deploy choices as typed by the user, and a message per field that is wrong."""

    option_text: str
    target: str
    namespace: str
    option: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def query(self) -> str:
        """The query string of the same choices (the zip link repeats them)."""
        return urlencode({"option": self.option_text, "target": self.target, "namespace": self.namespace})


def _option_summary(option: Mapping[str, Any]) -> dict[str, Any]:
    candidate = option.get("candidate") or {}
    cost = option.get("cost") or {}
    return {
        "rank": option.get("rank"),
        "model": candidate.get("model"),
        "precision": candidate.get("precision"),
        "hardware": candidate.get("gpu")
        if candidate.get("cpu")
        else f"{candidate.get('tp')}×{candidate.get('gpu')}",
        "replicas": option.get("replicas"),
        "usd_per_month": cost.get("usd_per_month"),
    }


def _deploy_form(document: Mapping[str, Any], option: str | None, target: str, namespace: str) -> DeployForm:
    """Check the query: the option must be a rank of this plan, the target one of ``TARGETS``."""
    options: Sequence[Any] = document.get("options") or []
    chosen = document.get("chosen")
    default = (chosen + 1) if isinstance(chosen, int) and 0 <= chosen < len(options) else 1
    text = (option or "").strip() or str(default)
    form = DeployForm(text, target, namespace.strip() or DEFAULT_NAMESPACE)
    if not options:
        form.errors["option"] = (
            "this plan has no option that meets the workload; change it on Describe and plan again"
        )
    elif not text.isdigit() or not 1 <= int(text) <= len(options):
        form.errors["option"] = (
            f"option {text!r} is out of range: this plan has {len(options):,} option"
            f"{'s' if len(options) != 1 else ''}; give a rank from 1 to {len(options):,}"
        )
    else:
        form.option = int(text)
    if target not in TARGETS:
        form.errors["target"] = f"unknown target {target!r}; choose one of {', '.join(TARGETS)}"
    return form


def _bundle_files(files: Sequence[tuple[str, str]], report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each rendered file with its text and the check results of the objects it holds."""
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in report.get("results") or []:
        results[str(result.get("file"))].append(result)
    shown = []
    for path, text in files:
        checked = results.get(path, [])
        failed = any(r.get("result") == "fail" for r in checked)
        status = "fail" if failed else ("ok" if any(r.get("result") == "ok" for r in checked) else "skipped")
        shown.append({"path": path, "text": text, "results": checked, "status": status})
    return shown


def _stored(request: Request, plan_id: str) -> StoredPlan | None:
    return plan_store(request).get(plan_id)


def _missing_plan(request: Request, plan_id: str) -> HTMLResponse:
    return _page(
        request,
        "deploy.html",
        {
            "active": "deploy",
            "missing_plan_id": plan_id,
            "error_message": f"No plan with id {plan_id!r}: it was never made here, or the server restarted "
            "since (plans are kept in memory). Describe the workload again to get a new plan.",
        },
        status_code=404,
    )


def _deploy_choices(
    request: Request, plan_id: str, option: str | None, target: str, namespace: str
) -> tuple[StoredPlan | None, DeployForm | None]:
    stored = _stored(request, plan_id)
    if stored is None:
        return None, None
    return stored, _deploy_form(stored.document, option, target, namespace)


def _guarded(form: DeployForm, make: Callable[[], T]) -> T | None:
    """``make()`` for valid choices; a service error becomes a message next to its field (or the page's)."""
    if form.errors:
        return None
    try:
        return make()
    except ServewiseError as err:
        form.errors["namespace" if "namespace" in str(err) else "page"] = str(err)
        return None


@ops_router.get("/deploy", response_class=HTMLResponse)
def deploy_index(request: Request) -> HTMLResponse:
    """Which plan to deploy: the recent plans of this server, newest first."""
    recent = plan_store(request).recent(20)
    return _page(request, "deploy.html", {"active": "deploy", "recent": recent, "index": True})


@ops_router.get("/deploy/{plan_id}.zip", response_model=None)
def deploy_download(
    request: Request,
    plan_id: str,
    option: str | None = None,
    target: str = "vllm",
    namespace: str = DEFAULT_NAMESPACE,
) -> Response:
    """The rendered, validated bundle as a zip; the Deploy page (with the messages) when the choices are wrong."""
    stored, form = _deploy_choices(request, plan_id, option, target, namespace)
    if stored is None or form is None:
        return _missing_plan(request, plan_id)
    from servewise.api import _services as services

    document = stored.document
    built = _guarded(
        form,
        lambda: services.deploy_zip(
            document, option=form.option, target=form.target, namespace=form.namespace
        ),
    )
    if built is None:
        return _deploy_page(request, stored, form, None)
    filename = f"servewise-{plan_id}-option{form.option}-{form.target}.zip"
    return Response(
        built[0],
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@ops_router.get("/deploy/{plan_id}", response_class=HTMLResponse)
def deploy_page(
    request: Request,
    plan_id: str,
    option: str | None = None,
    target: str = "vllm",
    namespace: str = DEFAULT_NAMESPACE,
) -> HTMLResponse:
    """YAML preview per file with each object's validation status, and the zip download."""
    stored, form = _deploy_choices(request, plan_id, option, target, namespace)
    if stored is None or form is None:
        return _missing_plan(request, plan_id)
    from servewise.api import _services as services

    document = stored.document
    built = _guarded(
        form,
        lambda: services.deploy_bundle(
            document, option=form.option, target=form.target, namespace=form.namespace
        ),
    )
    return _deploy_page(request, stored, form, built)


def _deploy_page(
    request: Request,
    stored: StoredPlan,
    form: DeployForm,
    built: tuple[list[tuple[str, str]], dict[str, Any]] | None,
) -> HTMLResponse:
    options: Sequence[Mapping[str, Any]] = stored.document.get("options") or []
    context: dict[str, Any] = {
        "active": "deploy",
        "plan": stored,
        "form": form,
        "targets": TARGETS,
        "option_count": len(options),
        "top_options": [_option_summary(o) for o in options[:10]],
        "selected_rank": form.option,
        "error_message": form.errors.get("page"),
    }
    if built is not None:
        files, meta = built
        report: dict[str, Any] = meta.get("check") or {}
        checked = [r for r in report.get("results") or [] if r.get("result") != "skipped"]
        context |= {
            "files": _bundle_files(files, report),
            "report": report,
            "summary": meta.get("summary") or {},
            "checked_count": len(checked),
            "failed_count": sum(1 for r in checked if r.get("result") == "fail"),
            "zip_href": f"/deploy/{stored.plan_id}.zip?{form.query()}",
        }
    return _page(request, "deploy.html", context, status_code=400 if form.errors else 200)


# -- Catalog -----------------------------------------------------------------------------------------------------
def _age(row: Mapping[str, Any], today: date) -> dict[str, Any]:
    """The row plus ``age_days`` (``None`` when undated) and ``stale`` (older than the threshold, or undated)."""
    as_of = row.get("as_of")
    try:
        day = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of)) if as_of else None
    except ValueError:
        day = None
    age_days = (today - day).days if day is not None else None
    return {**row, "age_days": age_days, "stale": age_days is None or age_days > STALE_AFTER_DAYS}


def _today(health: Mapping[str, Any]) -> date:
    try:
        return date.fromisoformat(str(health.get("today")))
    except ValueError:
        return date.today()


@ops_router.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request) -> HTMLResponse:
    """GPUs, models, cloud and API prices, each price with its source and age; the catalog's health findings."""
    from servewise.api import _services as services

    db_url = app_db_url(request)
    try:
        health = services.catalog_health(db_url)
        today = _today(health)
        sections = []
        for kind, title in CATALOG_SECTIONS:
            rows = services.catalog_rows(kind, db_url=db_url)
            if kind in PRICED_KINDS:
                rows = [_age(r, today) for r in rows]
            sections.append({"kind": kind, "title": title, "rows": rows})
    except ServewiseError as err:
        return _page(request, "catalog.html", {"active": "catalog", "error_message": str(err)}, 500)
    context = {
        "active": "catalog",
        "sections": sections,
        "health": health,
        "today": today,
        "stale_after_days": STALE_AFTER_DAYS,
    }
    return _page(request, "catalog.html", context)


# -- Spend -------------------------------------------------------------------------------------------------------
def _spend_chart(daily: Sequence[Mapping[str, Any]], budgets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Plotly spec: one line of dollars per day per tenant; each tenant's daily budget as a dashed line.

    Only *daily* org budgets are drawn: a weekly or monthly limit is not a per-day amount, and dividing it would
    invent a pace nobody set (those budgets are in the table, with their window's spend)."""
    days = sorted({str(r["day"]) for r in daily})
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for row in daily:
        series[str(row.get("tenant") or "(none)")][str(row["day"])] = float(row.get("usd") or 0.0)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": tenant,
            "x": days,
            "y": [values.get(day, 0.0) for day in days],
            "hovertemplate": "%{x}: $%{y:,.2f}<extra>" + tenant + "</extra>",
        }
        for tenant, values in sorted(series.items())
    ]
    for budget in budgets:
        limit = budget.get("hard_usd") if budget.get("hard_usd") is not None else budget.get("soft_usd")
        if budget.get("scope") != "org" or budget.get("window") != "daily" or limit is None or not days:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{budget.get('scope_id')} daily budget",
                "x": [days[0], days[-1]],
                "y": [limit, limit],
                "line": {"dash": "dash"},
                "hovertemplate": "budget $%{y:,.2f}/day<extra></extra>",
            }
        )
    layout = {
        "xaxis": {"title": {"text": "day (UTC)"}, "type": "date", "tickformat": "%b %d", "dtick": 86_400_000},
        "yaxis": {"title": {"text": "$ per day"}, "rangemode": "tozero", "tickprefix": "$"},
    }
    return {"data": data, "layout": layout}


@ops_router.get("/spend", response_class=HTMLResponse)
def spend_page(request: Request) -> HTMLResponse:
    """The gateway ledger by tenant and route, over time and against the budgets; an empty state without it."""
    from servewise.api import _services as services

    db_url = app_db_url(request)
    try:
        by_tenant = services.spend_rows(by="tenant", db_url=db_url)
        by_route = services.spend_rows(by="route", db_url=db_url) if by_tenant else []
        daily = services.spend_daily(by="tenant", db_url=db_url) if by_tenant else []
        budgets = services.budget_rows(db_url) if by_tenant else []
    except ServewiseError as err:
        return _page(request, "spend.html", {"active": "spend", "error_message": str(err)}, 500)
    context: dict[str, Any] = {
        "active": "spend",
        "by_tenant": by_tenant,
        "by_route": by_route,
        "budgets": budgets,
        "days": len({str(r["day"]) for r in daily}),
        "total_usd": sum(float(r.get("usd") or 0.0) for r in by_tenant),
        "total_requests": sum(int(r.get("requests") or 0) for r in by_tenant),
        "with_charts": bool(daily),
        "charts": {"daily": _spend_chart(daily, budgets)} if daily else {},
    }
    return _page(request, "spend.html", context)
