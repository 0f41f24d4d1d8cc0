"""Request and response bodies of ``/api/v1``: pydantic at the edge, with bounds, descriptions and examples.

Why bounds on every number: a request must not be able to ask for an hour of simulation or a billion rows; values
outside them get a 422 naming the field. Documents the library already defines (plan, TCO, predict, evalcost) are
returned as they are and described by their schema version and docs rather than duplicated here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servewise.types import Precision

__all__ = [
    "CatalogHealthResponse",
    "CatalogItemResponse",
    "CatalogListResponse",
    "CompareRequest",
    "CompareResponse",
    "DeployRequest",
    "DeployResponse",
    "DeployTarget",
    "EvalCostRequest",
    "IntentRequest",
    "IntentResponse",
    "PlanRequest",
    "PredictRequest",
    "TcoRequest",
]

_STRICT = ConfigDict(extra="forbid")

_EXAMPLE_WORKLOAD = {
    "use_case": "chatbot_conversational",
    "traffic": {"qps": 20},
    "budget_usd_month": 8000,
}


class CatalogListResponse(BaseModel):
    kind: str = Field(description="gpus, models, offers, api-prices, benchmarks, use-cases, aliases or cpus")
    total: int = Field(description="rows matching the filters, before the limit")
    rows: list[dict[str, Any]] = Field(description="catalog records; each price row has its source and as_of")


class CatalogItemResponse(BaseModel):
    kind: Literal["gpu", "model", "use-case"]
    record: dict[str, Any]
    offers: list[dict[str, Any]] | None = Field(default=None, description="GPU only: cloud offers with it")
    benchmark_rows: int | None = Field(default=None, description="model only: measured benchmark rows")


class Finding(BaseModel):
    severity: str
    kind: str
    subject: str
    message: str


class CatalogHealthResponse(BaseModel):
    today: str = Field(description="ISO date prices were aged against")
    errors: int
    warnings: int
    findings: list[Finding]


class IntentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": "a support chatbot for 5,000 employees, answers within half a second, under $8k a month"
                }
            ]
        },
    )
    text: str = Field(min_length=1, max_length=4000, description="the workload in words")


class IntentResponse(BaseModel):
    workload: dict[str, Any] = Field(description="the parsed, validated workload (what POST /plan accepts)")
    data: dict[str, Any] = Field(
        description="the workload-file data the parser produced (template + overrides)"
    )
    assumptions: list[str] = Field(description="what the parser assumed because the text did not say")
    matched: list[str] = Field(description="phrases the parser understood")
    method: Literal["rules", "llm"]


class PlanRequest(BaseModel):
    """A workload object (as a workload file holds it, or as POST /intent returns it), or a use case; then
    ``overrides`` (nested like the workload, e.g. ``{"traffic": {"qps": 40}}``) on top."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"use_case": "chatbot_conversational", "overrides": {"traffic": {"qps": 5}}, "top": 3}
            ]
        },
    )
    workload: dict[str, Any] | None = Field(
        default=None, description="workload data (see docs/workloads); its use_case template fills the rest"
    )
    use_case: str | None = Field(
        default=None, max_length=200, description="use-case template (GET /api/v1/catalog/use-cases)"
    )
    overrides: dict[str, Any] | None = Field(default=None, description="nested fields set on top")
    top: int | None = Field(default=None, ge=1, le=100, description="keep the best N options (default: all)")

    @model_validator(mode="after")
    def _something(self) -> PlanRequest:
        if self.workload is None and self.use_case is None:
            raise ValueError("give a workload object or a use_case")
        return self


