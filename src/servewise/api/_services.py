"""The one place the REST API and the web pages call: plain functions over the library, JSON-ready dicts out.

Why a layer of its own: routes and pages only translate HTTP (bodies, forms, status codes) and must hold no logic,
so ``POST /api/v1/plan`` and the Plan page give the same plan for the same workload. Every function opens and
closes its own catalog (``db_url``; None means ``SERVEWISE_DB_URL``, else the packaged SQLite catalog) and raises
``ServewiseError`` subclasses with one-line messages, which the API maps to 400/404 error bodies.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import TypeAdapter, ValidationError

from servewise.catalog import DataKind, open_catalog, record_dict
from servewise.catalog import catalog_rows as _catalog_rows
from servewise.cost import (
    CascadeMode,
    OwnedTerms,
    PricingTerms,
    find_api_price,
    tco_defaults,
    tco_document,
)
from servewise.cost import evalcost_for as _evalcost_for
from servewise.deploy import BudgetExpectation, check_files, deploy_spec, render_bundle, spec_summary
from servewise.errors import UnknownNameError, UsageError
from servewise.perf import load_fitted_table, predict_point
from servewise.planner import (
    Plan,
    check_plan_document,
    compare_plans,
    comparison_document,
    make_plan,
    plan_document,
    plan_tco,
    workload_from_layers,
)
from servewise.types import Precision
from servewise.workload import Workload, extract_intent

from ._services_gateway import budget_rows, spend_daily, spend_rows  # the gateway's read-only views

__all__ = [
    "CATALOG_KINDS",
    "DEPLOY_TARGETS",
    "budget_rows",
    "catalog_health",
    "catalog_item",
    "catalog_listing",
    "catalog_rows",
    "compare_for",
    "compare_workloads",
    "deploy_bundle",
    "deploy_zip",
    "evalcost_for",
    "intent_to_workload",
    "plan_for",
    "plan_from_document",
    "predict_for",
    "spend_daily",
    "spend_rows",
    "tco_for",
    "workload_for",
]

CATALOG_KINDS = tuple(kind.value for kind in DataKind)
"""Kinds the catalog lists: gpus, models, offers, api-prices, benchmarks, use-cases, aliases, cpus."""
DEPLOY_TARGETS = ("vllm", "kserve", "helm")

_PLAN_ADAPTER: TypeAdapter[Plan] = TypeAdapter(Plan)


# ---------------------------------------------------------------- catalog


def _kind(kind: str) -> DataKind:
    try:
        return DataKind(kind)
    except ValueError:
        raise UnknownNameError(
            "catalog kind", kind, CATALOG_KINDS, hint=f"Use one of {', '.join(CATALOG_KINDS)}."
        ) from None


def catalog_listing(
    kind: str,
    *,
    filters: Mapping[str, str] | None = None,
    limit: int | None = None,
    db_url: str | None = None,
) -> dict[str, Any]:
    """``{"kind", "total", "rows"}``: rows of ``kind`` whose columns contain each filter value (case-insensitive),
    at most ``limit`` of them (None or 0: all); ``total`` counts the matches before the limit."""
    data_kind = _kind(kind)
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be ≥ 0 (got {limit}); 0 or no limit lists every row")
    with open_catalog(db_url) as catalog:
        rows = _catalog_rows(catalog, data_kind, (filters or {}).items())
    return {"kind": data_kind.value, "total": len(rows), "rows": rows[:limit] if limit else rows}


def catalog_rows(
    kind: str,
    *,
    filters: Mapping[str, str] | None = None,
    limit: int | None = None,
    db_url: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``catalog_listing`` alone."""
    rows: list[dict[str, Any]] = catalog_listing(kind, filters=filters, limit=limit, db_url=db_url)["rows"]
    return rows


def catalog_item(kind: str, name: str, *, db_url: str | None = None) -> dict[str, Any]:
    """One GPU (``kind="gpu"``, with its offers), model (with its count of measured benchmark rows) or use case,
    by name, alias or Hugging Face id. ``UnknownNameError`` (with suggestions) when the catalog does not know it."""
    with open_catalog(db_url) as catalog:
        if kind == "gpu":
            record = record_dict(catalog.accelerator(name))
            return {
                "kind": kind,
                "record": record,
                "offers": [record_dict(o) for o in catalog.offers(gpu=record["name"])],
            }
        if kind == "model":
            record = record_dict(catalog.model(name))
            return {
                "kind": kind,
                "record": record,
                "benchmark_rows": catalog.benchmark_count(model=record["name"]),
            }
        if kind == "use-case":
            return {"kind": kind, "record": record_dict(catalog.use_case(name))}
    raise UnknownNameError("item kind", kind, ("gpu", "model", "use-case"))


