"""The ``Workload``: what a user wants served, independent of any GPU.

Traffic is the *average* request rate (``qps``, or ``users × requests_per_user_hour / 3600``); the planner provisions
for ``peak_qps = qps × peak_factor``. Lengths are distributions whose ``mean`` is the template's value; latency SLOs are
optional per percentile. Money is USD per month of 730 hours.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Annotated, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from servewise.types import Precision, PricingMode, Priority

__all__ = [
    "DEFAULT_PRECISIONS",
    "Constraints",
    "LengthDistribution",
    "Routing",
    "Slo",
    "Traffic",
    "Workload",
]

DEFAULT_PRECISIONS: tuple[Precision, ...] = (Precision.bf16, Precision.fp8)
"""Quality-preserving formats by default; 4-bit formats are opt-in (``--precision int4``) because they can cost
accuracy that a cost planner cannot see."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LengthDistribution(_Frozen):
    """Token count per request. ``fixed`` is the mean exactly; ``lognormal`` has coefficient of variation ``cv``;
    ``exponential`` has cv = 1. ``max_tokens`` caps the tail (e.g. a client's ``max_tokens``)."""

    mean: float = Field(gt=0, description="mean tokens per request")
    kind: Literal["fixed", "lognormal", "exponential"] = "fixed"
    cv: float = Field(
        default=0.0, ge=0, le=10, description="coefficient of variation (std / mean), lognormal only"
    )
    max_tokens: int | None = Field(default=None, gt=0, description="hard cap on the length")

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: object) -> object:
        return {"mean": value} if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind == "lognormal" and self.cv == 0:
            raise ValueError("a lognormal length needs cv > 0 (use kind: fixed for a constant length)")
        if self.kind != "lognormal" and self.cv != 0:
            raise ValueError(f"cv applies to lognormal lengths only; a {self.kind} length has no cv")
        if self.max_tokens is not None and self.max_tokens < self.mean:
            raise ValueError(f"max_tokens {self.max_tokens} is below the mean {self.mean:g}")
        return self

    def quantile(self, q: float) -> float:
        """Length at quantile ``q`` ∈ (0, 1), capped at ``max_tokens``.

        lognormal: σ² = ln(1 + cv²), μ = ln(mean) − σ²/2, x_q = exp(μ + σ·Φ⁻¹(q));
        exponential: x_q = −mean·ln(1 − q).
        """
        if not 0 < q < 1:
            raise ValueError(f"quantile must be in (0, 1), got {q}")
        if self.kind == "fixed":
            value = self.mean
        elif self.kind == "exponential":
            value = -self.mean * math.log1p(-q)
        else:
            sigma = math.sqrt(math.log1p(self.cv**2))
            mu = math.log(self.mean) - sigma**2 / 2
            value = math.exp(mu + sigma * NormalDist().inv_cdf(q))
        return min(value, self.max_tokens) if self.max_tokens is not None else value


class Traffic(_Frozen):
    """Average load and request shape; give ``qps`` or ``users`` with ``requests_per_user_hour``."""

    qps: float | None = Field(default=None, gt=0, description="average requests per second")
    users: int | None = Field(default=None, gt=0)
    requests_per_user_hour: float | None = Field(default=None, gt=0)
    peak_factor: float = Field(default=1.0, ge=1, le=100, description="peak QPS / average QPS")
    prompt_tokens: LengthDistribution
    output_tokens: LengthDistribution
    prefix_share: float = Field(
        default=0.0, ge=0, lt=1, description="fraction of prompt tokens served from the prefix cache"
    )

    @model_validator(mode="after")
    def _one_rate(self) -> Self:
        by_users = self.users is not None or self.requests_per_user_hour is not None
        if self.qps is not None and by_users:
            raise ValueError("give either qps or users with requests_per_user_hour, not both")
        if self.qps is None and not (self.users is not None and self.requests_per_user_hour is not None):
            raise ValueError(
                "no request rate: give qps (--qps), or users with requests_per_user_hour "
                "(--users and --requests-per-user-hour)"
            )
        return self

    @property
    def avg_qps(self) -> float:
        if self.qps is not None:
            return self.qps
        assert self.users is not None and self.requests_per_user_hour is not None  # checked by _one_rate
        return self.users * self.requests_per_user_hour / 3600.0

    @property
    def peak_qps(self) -> float:
        return self.avg_qps * self.peak_factor


