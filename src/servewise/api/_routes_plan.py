"""``/api/v1`` planning: intent → workload, plan, compare, predict, TCO and eval cost.

Routes are plain ``def``: planning and simulation are CPU-bound, so FastAPI runs them in its thread pool and the
event loop stays free for other requests.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from servewise.cost import OwnedTerms, PricingTerms

from . import _services
from ._deps import DbUrl
from ._errors import ERROR_RESPONSES
from ._models import (
    CompareRequest,
    CompareResponse,
    EvalCostRequest,
    IntentRequest,
    IntentResponse,
    PlanRequest,
    PredictRequest,
    TcoRequest,
)

__all__ = ["router"]

router = APIRouter(tags=["planning"], responses=ERROR_RESPONSES)


@router.post("/intent", summary="Describe a workload in words", response_model=IntentResponse)
def intent(body: IntentRequest) -> IntentResponse:
    """Free text → a validated workload, what the parser assumed and which phrases it understood. Rule-based, or
    an OpenAI-compatible LLM when the server sets ``SERVEWISE_INTENT_LLM_URL`` (falling back to the rules)."""
    return IntentResponse.model_validate(_services.intent_to_workload(body.text))


@router.post("/plan", summary="Plan a deployment")
def plan(body: PlanRequest, db_url: DbUrl) -> dict[str, Any]:
    """Ranked, costed options for a workload: which model on which GPUs, how many replicas, $/month, SLO ✓/✗,
    rejected candidates with reasons. The answer is the plan document (``schema_version`` "1";
    docs/plan-json.md, JSON schema docs/plan.schema.json): keep it to compare, price (``/tco``) or deploy."""
    workload = _services.workload_for(
        body.workload, use_case=body.use_case, overrides=body.overrides, db_url=db_url
    )
    return _services.plan_for(workload, top=body.top, db_url=db_url)


@router.post("/compare", summary="Compare plans or workloads", response_model=CompareResponse)
def compare(body: CompareRequest, db_url: DbUrl) -> CompareResponse:
    """Each side's chosen option (or why it has none) and every metric's delta against the first side."""
    if body.plans is not None:
        document = _services.compare_for(*body.plans)
        if body.labels:
            document = _relabel(document, body.labels)
    else:
        workloads: list[Any] = list(body.workloads or [])
        document = _services.compare_workloads(workloads, labels=body.labels, db_url=db_url)
    return CompareResponse.model_validate(document)


def _relabel(document: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    names = {side["label"]: label for side, label in zip(document["sides"], labels, strict=False)}
    return {
        "base": names.get(document["base"], document["base"]),
        "sides": [{**s, "label": names.get(s["label"], s["label"])} for s in document["sides"]],
        "deltas": [{**d, "side": names.get(d["side"], d["side"])} for d in document["deltas"]],
    }


@router.post("/predict", summary="Predict latency and throughput of one configuration")
def predict(body: PredictRequest, db_url: DbUrl) -> dict[str, Any]:
    """TTFT/ITL/TPOT/E2E percentiles (ms) and throughput from the scheduler simulation with the packaged
    calibration fit; the same document as ``servewise predict --format json``."""
    return _services.predict_for(
        model=body.model,
        gpu=body.gpu,
        precision=str(body.precision),
        isl=body.isl,
        osl=body.osl,
        tp=body.tp,
        dp=body.dp,
        backend=str(body.backend),
        concurrency=body.concurrency,
        qps=body.qps,
        requests=body.requests,
        max_num_seqs=body.max_num_seqs,
        seed=body.seed,
        db_url=db_url,
        expert_parallel=body.expert_parallel,
    )


@router.post("/tco", summary="Total cost of ownership of a plan")
def tco(body: TcoRequest, db_url: DbUrl) -> dict[str, Any]:
    """The plan's best GPU option rented (on-demand, spot, reserved 1y/3y) and owned, against hosted APIs, with
    break-even volumes and a tier recommendation (schema ``servewise.tco/1``, as ``servewise tco``)."""
    pricing, owned = PricingTerms(), OwnedTerms()
    terms = PricingTerms(
        spot_overhead=_given(body.spot_overhead, pricing.spot_overhead),
        on_demand_floor_share=_given(body.on_demand_floor, pricing.on_demand_floor_share),
        on_demand_floor_replicas=int(_given(body.on_demand_floor_replicas, pricing.on_demand_floor_replicas)),
        reserved_1y_discount=_given(body.reserved_1y_discount, pricing.reserved_1y_discount),
        reserved_3y_discount=_given(body.reserved_3y_discount, pricing.reserved_3y_discount),
    )
    owned_terms = OwnedTerms(
        amortize_months=_given(body.amortize_months, owned.amortize_months),
        utilization=_given(body.utilization, owned.utilization),
        pue=_given(body.pue, owned.pue),
        usd_per_kwh=_given(body.usd_per_kwh, owned.usd_per_kwh),
        ops_overhead=_given(body.ops_overhead, owned.ops_overhead),
    )
    return _services.tco_for(
        body.plan,
        vs=body.vs,
        terms=terms,
        owned_terms=owned_terms,
        purchase_price_usd=body.purchase_price_usd,
        api_cached_share=body.api_cached_share,
        db_url=db_url,
    )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


@router.post("/evalcost", summary="Cost of LLM-as-judge evaluation")
def evalcost(body: EvalCostRequest, db_url: DbUrl) -> dict[str, Any]:
    """Monthly cost per stage (rules, cheap judge, expensive judge) and what each lever saves (as
    ``servewise evalcost --format json``)."""
    values = {
        "evals_per_month": body.evals_per_month,
        "input_tokens": body.input_tokens,
        "output_tokens": body.output_tokens,
        "sampling_rate": body.sampling_rate,
        "rules_share": body.rules_share,
        "cheap_share": body.cheap_share,
        "judgement_cache_hit_rate": body.cache_hit_rate,
        "prompt_cache_share": body.prompt_cache_share,
    }
    return _services.evalcost_for(
        values,
        judge=body.judge,
        input_usd_per_1m=body.input_usd_per_1m,
        output_usd_per_1m=body.output_usd_per_1m,
        cached_input_usd_per_1m=body.cached_input_usd_per_1m,
        cheap_judge=body.cheap_judge,
        cheap_input_usd_per_1m=body.cheap_input_usd_per_1m,
        cheap_output_usd_per_1m=body.cheap_output_usd_per_1m,
        cheap_cached_input_usd_per_1m=body.cheap_cached_input_usd_per_1m,
        cascade=body.cascade,
        db_url=db_url,
    )
