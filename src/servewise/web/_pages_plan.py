"""Describe (``/``), Plan (``/plan``, ``/plan/{id}``, ``/plan/{id}.json``) and Compare (``/compare``) pages.

Why no logic here: every number comes from ``servewise.api._services`` (the functions the REST API also calls) or
from ``_charts`` over the plan document; a page only reads the request, calls them, keeps the plan in the
``PlanStore`` and renders. Bad input re-renders the form with messages next to the fields (HTTP 422), never a 500.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from servewise.api import _services as services
from servewise.errors import ServewiseError, UnknownNameError
from servewise.planner import METRICS
from servewise.web._charts import (
    breakdown_spec,
    breakeven_spec,
    chosen_option,
    option_label,
    replicas_day_spec,
    scatter_spec,
)
from servewise.web._form import GENERAL, PRECISIONS, WorkloadForm, form_values, parse_form, unknown_name_field
from servewise.web._router import db_url, plan_store, templates
from servewise.web._store import StoredPlan

__all__ = ["METRIC_DECIMALS", "PLAN_TOP", "REJECTED_SHOWN", "plan_router"]

PLAN_TOP = 50
"""Options kept per plan (the chosen one first): enough for the scatter's front, small enough to keep 100 plans."""
REJECTED_SHOWN = 300
METRIC_DECIMALS = {
    "usd_per_month": 0,
    "gpus_total": 0,
    "replicas": 0,
    "ttft_p95_ms": 0,
    "itl_p95_ms": 1,
    "e2e_p95_ms": 0,
    "peak_qps": 2,
}
"""Digits shown per compared metric (``servewise.planner.METRICS``)."""
SLO_TITLES = {"ttft_p95_ms": "TTFT p95", "itl_p95_ms": "ITL p95", "e2e_p95_ms": "E2E p95"}

plan_router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _not_found(request: Request, what: str) -> HTMLResponse:
    message = (
        f"{what} is not here: plans live in this server's memory (the last 100), so a restart or a busy server "
        "forgets them. Describe the workload again, or plan from the command line and keep the JSON."
    )
    return _page(request, "plans.html", {"active": "plan", "error_message": message, "plans": []}, 404)


# ---------------------------------------------------------------- Describe


def _describe(request: Request, text: str) -> HTMLResponse:
    context: dict[str, Any] = {"active": "describe", "text": text, "precisions_all": PRECISIONS}
    if not text.strip():
        return _page(request, "describe.html", context)
    try:
        parsed = services.intent_to_workload(text)
    except ServewiseError as err:
        return _page(request, "describe.html", {**context, "text_error": str(err)}, 422)
    context.update(
        form=form_values(parsed["workload"]),
        assumptions=parsed["assumptions"],
        matched=parsed["matched"],
        method="rules" if parsed["method"] == "rules" else "LLM extraction",
    )
    return _page(request, "describe.html", context)


@plan_router.get("/", response_class=HTMLResponse)
def describe_page(request: Request, text: str = "") -> HTMLResponse:
    """The free-text box; with ``?text=`` the parsed workload's form too (a link can carry a description)."""
    return _describe(request, text)


@plan_router.post("/describe", response_class=HTMLResponse)
async def describe_submit(request: Request) -> HTMLResponse:
    form = await request.form()
    text = str(form.get("text") or "")
    if not text.strip():
        context = {"active": "describe", "text": text, "precisions_all": PRECISIONS}
        message = (
            "write a sentence about the workload first, e.g. who uses it, how many, how fast, what budget"
        )
        return _page(request, "describe.html", {**context, "text_error": message}, 422)
    return await run_in_threadpool(_describe, request, text)


# ---------------------------------------------------------------- Plan