class Slo(_Frozen):
    """Latency targets in milliseconds; ``None`` means no target for that percentile."""

    ttft_p50_ms: float | None = Field(default=None, gt=0)
    ttft_p95_ms: float | None = Field(default=None, gt=0)
    ttft_p99_ms: float | None = Field(default=None, gt=0)
    itl_p50_ms: float | None = Field(default=None, gt=0)
    itl_p95_ms: float | None = Field(default=None, gt=0)
    itl_p99_ms: float | None = Field(default=None, gt=0)
    e2e_p50_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    e2e_p99_ms: float | None = Field(default=None, gt=0)

    def targets(self) -> dict[str, float]:
        """The set targets by field name, e.g. ``{"ttft_p95_ms": 150.0}``."""
        return {name: value for name, value in self.model_dump().items() if value is not None}


def _dedupe(values: object) -> object:
    if isinstance(values, list | tuple):
        seen: list[object] = []
        for value in values:
            if value not in seen:
                seen.append(value)
        return seen
    return values


_NameList = Annotated[list[str], BeforeValidator(_dedupe)]


class Constraints(_Frozen):
    """What the user allows; empty lists mean "anything in the catalog"."""

    gpus: _NameList = Field(default_factory=list, description="GPU names or families, e.g. L4, H100")
    models: _NameList = Field(default_factory=list, description="model names or Hugging Face ids")
    providers: _NameList = Field(default_factory=list, description="cloud providers, e.g. aws, gcp")
    precisions: Annotated[list[Precision], BeforeValidator(_dedupe)] = Field(
        default_factory=lambda: list(DEFAULT_PRECISIONS)
    )
    pricing: PricingMode = PricingMode.on_demand
    max_gpus: int | None = Field(default=None, gt=0, description="GPUs across all replicas")
    min_params_b: float | None = Field(
        default=None, ge=0, description="quality floor: total parameters in billions"
    )
    cpu: bool | None = Field(
        default=None,
        description="CPU serving options: true = consider CPU instances for every model, false = never; "
        "unset = only for small models (<= 4B active parameters, see docs/cpu.md)",
    )

    @model_validator(mode="after")
    def _some_precision(self) -> Self:
        if not self.precisions:
            raise ValueError("precisions must name at least one of bf16, fp8, int4, fp4")
        return self


class Routing(_Frozen):
    """How ``servewise mixed`` splits requests by prompt length: prompts over ``threshold_tokens`` leave the bulk pool
    for a long-context pool, or for the hosted API ``overflow_api`` when one is named. ``local_ratio`` instead derives
    the threshold: the prompt-length quantile that keeps that share of requests on the bulk pool. Neither given:
    4,096 tokens (see docs/mixed-and-autoscale.md)."""

    threshold_tokens: int | None = Field(
        default=None, gt=0, description="prompts longer than this leave the bulk pool"
    )
    local_ratio: float | None = Field(
        default=None, gt=0, le=1, description="share of requests kept on the bulk pool, in (0, 1]"
    )
    overflow_api: str | None = Field(
        default=None, min_length=1, description="hosted API model for the overflow, e.g. gpt-4o-mini"
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if self.threshold_tokens is not None and self.local_ratio is not None:
            raise ValueError("give threshold_tokens or local_ratio, not both")
        return self


class Workload(_Frozen):
    """A complete, validated description of what to serve."""

    name: str = "workload"
    use_case: str | None = None
    traffic: Traffic
    slo: Slo = Field(default_factory=Slo)
    budget_usd_month: float | None = Field(default=None, gt=0)
    constraints: Constraints = Field(default_factory=Constraints)
    priority: Priority = Priority.cost
    routing: Routing | None = Field(default=None, exclude=True)
    """Read by ``servewise mixed`` only; left out of dumps, so plan documents and their schema do not change."""