class CompareRequest(BaseModel):
    """Two or three plan documents (from POST /plan), or two or three workloads to plan first; the first is the
    base the deltas are measured against."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "workloads": [
                        {"use_case": "chatbot_conversational", "traffic": {"qps": 5}},
                        {"use_case": "chatbot_conversational", "traffic": {"qps": 10}},
                    ]
                }
            ]
        },
    )
    plans: list[dict[str, Any]] | None = Field(default=None, min_length=2, max_length=3)
    workloads: list[dict[str, Any]] | None = Field(default=None, min_length=2, max_length=3)
    labels: list[str] | None = Field(default=None, min_length=2, max_length=3, description="side names")

    @model_validator(mode="after")
    def _one_kind(self) -> CompareRequest:
        if (self.plans is None) == (self.workloads is None):
            raise ValueError("give either plans or workloads (two or three)")
        return self


class CompareSide(BaseModel):
    label: str
    feasible: bool
    reason: str
    model: str | None
    precision: str | None
    gpu: str | None
    tp: int | None
    replicas: int | None
    gpus_total: int | None
    usd_per_month: float | None
    ttft_p95_ms: float | None
    itl_p95_ms: float | None
    e2e_p95_ms: float | None
    peak_qps: float
    options: int


class CompareDelta(BaseModel):
    side: str
    metric: str
    base: float | None
    value: float | None
    delta: float | None
    delta_pct: float | None


class CompareResponse(BaseModel):
    base: str | None
    sides: list[CompareSide]
    deltas: list[CompareDelta]


class Backend(StrEnum):
    vllm = "vllm"
    sglang = "sglang"
    trtllm = "trtllm"


class PredictRequest(BaseModel):
    """One configuration under one load; exactly one of ``concurrency`` (closed loop) or ``qps`` (open loop)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "Qwen2.5-7B",
                    "gpu": "H100-SXM",
                    "precision": "bf16",
                    "isl": 512,
                    "osl": 128,
                    "concurrency": 8,
                }
            ]
        },
    )
    model: str = Field(min_length=1, max_length=200, description="model name or Hugging Face id")
    gpu: str = Field(min_length=1, max_length=200, description="GPU name, e.g. H100-SXM")
    precision: Precision
    isl: int = Field(
        ge=1,
        le=131072,
        description="prompt tokens (each request: 80-100% of it); isl + osl must fit the model's context, and this "
        "server simulates at most 131,072 (the CLI has no such cap)",
    )
    osl: int = Field(ge=1, le=16384, description="output tokens (each request: 80-100% of it)")
    tp: int = Field(default=1, ge=1, le=16)
    dp: int = Field(default=1, ge=1, le=16)
    backend: Backend = Backend.vllm
    expert_parallel: bool = Field(
        default=False, description="MoE: split the experts by expert over the replica's GPUs, not by tensor"
    )
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    qps: float | None = Field(
        default=None, ge=0.001, le=10000, allow_inf_nan=False, description="open loop: requests per second"
    )
    requests: int | None = Field(default=None, ge=1, le=5000, description="requests to simulate")
    max_num_seqs: int | None = Field(default=None, ge=1, le=4096)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _one_load(self) -> PredictRequest:
        if (self.concurrency is None) == (self.qps is None):
            raise ValueError("give exactly one of concurrency (closed loop) or qps (open loop)")
        return self


class TcoRequest(BaseModel):
    """A plan document (from POST /plan) and the terms; every term left out is the documented default, listed
    with its source in the answer's ``defaults``."""

    model_config = _STRICT
    plan: dict[str, Any] = Field(description="a plan document as POST /api/v1/plan returns it")
    vs: list[str] = Field(default_factory=list, max_length=5, description="hosted API models to compare with")
    amortize_months: float | None = Field(default=None, gt=0, le=240, allow_inf_nan=False)
    utilization: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    pue: float | None = Field(default=None, ge=1, le=5, allow_inf_nan=False)
    usd_per_kwh: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False)
    ops_overhead: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False)
    purchase_price_usd: float | None = Field(default=None, gt=0, le=10_000_000, allow_inf_nan=False)
    spot_overhead: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False)
    on_demand_floor: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    on_demand_floor_replicas: int | None = Field(default=None, ge=0, le=1000)
    reserved_1y_discount: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    reserved_3y_discount: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    api_cached_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)


class EvalCostRequest(BaseModel):
    """LLM-as-judge cost; a judge by name (catalog API price) or by explicit prices. Every input left out is the
    documented default, listed in the answer's ``inputs.defaults_used`` (messages name the CLI flag)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"judge": "gpt-4o-mini", "evals_per_month": 1000000}]},
    )
    judge: str | None = Field(default=None, max_length=200)
    input_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    output_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    cached_input_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    cheap_judge: str | None = Field(default=None, max_length=200)
    cheap_input_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    cheap_output_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    cheap_cached_input_usd_per_1m: float | None = Field(default=None, ge=0, le=10000, allow_inf_nan=False)
    evals_per_month: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    input_tokens: float | None = Field(default=None, ge=0, le=1e7, allow_inf_nan=False)
    output_tokens: float | None = Field(default=None, ge=0, le=1e7, allow_inf_nan=False)
    sampling_rate: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    rules_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    cheap_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    cascade: Literal["escalate", "route"] = "escalate"
    cache_hit_rate: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    prompt_cache_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)


class DeployTarget(StrEnum):
    vllm = "vllm"
    kserve = "kserve"
    helm = "helm"


class DeployRequest(BaseModel):
    model_config = _STRICT
    plan: dict[str, Any] = Field(description="a plan document as POST /api/v1/plan returns it")
    option: int | None = Field(default=None, ge=1, le=1000, description="1-based rank; default: the chosen")
    target: DeployTarget = DeployTarget.vllm
    namespace: str = Field(
        default="servewise", min_length=1, max_length=63, description="Kubernetes namespace"
    )


class DeployFile(BaseModel):
    path: str
    text: str


class DeployResponse(BaseModel):
    target: str
    summary: dict[str, Any] = Field(
        description="what the bundle deploys (model, hardware, replicas, $/month)"
    )
    check: dict[str, Any] = Field(description="the validation report; ``ok`` is false when any check failed")
    files: list[DeployFile]
