"""Right-sizing by re-running the planner on the observed workload: precision, GPU, model, long-context pool.

Why restricted sweeps: ``watch`` runs in CI and on a page, so it must answer in seconds, and a recommendation is
only actionable when it changes one thing. Each sweep is ``planner.make_plan`` on the observed workload (observed
rate, one-minute peak and lengths; the plan's SLO, pricing, providers, quality floor, GPU cap and budget) with:

    precision / TP   the deployed model on the deployed GPU, every precision and TP the plan allowed
    GPU              the deployed model on every GPU the plan allowed (all GPUs when it named none)
    model            every model the plan allowed (all models above its quality floor) on the deployed GPU
    long-context     ``planner.make_mixed_plan`` for the deployed model on the plan's GPUs, when the observed
                     prompt p95 ≥ 3 × the mean prompt: prompts beyond the observed p95 (routing rule
                     ``local_ratio = 0.95``) go to a pool of their own

A sweep identical to an earlier one is skipped (a plan restricted to one GPU has no GPU alternative). An option is
recommended when it costs at least 1 % less per month than the deployed configuration right-sized for the observed
peak (the "baseline"); its saving is reported against the current deployment (``_rightsize_cost``). Option costs
and capacities are the planner's own (the best options' capacity from the scheduler simulation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from servewise.catalog import CatalogSnapshot
from servewise.perf import CalibrationTable
from servewise.planner import MixedOption, Plan, PlanOption, make_mixed_plan, make_plan, routing_rule
from servewise.planner._search import BACKEND, ParamsLookup, calibrated_params
from servewise.workload import Workload

from ._observation import Observation, Recommendation, WatchTarget
from ._rightsize_cost import Risk, predicted_p95_s, slo_risk

__all__ = ["LONG_TAIL_RATIO", "MIN_SAVING_SHARE", "Alternatives", "alternatives"]

MIN_SAVING_SHARE = 0.01
LONG_TAIL_RATIO = 3.0
"""Observed prompt p95 / mean from which a long-context pool is considered (the 1-2-5 buckets of vLLM's prompt
histogram make a constant length read up to ~2.5× its mean)."""
LONG_POOL_LOCAL_RATIO = 0.95
SIMULATE_TOP = 2
"""Options per sweep whose capacity is re-derived by the scheduler simulation (the planner's default is 5): the
cheapest ones, which are the ones recommended; the others keep the queueing approximation (their
``capacity_method`` says so)."""


@dataclass(frozen=True, slots=True)
class Alternatives:
    """What the sweeps need to know about the deployment being replaced."""

    target: WatchTarget
    observation: Observation
    workload: Workload
    """The observed workload."""
    snapshot: CatalogSnapshot
    current_usd: float
    baseline_usd: float
    peak_qps: float
    calibration: CalibrationTable | None = None
    _plans: dict[tuple[tuple[str, ...], tuple[str, ...]], Plan] = field(default_factory=dict)

    @property
    def params_for(self) -> ParamsLookup:
        table = self.calibration
        if table is None:
            return calibrated_params
        return lambda gpu, precision: table.params_for(gpu.name, BACKEND, str(precision))

    def restricted(self, models: Sequence[str], gpus: Sequence[str]) -> Workload:
        constraints = self.workload.constraints.model_copy(
            update={"models": list(models), "gpus": list(gpus), "cpu": False}
        )
        return self.workload.model_copy(update={"constraints": constraints})

    def plan(self, models: Sequence[str], gpus: Sequence[str]) -> Plan:
        key = (tuple(models), tuple(gpus))
        if key not in self._plans:
            self._plans[key] = make_plan(
                self.restricted(models, gpus), self.snapshot, params_for=self.params_for
            )
        return self._plans[key]

    def worth_it(self, usd_per_month: float) -> bool:
        return usd_per_month < self.baseline_usd * (1.0 - MIN_SAVING_SHARE)

    def option_recommendation(
        self, kind: str, title: str, option: PlanOption, note: str = ""
    ) -> Recommendation:
        perf = option.perf
        predicted = predicted_p95_s(perf.ttft, perf.itl, perf.e2e)
        risk, reason = slo_risk(
            peak_qps=self.peak_qps,
            replicas=option.replicas,
            capacity_qps=perf.max_qps_per_replica,
            predicted_s=predicted,
            targets_s=self.target.slo_targets_s,
            plan_peak_qps=self.target.peak_qps,
            window_s=self.observation.window_s,
        )
        usd = option.cost.usd_per_month
        detail = (
            f"{option.replicas} x {option.candidate.label()} at ${usd:,.0f}/month, planned on the observed load "
            f"(vs ${self.baseline_usd:,.0f}/month for the deployed configuration right-sized, "
            f"${self.current_usd:,.0f}/month now); capacity {perf.max_qps_per_replica:.3g} req/s per replica "
            f"({perf.capacity_method}, {perf.provenance})"
        )
        return Recommendation(
            kind=kind,
            title=title,
            detail=detail + (f"; {note}" if note else ""),
            saving_usd_per_month=self.current_usd - usd,
            slo_risk=risk,
            risk_reason=reason,
            predicted_s=predicted,
        )


def _cheapest(options: Sequence[PlanOption], keep: Callable[[PlanOption], bool]) -> PlanOption | None:
    kept = [o for o in options if keep(o) and o.candidate.cpu is None]
    return min(kept, key=lambda o: o.cost.usd_per_month) if kept else None


def _same_gpu(alt: Alternatives) -> list[Recommendation]:
    t = alt.target
    options = alt.plan([t.model], [t.gpu]).options
    out = []
    other_precision = _cheapest(options, lambda o: str(o.candidate.precision) != t.precision)
    if other_precision is not None and alt.worth_it(other_precision.cost.usd_per_month):
        c = other_precision.candidate
        out.append(
            alt.option_recommendation(
                "precision",
                f"switch to {c.precision} on the same GPUs ({other_precision.replicas} x {c.tp}x{c.gpu})",
                other_precision,
                f"{c.precision} weights change outputs slightly: check quality on your own evaluations first",
            )
        )
    other_tp = _cheapest(
        options, lambda o: str(o.candidate.precision) == t.precision and o.candidate.tp != t.tp
    )
    if other_tp is not None and alt.worth_it(other_tp.cost.usd_per_month):
        c = other_tp.candidate
        out.append(
            alt.option_recommendation(
                "gpu",
                f"use {other_tp.replicas} replicas of {c.tp}x{c.gpu} instead of {t.tp}x{t.gpu}",
                other_tp,
            )
        )
    return out


def _plan_allowed(alt: Alternatives, key: str) -> list[str]:
    constraints = alt.target.workload.get("constraints")
    names = constraints.get(key) if isinstance(constraints, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else []


def _other_gpu(alt: Alternatives) -> list[Recommendation]:
    t = alt.target
    gpus = _plan_allowed(alt, "gpus")
    if gpus and set(gpus) <= {t.gpu}:
        return []
    option = _cheapest(alt.plan([t.model], gpus).options, lambda o: o.candidate.gpu != t.gpu)
    if option is None or not alt.worth_it(option.cost.usd_per_month):
        return []
    c = option.candidate
    return [
        alt.option_recommendation(
            "gpu", f"move to {option.replicas} x {c.tp}x{c.gpu} ({c.precision})", option
        )
    ]


def _other_model(alt: Alternatives) -> list[Recommendation]:
    t = alt.target
    models = _plan_allowed(alt, "models")
    if models and set(models) <= {t.model}:
        return []
    option = _cheapest(alt.plan(models, [t.gpu]).options, lambda o: o.candidate.model != t.model)
    if option is None or not alt.worth_it(option.cost.usd_per_month):
        return []
    c = option.candidate
    return [
        alt.option_recommendation(
            "model",
            f"serve {c.model} ({c.precision}) on {option.replicas} x {c.tp}x{c.gpu}",
            option,
            "another model answers differently: check quality on your own evaluations first",
        )
    ]


def _long_context(alt: Alternatives) -> list[Recommendation]:
    o, t = alt.observation, alt.target
    mean, p95 = o.prompt_tokens_mean, o.prompt_tokens_p95
    if mean is None or p95 is None or not mean > 0 or p95 < LONG_TAIL_RATIO * mean:
        return []
    workload = alt.restricted([t.model], _plan_allowed(alt, "gpus"))
    rule = routing_rule(workload, local_ratio=LONG_POOL_LOCAL_RATIO)
    mixed = make_mixed_plan(
        workload,
        alt.snapshot,
        rule,
        plan_maker=lambda w, s: make_plan(w, s, params_for=alt.params_for, simulate_top=SIMULATE_TOP),
    )
    pure = next((m for m in mixed.options if m.name == "pure"), None)
    split = next((m for m in mixed.options if m.name == "bulk + long-context pool"), None)
    if pure is None or split is None or pure.usd_per_month is None or split.usd_per_month is None:
        return []
    if split.usd_per_month >= pure.usd_per_month * (1.0 - MIN_SAVING_SHARE):
        return []
    return [_pool_recommendation(alt, split, pure.usd_per_month, rule.threshold_tokens)]


def _pool_recommendation(
    alt: Alternatives, split: MixedOption, pure_usd: float, threshold: int
) -> Recommendation:
    assert split.usd_per_month is not None
    worst: tuple[int, Risk, str] = (-1, "low", "")
    predicted: dict[str, float] = {}
    pools = []
    order = {"low": 0, "medium": 1, "high": 2}
    for pool in split.pools:
        option = pool.option
        assert option is not None
        perf = option.perf
        p95 = predicted_p95_s(perf.ttft, perf.itl, perf.e2e)
        risk, reason = slo_risk(
            peak_qps=alt.peak_qps * pool.share,
            replicas=option.replicas,
            capacity_qps=perf.max_qps_per_replica,
            predicted_s=p95,
            targets_s=alt.target.slo_targets_s,
            plan_peak_qps=alt.target.peak_qps * pool.share,
            window_s=alt.observation.window_s,
        )
        if order[risk] > worst[0]:
            worst = (order[risk], risk, f"{pool.role} pool: {reason}")
        predicted = {k: max(v, predicted.get(k, 0.0)) for k, v in p95.items()}
        pools.append(
            f"{pool.role} pool {pool.share:.1%} of requests on {option.replicas} x {option.candidate.label()}"
        )
    return Recommendation(
        kind="long_context_pool",
        title=f"move prompts over {threshold:,} tokens to a dedicated long-context pool",
        detail=(
            f"{'; '.join(pools)}: ${split.usd_per_month:,.0f}/month vs ${pure_usd:,.0f}/month for one pool "
            f"sized for every prompt (${alt.current_usd:,.0f}/month now); the gateway routes by prompt length"
        ),
        saving_usd_per_month=alt.current_usd - split.usd_per_month,
        slo_risk=worst[1],
        risk_reason=worst[2],
        predicted_s=predicted,
    )


def alternatives(alt: Alternatives) -> list[Recommendation]:
    """Every planner-based recommendation that beats the right-sized deployment (module docstring)."""
    return [*_same_gpu(alt), *_other_gpu(alt), *_other_model(alt), *_long_context(alt)]
