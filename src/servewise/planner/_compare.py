"""Side-by-side what-if: each side's chosen option, and how every number moves against the first side (the base).

    Δ = side − base,   Δ% = Δ / base × 100   (none when the base is 0 or either side has no feasible option)

Why the chosen option only: the question a what-if answers is "what would we deploy, and what would it cost",
and the chosen option is that answer; a side with no feasible option is shown with its reason, not dropped, since
"this change makes the SLO unreachable" is itself the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._plan import Plan
from ._rank import infeasibility_message

__all__ = ["METRICS", "Comparison", "Delta", "SideSummary", "compare_plans", "summarize_plan"]

METRICS = (
    ("usd_per_month", "$/month"),
    ("gpus_total", "GPUs"),
    ("replicas", "replicas"),
    ("ttft_p95_ms", "TTFT p95 ms"),
    ("itl_p95_ms", "ITL p95 ms"),
    ("e2e_p95_ms", "E2E p95 ms"),
    ("peak_qps", "peak req/s"),
)
"""Numbers compared, with their display names."""


@dataclass(frozen=True, slots=True)
class SideSummary:
    """One side of a comparison: its chosen option, or why it has none."""

    label: str
    feasible: bool
    reason: str
    """The infeasibility message when not feasible; else the plan's one-line explanation."""
    peak_qps: float
    model: str | None = None
    precision: str | None = None
    gpu: str | None = None
    tp: int | None = None
    replicas: int | None = None
    gpus_total: int | None = None
    usd_per_month: float | None = None
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_p95_ms: float | None = None
    options: int = 0


@dataclass(frozen=True, slots=True)
class Delta:
    side: str
    metric: str
    base: float | None
    value: float | None
    absolute: float | None
    percent: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    sides: tuple[SideSummary, ...]
    deltas: tuple[Delta, ...]
    """For every side after the first, every metric in ``METRICS`` order."""


def summarize_plan(label: str, plan: Plan) -> SideSummary:
    option = plan.chosen_option
    if option is None:
        return SideSummary(label, False, infeasibility_message(plan), plan.peak_qps)
    c = option.candidate
    return SideSummary(
        label=label,
        feasible=True,
        reason=plan.why,
        peak_qps=plan.peak_qps,
        model=c.model,
        precision=str(c.precision),
        gpu=c.gpu,
        tp=c.tp,
        replicas=option.replicas,
        gpus_total=option.gpus_total,
        usd_per_month=option.cost.usd_per_month,
        ttft_p95_ms=option.perf.ttft.p95_ms,
        itl_p95_ms=option.perf.itl.p95_ms,
        e2e_p95_ms=option.perf.e2e.p95_ms,
        options=len(plan.options),
    )


def _delta(side: str, metric: str, base: float | None, value: float | None) -> Delta:
    if base is None or value is None:
        return Delta(side, metric, base, value, None, None)
    absolute = value - base
    percent = absolute / base * 100.0 if base else None
    return Delta(side, metric, base, value, absolute, percent)


def compare_plans(sides: Sequence[tuple[str, Plan]]) -> Comparison:
    """Summaries of each (label, plan) and the deltas of every later side against the first."""
    summaries = tuple(summarize_plan(label, plan) for label, plan in sides)
    if not summaries:
        return Comparison((), ())
    base = summaries[0]
    deltas = tuple(
        _delta(side.label, metric, getattr(base, metric), getattr(side, metric))
        for side in summaries[1:]
        for metric, _ in METRICS
    )
    return Comparison(summaries, deltas)
