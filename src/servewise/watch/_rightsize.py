"""Right-sizing: what the observed load says the deployment should be (docs/watch.md, *Right-sizing*).

With λ the observed one-minute peak QPS (``_rightsize_observed``), c the deployed replica's capacity under the SLO at
the observed lengths (``_rightsize_replica``, the planner's capacity search) and N the replicas running (the most
seen in any interval):

    needed N*  = max(1, ⌈λ / c⌉)                                   the planner's sizing rule
    replicas   N* < N                    → "drop to N* replicas"          saving $(N) − $(N*)
    scale_up   N* > N, or an observed p95 over its target
               → "scale up to max(N*, N + 1 if the model thinks N suffices)"   saving $(N) − $(new) < 0
    off-peak   n_i = max(1, ⌈qps_1m(i) / c⌉) per sample; when min n_i < max n_i:
               "drop to min n_i replicas off-peak",
               saving = Σ_i (max n − n_i) · Δt_i / Σ Δt · $(max n) / max n      (the window's mix of low and high
               load taken as typical of the month: an autoscaled month, extrapolated from the window)

$(n) is the cost model's monthly price of n replicas (``_rightsize_cost``), SLO risk the predicted margin at λ.
Then the planner re-runs on the observed workload for precision, TP, GPU, model and long-context alternatives
(``_rightsize_replan``). Recommendations come back scale-up first, then by saving, largest first.

A window without finished requests has no load to size on: the only recommendation is to drop to one replica, with
high risk (the window may simply have been quiet). A configuration that meets the SLO at no load (c = 0) gets no
replica recommendation — adding replicas does not help; the planner's alternatives may.
"""

from __future__ import annotations

import math

from servewise.catalog import CatalogSnapshot
from servewise.cost import ScalingPolicy
from servewise.perf import CalibrationTable

from ._compliance import certain_misses
from ._observation import Observation, Recommendation, WatchTarget
from ._rightsize_cost import Pricing, predicted_p95_s, slo_risk
from ._rightsize_observed import observed_workload, planned_workload, smoothed_qps, sustained_peak_qps
from ._rightsize_replan import Alternatives, alternatives
from ._rightsize_replica import ReplicaModel, catalog_snapshot, replica_model, replicas_for

__all__ = ["current_replicas", "recommendations"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds * 1000:,.0f} ms"


def _replicas(n: int) -> str:
    return f"{n} replica" if n == 1 else f"{n} replicas"


def current_replicas(target: WatchTarget, observation: Observation) -> int:
    """Replicas running: the most seen in any interval, else those up at the end, else the plan's."""
    seen = max((s.replicas for s in observation.samples), default=0)
    return seen or observation.replicas or target.replicas


def _idle(target: WatchTarget, observation: Observation, snapshot: CatalogSnapshot) -> list[Recommendation]:
    current = current_replicas(target, observation)
    pricing = Pricing(snapshot, planned_workload(target), target)
    now, one = (
        pricing.usd_per_month(target.gpu, target.tp, current),
        pricing.usd_per_month(target.gpu, target.tp, 1),
    )
    if current <= 1 or now is None or one is None:
        return []
    return [
        Recommendation(
            kind="replicas",
            title=f"drop to 1 replica (no traffic in the window; {current} running)",
            detail=f"${one:,.0f}/month instead of ${now:,.0f}/month while there is no traffic",
            saving_usd_per_month=now - one,
            slo_risk="high",
            risk_reason=(
                f"no request finished in the {observation.window_s:g}-s window, so there is no load to size on; "
                "watch a window that includes the peak before acting"
            ),
        )
    ]


def _replica_recommendation(
    kind: str, title: str, detail: str, replica: ReplicaModel, replicas: int, peak: float, saving: float,
    target: WatchTarget, observation: Observation, high_risk_reason: str | None = None,
) -> Recommendation:  # fmt: skip
    capacity = replica.capacity.qps
    point = replica.point(peak / replicas)
    predicted = predicted_p95_s(point.ttft, point.itl, point.e2e)
    risk, reason = slo_risk(
        peak_qps=peak,
        replicas=replicas,
        capacity_qps=capacity,
        predicted_s=predicted,
        targets_s=target.slo_targets_s,
        plan_peak_qps=target.peak_qps,
        window_s=observation.window_s,
    )
    if high_risk_reason is not None:
        risk, reason = "high", f"{high_risk_reason}; {reason}"
    return Recommendation(kind, title, detail, saving, risk, reason, predicted)


