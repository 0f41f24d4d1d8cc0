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

from ._plan import Plan, PlanOption, Rejection

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
            return (e2e, cost, label)
        if priority is Priority.balanced:
            return (cost / cheapest + e2e / fastest, cost, label)
        return (cost, e2e, label)

    ordered = sorted(options, key=key)
    return [dataclasses.replace(option, rank=index + 1) for index, option in enumerate(ordered)]


def explain_choice(ranked: Sequence[PlanOption], workload: Workload) -> str:
    """One line: what was chosen, why, and how the runner-up compares."""
    if not ranked:
        return "no option meets every constraint"
    best = ranked[0]
    basis = {
        Priority.cost: "the cheapest",
        Priority.latency: "the lowest p95 end-to-end latency",
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


def _closest_slo(rejections: Sequence[Rejection]) -> str:
    return rejections[0].reason if rejections else ""


def infeasibility_message(plan: Plan) -> str:
    """Which constraint binds and the closest option, in one line."""
    stages = Counter(r.stage for r in plan.rejected)
    if not plan.rejected:
        return "no candidate to evaluate: the constraints leave no model and GPU pair; relax --model/--gpu"
    budget = sorted((r for r in plan.rejected if r.stage == "budget"), key=lambda r: r.usd_per_month or 0.0)
    if budget:
        best = budget[0]
        return (
            f"no option fits the budget of ${plan.workload.budget_usd_month:,.0f}/month; the cheapest that meets "
            f"the SLO is {best.model} {best.precision} on {best.tp}x{best.gpu} at "
            f"${best.usd_per_month:,.0f}/month. Raise --budget-usd-month or relax the SLO"
        )
    slo = [r for r in plan.rejected if r.stage == "slo"]
    if slo:
        misses = Counter(part.split()[0] for r in slo for part in r.reason.split(": ", 1)[-1].split(", "))
        binding = misses.most_common(1)[0][0]
        closest = min(slo, key=_slo_gap)
        return (
            f"no option meets the SLO; {binding} binds for {misses[binding]} of {len(slo)} configurations. "
            f"Closest: {closest.model} {closest.precision} on {closest.tp}x{closest.gpu}, which "
            f"{closest.reason}. Relax the target or allow faster GPUs"
        )
    memory = [r for r in plan.rejected if r.stage == "memory"]
    cap = plan.workload.constraints.max_gpus
    if memory and "max_gpus" in stages:
        return (
            f"with at most {cap} GPU(s), no configuration fits in GPU memory (e.g. {memory[-1].reason}); "
            "raise --max-gpus, allow larger GPUs or a smaller --precision"
        )
    if "max_gpus" in stages:
        return f"every option that meets the SLO needs more than {cap} GPU(s); raise --max-gpus"
    if memory:
        return (
            f"no configuration fits in GPU memory (e.g. {memory[-1].reason}); "
            "allow larger GPUs or a smaller --precision"
        )
    common = ", ".join(f"{stage} ({count})" for stage, count in stages.most_common())
    return f"every candidate was rejected: {common}; run with --show-rejected to see why"


def _slo_gap(rejection: Rejection) -> float:
    """Largest relative miss named in an SLO rejection reason ("ttft_p95_ms 180 > 150 ms")."""
    worst = 0.0
    for part in rejection.reason.split(": ", 1)[-1].split(", "):
        pieces = part.replace(" ms", "").split()
        if len(pieces) == 4 and pieces[2] == ">":
            worst = max(worst, float(pieces[1]) / float(pieces[3]))
        else:
            worst = max(worst, float("inf"))
    return worst


def require_feasible(plan: Plan) -> Plan:
    """The plan itself, or InfeasibleError with the binding constraint and the closest option."""
    if plan.chosen is None:
        raise InfeasibleError(infeasibility_message(plan))
    return plan