def catalog_health(db_url: str | None = None, *, today: date | None = None) -> dict[str, Any]:
    """Stale or undated prices, incomplete specs, unresolved names: ``{"today", "errors", "warnings",
    "findings"}`` as ``servewise catalog health --format json`` prints it."""
    with open_catalog(db_url) as catalog:
        report = catalog.health(today)
    return {
        "today": report.today.isoformat(),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": [record_dict(f) for f in report.findings],
    }


# ---------------------------------------------------------------- workload and plan


def intent_to_workload(text: str) -> dict[str, Any]:
    """Free text → ``{"workload", "data", "assumptions", "matched", "method"}`` through the intent parser (rules,
    or an OpenAI-compatible LLM when ``SERVEWISE_INTENT_LLM_URL`` is set, falling back to the rules)."""
    result = extract_intent(text)
    return {
        "workload": result.workload.model_dump(mode="json"),
        "data": result.data,
        "assumptions": list(result.assumptions),
        "matched": list(result.matched),
        "method": result.method,
    }


def workload_for(
    data: Mapping[str, Any] | Workload | None = None,
    *,
    use_case: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    db_url: str | None = None,
) -> Workload:
    """The validated workload: the template of ``use_case`` (else ``data["use_case"]``) < ``data`` (what a workload
    file holds, or a whole ``Workload``) < ``overrides`` (nested, e.g. ``{"traffic": {"qps": 40}}``)."""
    if isinstance(data, Workload):
        data = data.model_dump(mode="json", exclude_none=True)
    if data is None and use_case is None:
        raise UsageError(
            "describe the workload: a use_case (see GET /api/v1/catalog/use-cases) or a workload object"
        )
    with open_catalog(db_url) as catalog:
        return workload_from_layers(catalog, use_case=use_case, data=data, overrides=overrides)


def _plan(workload: Workload, db_url: str | None) -> Plan:
    with open_catalog(db_url) as catalog:
        snapshot = catalog.snapshot()
    return make_plan(workload, snapshot)


def plan_for(
    workload: Mapping[str, Any] | Workload,
    *,
    top: int | None = None,
    db_url: str | None = None,
) -> dict[str, Any]:
    """The plan document (``servewise plan --format json``; schema in docs/plan-json.md) of ``workload`` (a
    ``Workload`` or workload-file data). ``top`` keeps the best ``top`` options (the chosen one is always first).
    A plan without options is returned, not raised: its ``rejected`` list says why."""
    if top is not None and top < 1:
        raise UsageError(f"top must be ≥ 1 (got {top})")
    resolved = workload if isinstance(workload, Workload) else workload_for(workload, db_url=db_url)
    document = plan_document(_plan(resolved, db_url))
    if top is not None:
        document["options"] = document["options"][:top]
    return document


def plan_from_document(document: object, where: str = "the plan") -> Plan:
    """A plan document (as ``plan_for`` returns it) back as a ``Plan``; one-line ``UsageError`` when it is not one
    this version wrote."""
    checked = check_plan_document(document, where)
    try:
        return _PLAN_ADAPTER.validate_python(checked)
    except ValidationError as err:
        first = err.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise UsageError(
            f"{where} is not a valid plan document at {location}: {first['msg']}; re-plan with this version"
        ) from None


def compare_for(a: Mapping[str, Any], b: Mapping[str, Any], *more: Mapping[str, Any]) -> dict[str, Any]:
    """Two (or more) plan documents → the compare document: each side's chosen option and deltas against ``a``."""
    sides = []
    for index, document in enumerate((a, b, *more)):
        plan = plan_from_document(dict(document), f"plan {index + 1}")
        sides.append((f"{index + 1}: {plan.workload.name}", plan))
    return comparison_document(compare_plans(sides))


def compare_workloads(
    workloads: list[Mapping[str, Any] | Workload],
    *,
    labels: list[str] | None = None,
    db_url: str | None = None,
) -> dict[str, Any]:
    """Plan each workload, then compare the plans (the first is the base)."""
    if len(workloads) < 2:
        raise UsageError("nothing to compare: give at least two workloads")
    names = labels or [f"{i + 1}" for i in range(len(workloads))]
    sides = []
    for label, item in zip(names, workloads, strict=False):
        resolved = item if isinstance(item, Workload) else workload_for(item, db_url=db_url)
        sides.append((label, _plan(resolved, db_url)))
    return comparison_document(compare_plans(sides))


# ---------------------------------------------------------------- predict, tco, evalcost