def _steady(
    replica: ReplicaModel, target: WatchTarget, observation: Observation, pricing: Pricing, peak: float
) -> tuple[list[Recommendation], int]:
    """The replicas / scale-up recommendation and the replica count right-sized for the peak."""
    capacity = replica.capacity.qps
    current = current_replicas(target, observation)
    needed = replicas_for(peak, capacity)
    missed = [  # a target inside the quantile's histogram bucket is no evidence either way
        f"observed {row.metric}_p{row.quantile * 100:g} {_ms(row.observed_s or 0.0)} > {_ms(row.target_s)}"
        for row in certain_misses(target, observation)
    ]
    now = pricing.usd_per_month(target.gpu, target.tp, current)
    if now is None:
        return [], needed
    explain = (
        f"the observed one-minute peak of {peak:.3g} req/s over {capacity:.3g} req/s per replica under the SLO "
        f"({replica.provenance} perf model; {', '.join(replica.capacity.binding) or 'nothing'} binds above it) "
        f"needs {_replicas(needed)}"
    )
    if needed > current or missed:
        new = needed if needed > current else current + 1
        usd = pricing.usd_per_month(target.gpu, target.tp, new)
        if usd is None:
            return [], needed
        override = None
        if needed <= current:
            override = (
                f"the window missed the SLO ({'; '.join(missed)}) although the perf model predicts "
                f"{_replicas(current)} suffice: it under-predicts this deployment (see drift), so one more "
                "replica is a step, not a prediction"
            )
        rec = _replica_recommendation(
            "scale_up",
            f"scale up to {_replicas(new)} (from {current})",
            f"{explain}; ${usd:,.0f}/month instead of ${now:,.0f}/month",
            replica, new, peak, now - usd, target, observation, override,
        )  # fmt: skip
        return [rec], max(new, needed)
    if needed < current:
        usd = pricing.usd_per_month(target.gpu, target.tp, needed)
        if usd is not None and usd < now:
            rec = _replica_recommendation(
                "replicas",
                f"drop to {_replicas(needed)} (from {current})",
                f"{explain}; ${usd:,.0f}/month instead of ${now:,.0f}/month",
                replica, needed, peak, now - usd, target, observation,
            )  # fmt: skip
            return [rec], needed
    return [], needed


def _off_peak(
    replica: ReplicaModel, target: WatchTarget, observation: Observation, pricing: Pricing
) -> list[Recommendation]:
    capacity = replica.capacity.qps
    samples = observation.samples
    if len(samples) < 2:
        return []
    loads = smoothed_qps(samples)
    counts = [replicas_for(q, capacity) for q in loads]
    high, low = max(counts), min(counts)
    usd_high = pricing.usd_per_month(target.gpu, target.tp, high)
    if low >= high or usd_high is None:
        return []
    total_s = sum(s.interval_s for s in samples)
    saved_replicas = sum((high - n) * s.interval_s for n, s in zip(counts, samples, strict=True)) / total_s
    saving = saved_replicas * usd_high / high
    share_low = sum(s.interval_s for n, s in zip(counts, samples, strict=True) if n == low) / total_s
    low_peak = max(q for q, n in zip(loads, counts, strict=True) if n == low)
    policy = ScalingPolicy()
    rec = _replica_recommendation(
        "off_peak_replicas",
        f"drop to {_replicas(low)} off-peak (below {low * capacity:.3g} req/s)",
        (
            f"the one-minute load ranged {min(loads):.3g}-{max(loads):.3g} req/s; {low} replicas carry up to "
            f"{low * capacity:.3g} req/s under the SLO, which covered {share_low:.0%} of the window; scaling "
            f"between {low} and {high} replicas as this window's load did saves ~${saving:,.0f}/month vs {high} "
            "static, if the window's mix of low and high load is typical of the month"
        ),
        replica, low, low_peak, saving, target, observation,
    )  # fmt: skip
    lag_min = policy.scale_up_lag_min + policy.cold_start_min
    if rec.slo_risk == "low":
        rec = Recommendation(
            rec.kind,
            rec.title,
            rec.detail,
            rec.saving_usd_per_month,
            "medium",
            f"a replica added when load rises serves only after ~{lag_min} min (autoscaler lag "
            f"{policy.scale_up_lag_min} min + cold start {policy.cold_start_min} min, the `servewise autoscale` "
            f"defaults); {rec.risk_reason}",
            rec.predicted_s,
        )
    return [rec]


def _ordered(recs: list[Recommendation]) -> tuple[Recommendation, ...]:
    return tuple(sorted(recs, key=lambda r: (r.kind != "scale_up", -r.saving_usd_per_month)))


def recommendations(
    target: WatchTarget,
    observation: Observation,
    *,
    catalog: CatalogSnapshot | None = None,
    calibration: CalibrationTable | None = None,
) -> tuple[Recommendation, ...]:
    """Right-sizing recommendations for the observed window (module docstring); ``catalog`` defaults to the
    configured catalog, ``calibration`` to the packaged fit."""
    snapshot = catalog_snapshot(catalog)
    if observation.requests <= 0 or not observation.qps > 0:
        return _ordered(_idle(target, observation, snapshot))
    workload = observed_workload(target, observation)
    replica = replica_model(target, workload, snapshot, calibration=calibration)
    pricing = Pricing(snapshot, workload, target)
    peak = sustained_peak_qps(observation)
    recs: list[Recommendation] = []
    right_sized = current_replicas(target, observation)
    if replica.capacity.qps > 0:
        steady, right_sized = _steady(replica, target, observation, pricing, peak)
        recs += steady
        recs += _off_peak(replica, target, observation, pricing)
    current_usd = pricing.usd_per_month(target.gpu, target.tp, current_replicas(target, observation))
    baseline_usd = pricing.usd_per_month(target.gpu, target.tp, right_sized)
    if current_usd is not None:
        alt = Alternatives(
            target=target,
            observation=observation,
            workload=workload,
            snapshot=snapshot,
            current_usd=current_usd,
            baseline_usd=baseline_usd if baseline_usd is not None and replica.capacity.qps > 0 else math.inf,
            peak_qps=peak,
            calibration=calibration,
        )
        recs += alternatives(alt)
    return _ordered(recs)
