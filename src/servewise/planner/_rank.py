"""Rank feasible options by the workload's priority and explain the choice; explain infeasibility.

cost      $/month, then p95 E2E
latency   p95 E2E at the planned load, then $/month
balanced  $/month / cheapest + p95 E2E / fastest (both ≥ 1; equal weight), then $/month
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from servewise.errors import InfeasibleError
from servewise.types import Priority
from servewise.workload import Workload

from ._plan import UNBUDGETED_BEST, Plan, PlanOption, Rejection

__all__ = ["explain_choice", "infeasibility_message", "rank_options", "require_feasible"]


def rank_options(options: Sequence[PlanOption], priority: Priority) -> list[PlanOption]:
    if not options:
        return []
    cheapest = min(o.cost.usd_per_month for o in options)
    fastest = min(o.perf.e2e.p95_ms for o in options)

    def key(option: PlanOption) -> tuple[float, float, str]:
        cost, e2e = option.cost.usd_per_month, option.perf.e2e.p95_ms
        label = option.candidate.label()
        if priority is Priority.latency:
            return (0.0 if e2e <= fastest * _EQUALLY_FAST else e2e, cost, label)
        if priority is Priority.balanced:
            return (cost / cheapest + e2e / fastest, cost, label)
        return (cost, e2e, label)

    ordered = sorted(options, key=key)
    return [dataclasses.replace(option, rank=index + 1) for index, option in enumerate(ordered)]


_EQUALLY_FAST = 1.05


def explain_choice(ranked: Sequence[PlanOption], workload: Workload) -> str:
    """One line: what was chosen, why, and how the runner-up compares."""
    if not ranked:
        return "no option meets every constraint"
    best = ranked[0]
    basis = {
        Priority.cost: "the cheapest",
        Priority.latency: "the cheapest of the fastest (p95 end-to-end within 5 %)",
        Priority.balanced: "the best cost + latency balance",
    }[workload.priority]
    text = (
        f"{best.candidate.label()} x{best.replicas} is {basis} of {len(ranked)} option(s) meeting every SLO"
        f"{' and the budget' if workload.budget_usd_month else ''}: one replica sustains "
        f"{best.perf.max_qps_per_replica:.3g} req/s (limited by {', '.join(best.perf.binding)})"
    )
    if len(ranked) > 1:
        other = ranked[1]
        delta = other.cost.usd_per_month / best.cost.usd_per_month - 1
        text += f"; next: {other.candidate.label()} x{other.replicas} at {delta:+.0%} $/month"
    return text


def _label(r: Rejection) -> str:
    return f"{r.model} {r.precision} on {r.tp}x{r.gpu}"


def _whole_group_message(plan: Plan) -> str | None:
    """When every allowed model, or every allowed GPU, was dropped before any configuration was tried: say why."""
    if plan.candidates_evaluated:
        return None

    def listed(items: list[Rejection], name: str) -> str:
        shown = "; ".join(f"{getattr(r, name)}: {r.reason}" for r in items[:3])
        return shown + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")

    if plan.models_usable == 0:
        models = [r for r in plan.rejected if r.gpu == "*"]
        if {r.stage for r in models} == {"quality"}:
            return f"every allowed model is below the quality floor: {listed(models, 'model')}. Lower --min-params-b"
        return f"no allowed model is usable: {listed(models, 'model')}. Allow other models (--model)"
    if plan.gpus_usable == 0:
        gpus = [r for r in plan.rejected if r.model == "*"]
        return f"no allowed GPU is usable: {listed(gpus, 'gpu')}. Allow other GPUs, providers or precisions"
    return None


def infeasibility_message(plan: Plan) -> str:
    """Which constraint binds and the closest option, in one line."""
    if not plan.rejected:
        return "no candidate to evaluate: the constraints leave no model and GPU pair; relax --model/--gpu"
    whole = _whole_group_message(plan)
    if whole:
        return whole
    by_stage: dict[str, list[Rejection]] = {}
    for r in plan.rejected:
        by_stage.setdefault(r.stage, []).append(r)
    if "budget" in by_stage:
        sized = [r for r in by_stage["budget"] if r.reason.startswith(UNBUDGETED_BEST)]
        best = sized[0] if sized else min(by_stage["budget"], key=lambda r: r.usd_per_month or 0.0)
        return (
            f"no option fits the budget of ${plan.workload.budget_usd_month:,.0f}/month; the cheapest that meets "
            f"the SLO is {_label(best)} x{best.replicas} at ${best.usd_per_month:,.0f}/month. "
            "Raise --budget-usd-month or relax the SLO"
        )
    cap = plan.workload.constraints.max_gpus
    capped = [r for r in by_stage.get("max_gpus", []) if r.replicas is not None]
    if capped:
        best = min(capped, key=lambda r: (r.replicas or 0) * (r.tp or 1))
        return (
            f"every option that meets the SLO needs more than {cap} GPU(s); the smallest is {_label(best)} "
            f"x{best.replicas}. Raise --max-gpus"
        )
    if "slo" in by_stage:
        slo = by_stage["slo"]
        misses = Counter(check.name for r in slo for check in r.misses)
        closest = min(slo, key=_slo_gap)
        binding = (
            f"{misses.most_common(1)[0][0]} binds for {misses.most_common(1)[0][1]} of {len(slo)} "
            if misses
            else ""
        )
        return (
            f"no option meets the SLO; {binding}configurations. Closest: {_label(closest)}, which "
            f"{closest.reason}. Relax the target or allow faster GPUs"
        )
    memory = by_stage.get("memory", [])
    if memory and "max_gpus" in by_stage:
        return (
            f"with at most {cap} GPU(s), no configuration fits in GPU memory (e.g. {memory[-1].reason}); "
            "raise --max-gpus, allow larger GPUs or a smaller --precision"
        )
    if memory:
        return (
            f"no configuration fits in GPU memory (e.g. {memory[-1].reason}); "
            "allow larger GPUs or a smaller --precision"
        )
    counts = ", ".join(f"{stage} ({len(items)})" for stage, items in by_stage.items())
    return f"every candidate was rejected: {counts}; run with --show-rejected to see why"


def _slo_gap(rejection: Rejection) -> float:
    """How far a configuration is from its SLO at zero load: the worst predicted / target ratio."""
    return max((c.predicted_ms / c.target_ms for c in rejection.misses), default=float("inf"))


def require_feasible(plan: Plan) -> Plan:
    """The plan itself, or InfeasibleError with the binding constraint and the closest option."""
    if plan.chosen is None:
        raise InfeasibleError(infeasibility_message(plan))
    return plan