@plan_router.post("/plan", response_class=HTMLResponse, response_model=None)
async def plan_submit(request: Request) -> Response:
    """Validate the workload form, plan it, keep the plan, redirect to its page (303 See Other)."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str) and key != "precisions"}
    precisions = [str(p) for p in form.getlist("precisions")]
    parsed = parse_form(values, precisions)
    text = values.get("text", "")
    try:
        assumptions = [str(a) for a in json.loads(values.get("assumptions_json") or "[]")]
    except (json.JSONDecodeError, TypeError):
        assumptions = []
    if parsed.workload is not None:
        try:
            document = await run_in_threadpool(
                services.plan_for, parsed.workload, top=PLAN_TOP, db_url=db_url(request)
            )
        except UnknownNameError as err:
            parsed.errors[unknown_name_field(err)] = str(err)
        except ServewiseError as err:
            parsed.errors[GENERAL] = str(err)
        else:
            stored = plan_store(request).add(
                document, text=text, intent_assumptions=tuple(assumptions), label=parsed.workload.name
            )
            return RedirectResponse(f"/plan/{stored.plan_id}", status_code=303)
    return _form_errors(request, parsed, text, assumptions)


def _form_errors(request: Request, parsed: WorkloadForm, text: str, assumptions: list[str]) -> HTMLResponse:
    count = len(parsed.errors)
    context = {
        "active": "describe",
        "text": text,
        "form": parsed,
        "assumptions": assumptions,
        "precisions_all": PRECISIONS,
        "error_message": f"{count} field(s) need attention before planning; see the messages below.",
    }
    return _page(request, "describe.html", context, 422)


@plan_router.get("/plan", response_class=HTMLResponse)
def plans_page(request: Request) -> HTMLResponse:
    """The plans this server remembers, newest first."""
    return _page(request, "plans.html", {"active": "plan", "plans": plan_store(request).recent(100)})


@plan_router.get("/plan/{plan_id}.json", response_model=None)
def plan_json(request: Request, plan_id: str) -> Response:
    stored = plan_store(request).get(plan_id)
    if stored is None:
        return _not_found(request, f"plan {plan_id!r}")
    return JSONResponse(
        stored.document, headers={"Content-Disposition": f'attachment; filename="plan-{plan_id}.json"'}
    )


@plan_router.get("/plan/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: str) -> HTMLResponse:
    stored = plan_store(request).get(plan_id)
    if stored is None:
        return _not_found(request, f"plan {plan_id!r}")
    return _page(request, "plan.html", _plan_context(stored, db_url(request)))


def _plan_context(stored: StoredPlan, catalog_url: str | None) -> dict[str, Any]:
    document = stored.document
    chosen = chosen_option(document)
    charts: dict[str, Any] = {"scatter": scatter_spec(document)}
    breakeven_note = ""
    if chosen is not None:
        charts["breakdown"] = breakdown_spec(chosen)
        charts["replicas"] = replicas_day_spec(document)
        charts["breakeven"], breakeven_note = _breakeven(document, catalog_url)
    rejected = document.get("rejected") or []
    slo_names = [s for s in SLO_TITLES if any(c["name"] == s for c in (chosen or {}).get("slo", []))]
    return {
        "active": "plan",
        "with_charts": bool(document.get("options")),
        "stored": stored,
        "chosen": chosen,
        "options": document.get("options") or [],
        "label": option_label,
        "slo_names": slo_names,
        "slo_titles": SLO_TITLES,
        "charts": charts,
        "breakeven_note": breakeven_note,
        "rejected_counts": sorted(Counter(r["stage"] for r in rejected).items(), key=lambda kv: -kv[1]),
        "rejected_shown": rejected[:REJECTED_SHOWN],
    }


def _breakeven(document: dict[str, Any], catalog_url: str | None) -> tuple[dict[str, Any] | None, str]:
    """The break-even chart and its caption note; a plan TCO cannot price (CPU only) gets the reason instead."""
    try:
        api_names = [row["model"] for row in services.catalog_rows("api-prices", db_url=catalog_url)]
        tco = services.tco_for(document, vs=api_names, db_url=catalog_url)
    except ServewiseError as err:
        return None, f"No break-even chart: {err}"
    spec = breakeven_spec(document, tco)
    if spec is None:
        return None, "No break-even chart: the catalog has no hosted API prices to compare with."
    meta = spec["meta"]
    parts = [
        f"{name}: self-hosting is cheaper from {tokens:,.0f}M tokens/month"
        if tokens is not None
        else f"{name}: cheaper than self-hosting over the whole range"
        for name, tokens in meta["break_even_tokens_per_month_m"].items()
    ]
    note = (
        f"APIs shown: the {len(meta['series']) - 1} cheapest at this workload's volume of the "
        f"{meta['apis_priced']} priced from the catalog (prices with source in the plan's TCO: `servewise tco`). "
        + "; ".join(parts)
        + ". Assumes the API model is as good as the self-hosted one for this use case — check quality yourself."
    )
    return spec, note


# ---------------------------------------------------------------- Compare


def _option_side(stored: StoredPlan, rank: int) -> dict[str, Any] | None:
    """The plan document with option ``rank`` as its chosen one, labelled, so ``compare_for`` compares options."""
    options = stored.document.get("options") or []
    index = next((i for i, o in enumerate(options) if o["rank"] == rank), None)
    if index is None:
        return None
    workload = {**stored.document["workload"], "name": f"#{rank} {option_label(options[index])}"}
    return {**stored.document, "chosen": index, "workload": workload}


def _listed(request: Request, name: str) -> list[str]:
    """Every value of a query parameter given repeated and/or comma-separated, blanks dropped."""
    values = (part.strip() for value in request.query_params.getlist(name) for part in value.split(","))
    return [value for value in values if value]


@plan_router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, plan: str = "") -> HTMLResponse:
    """Options of one plan (``?plan=ID&options=1,2[,3]``) or the chosen options of plans (``?ids=A,B[,C]``);
    repeated parameters (``options=1&options=2``, as checkboxes send them) work too."""
    store = plan_store(request)
    context: dict[str, Any] = {
        "active": "compare",
        "plans": store.recent(100),
        "by_options": bool(plan),
        "metrics": [(key, title, "") for key, title in METRICS],
        "decimals": METRIC_DECIMALS,
    }
    ranks = _listed(request, "options")
    plan_ids = _listed(request, "ids")
    sides: list[dict[str, Any]] = []
    problem = ""
    if plan:
        stored = store.get(plan)
        if stored is None:
            return _not_found(request, f"plan {plan!r}")
        context["plan"] = stored
        for raw in dict.fromkeys(ranks):
            side = _option_side(stored, int(raw)) if raw.isdigit() else None
            if side is None:
                problem = (
                    f"option {raw!r} is not one of this plan's {len(stored.document['options'])} options"
                )
                break
            sides.append(side)
    elif plan_ids:
        for plan_id in dict.fromkeys(plan_ids):
            found = store.get(plan_id)
            if found is None:
                return _not_found(request, f"plan {plan_id!r}")
            sides.append({**found.document, "workload": {**found.document["workload"], "name": found.label}})
    else:
        return _page(request, "compare.html", context)
    if not problem and not 2 <= len(sides) <= 3:
        problem = f"pick two or three to compare (got {len(sides)})"
    if problem:
        return _page(request, "compare.html", {**context, "error_message": problem}, 422)
    try:
        comparison = services.compare_for(*sides)
    except ServewiseError as err:
        return _page(request, "compare.html", {**context, "error_message": str(err)}, 422)
    return _page(request, "compare.html", {**context, "comparison": comparison})
