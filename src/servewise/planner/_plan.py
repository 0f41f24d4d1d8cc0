"""The ``Plan`` contract: ranked options, the chosen one, rejected candidates with reasons, assumptions.

Frozen dataclasses inside; ``plan_document`` turns a plan into the stable JSON document (schema in
docs/plan-json.md) that ``plan -o`` writes and ``deploy`` reads.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from servewise.cost import AlertPolicy, CostEstimate, PlanAlerts, plan_alerts
from servewise.perf import EngineSettings, PerfEstimate, SloCheck
from servewise.types import Precision
from servewise.workload import Workload

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "Candidate",
    "Plan",
    "PlanOption",
    "Rejection",
    "SloCheck",
    "plan_document",
    "plan_json_schema",
    "rejection_counts",
]

PLAN_SCHEMA_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One configuration of a replica: what the planner enumerates."""

    model: str
    hf_id: str
    gpu: str
    tp: int
    precision: Precision
    engine: EngineSettings
    cpu: str | None = None
    """For a CPU replica: the CPU-only instance type (one replica per instance; ``gpu`` is then the label
    ``"<instance> (CPU)"`` and ``tp`` is 1). ``None`` for GPU replicas."""
    vcpus: int | None = None
    """vCPUs of that instance (CPU replicas only)."""

    def label(self) -> str:
        if self.cpu is not None:
            return f"{self.model} {self.precision} on {self.cpu} (CPU, {self.vcpus} vCPU)"
        return f"{self.model} {self.precision} on {self.tp}x{self.gpu}"


@dataclass(frozen=True, slots=True)
class PlanOption:
    """A candidate that meets every constraint, sized and priced."""

    rank: int
    candidate: Candidate
    replicas: int
    gpus_total: int
    perf: PerfEstimate
    cost: CostEstimate
    slo: tuple[SloCheck, ...]
    within_budget: bool


UNBUDGETED_BEST = (
    "the cheapest option meeting every SLO when the budget is lifted, sized as a chosen option is"
)
"""Reason prefix of the budget rejection ``make_plan`` adds when the budget leaves no option: unlike the others (the
queueing approximation's replicas, before the simulation), its cost is what the budget must reach."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate (or a whole group of them: ``*`` stands for any) that was dropped, and why."""

    model: str
    gpu: str
    tp: int | None
    precision: Precision | None
    stage: str
    """``constraint``, ``context``, ``quality``, ``precision``, ``price``, ``memory``, ``slo``, ``max_gpus``,
    ``budget``."""
    reason: str
    usd_per_month: float | None = None
    """For budget rejections: what the option would cost."""
    replicas: int | None = None
    """For budget and max_gpus rejections: replicas the peak needs."""
    misses: tuple[SloCheck, ...] = ()
    """For slo rejections: the targets missed at zero load, with the predictions."""


@dataclass(frozen=True, slots=True)
class Plan:
    schema_version: str
    workload: Workload
    peak_qps: float
    options: tuple[PlanOption, ...]
    chosen: int | None
    """Index into ``options`` (0 when any option exists)."""
    rejected: tuple[Rejection, ...]
    assumptions: tuple[str, ...]
    why: str
    candidates_evaluated: int
    models_usable: int
    """Allowed models left after the quality floor and context checks."""
    gpus_usable: int
    """Allowed GPUs with an offer and at least one allowed precision."""
    alerts: PlanAlerts | None = None
    """Budget alert thresholds in dollars and the spend-anomaly rule, for deploy and the gateway; filled from the
    default ``AlertPolicy`` when not given (budget: the workload's, else the chosen option's monthly cost)."""

    def __post_init__(self) -> None:
        if self.alerts is None:
            budget, source = self.workload.budget_usd_month, "workload"
            if budget is None and self.chosen is not None:
                budget, source = self.options[self.chosen].cost.usd_per_month, "chosen option"
            object.__setattr__(self, "alerts", plan_alerts(AlertPolicy(), budget, source))

    @property
    def chosen_option(self) -> PlanOption | None:
        return None if self.chosen is None else self.options[self.chosen]


def rejection_counts(rejected: tuple[Rejection, ...]) -> list[tuple[str, int]]:
    """(stage, count) pairs, most frequent first."""
    return Counter(r.stage for r in rejected).most_common()


_PLAN_ADAPTER: TypeAdapter[Plan] = TypeAdapter(Plan)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict; a non-finite number (an unbounded latency) becomes null, as JSON requires."""
    document: dict[str, Any] = _finite(_PLAN_ADAPTER.dump_python(plan, mode="json"))
    return document


def plan_json_schema() -> dict[str, Any]:
    """JSON Schema of the plan document, published as docs/plan.schema.json."""
    return _PLAN_ADAPTER.json_schema(mode="serialization")