def predict_for(
    *,
    model: str,
    gpu: str,
    precision: str,
    isl: int,
    osl: int,
    tp: int = 1,
    dp: int = 1,
    backend: str = "vllm",
    concurrency: int | None = None,
    qps: float | None = None,
    requests: int | None = None,
    max_num_seqs: int | None = None,
    seed: int = 0,
    db_url: str | None = None,
    expert_parallel: bool = False,
) -> dict[str, Any]:
    """The predict document (``servewise predict --format json``) with the packaged calibration fit."""
    try:
        weight_precision = Precision(precision)
    except ValueError:
        raise UnknownNameError("precision", precision, [p.value for p in Precision]) from None
    with open_catalog(db_url) as catalog:
        spec = catalog.model(model)
        accelerator = catalog.accelerator(gpu)
    table = load_fitted_table()
    label = (
        "analytical defaults (no packaged calibration fit)"
        if table is None
        else f"packaged calibration fit ({table.fitted_on}, {table.rows} rows)"
    )
    return predict_point(
        spec,
        accelerator,
        weight_precision,
        backend,
        isl=isl,
        osl=osl,
        tp=tp,
        dp=dp,
        concurrency=concurrency,
        qps=qps,
        requests=requests,
        max_num_seqs=max_num_seqs,
        seed=seed,
        calibration=(table, label),
        expert_parallel=expert_parallel,
    )


def tco_for(
    plan_document: Mapping[str, Any],
    *,
    vs: list[str] | None = None,
    terms: PricingTerms | None = None,
    owned_terms: OwnedTerms | None = None,
    purchase_price_usd: float | None = None,
    api_cached_share: float | None = None,
    db_url: str | None = None,
) -> dict[str, Any]:
    """The TCO document (schema ``servewise.tco/1``) of the plan's best GPU option: rented, owned and against the
    hosted APIs ``vs``; every assumed term with its source under ``defaults``."""
    plan = plan_from_document(dict(plan_document))
    if api_cached_share is not None and not 0 <= api_cached_share <= 1:
        raise UsageError(f"api_cached_share must be in [0, 1] (got {api_cached_share:g})")
    pricing = terms or PricingTerms()
    owned = owned_terms or OwnedTerms()
    with open_catalog(db_url) as catalog:
        snapshot = catalog.snapshot()
    apis = [find_api_price(snapshot.api_prices, name) for name in dict.fromkeys(vs or [])]
    cached = plan.workload.traffic.prefix_share if api_cached_share is None else api_cached_share
    report = plan_tco(
        plan,
        snapshot,
        apis=apis,
        terms=pricing,
        owned_terms=owned,
        purchase_usd=purchase_price_usd,
        cached_share=cached,
    )
    return tco_document(report, tco_defaults(pricing, owned, cached, api_cached_share is not None))


def evalcost_for(
    values: Mapping[str, float | None],
    *,
    judge: str | None = None,
    input_usd_per_1m: float | None = None,
    output_usd_per_1m: float | None = None,
    cached_input_usd_per_1m: float | None = None,
    cheap_judge: str | None = None,
    cheap_input_usd_per_1m: float | None = None,
    cheap_output_usd_per_1m: float | None = None,
    cheap_cached_input_usd_per_1m: float | None = None,
    cascade: str = "escalate",
    db_url: str | None = None,
) -> dict[str, Any]:
    """The evalcost document (``servewise evalcost --format json``); ``values`` maps ``cost.EVALCOST_INPUTS``
    fields (evals_per_month, input_tokens, …) to numbers, None for the documented default."""
    try:
        mode = CascadeMode(cascade)
    except ValueError:
        raise UnknownNameError("cascade mode", cascade, [m.value for m in CascadeMode]) from None
    prices = None
    if judge is not None or cheap_judge is not None:
        with open_catalog(db_url) as catalog:
            prices = catalog.api_prices()
    return _evalcost_for(
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
        cascade=mode,
    )


# ---------------------------------------------------------------- deploy


def deploy_bundle(
    plan_document: Mapping[str, Any],
    *,
    option: int | None = None,
    target: str = "vllm",
    namespace: str = "servewise",
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """The rendered files ``[(path, text)]`` of plan option ``option`` (1-based rank; None = the chosen one) for
    ``target``, and ``{"target", "summary", "check"}`` with the validation report (``check.ok``)."""
    if target not in DEPLOY_TARGETS:
        raise UnknownNameError("deploy target", target, DEPLOY_TARGETS, hint="Use vllm, kserve or helm.")
    document = check_plan_document(dict(plan_document))
    spec = deploy_spec(document, option=option, namespace=namespace)
    files = render_bundle(spec, target)  # type: ignore[arg-type]  # checked against DEPLOY_TARGETS above
    expected = BudgetExpectation(
        tuple(level.threshold_pct for level in spec.budget_levels), spec.budget_usd_month
    )
    report = check_files(files, expected_budget=expected)
    meta = {"target": target, "summary": spec_summary(spec), "check": report.document()}
    return [(f.path, f.text) for f in files], meta


def deploy_zip(
    plan_document: Mapping[str, Any],
    *,
    option: int | None = None,
    target: str = "vllm",
    namespace: str = "servewise",
) -> tuple[bytes, dict[str, Any]]:
    """The bundle of ``deploy_bundle`` as zip bytes (files under ``servewise-deploy/``) and the same report."""
    files, meta = deploy_bundle(plan_document, option=option, target=target, namespace=namespace)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, text in files:
            archive.writestr(f"servewise-deploy/{path}", text)
    return buffer.getvalue(), meta
