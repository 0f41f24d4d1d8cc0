"""Efficiency: GPU-hours paid vs needed for the observed load, and a 0–100 score (docs/watch.md, *Efficiency score*).

Notation (per window): R̄ time-averaged replicas up, g GPUs per replica, λ the one-minute peak QPS
(``_rightsize_observed``), c the perf model's highest QPS per replica that meets every SLO target at the observed
lengths (``_rightsize_replica``: the planner's capacity search, packaged calibration), running / kv the observed
mean running sequences (sum over replicas) and the highest KV-cache usage (0–1)::

    paid     = R̄ · g                              GPU-hours paid per hour
    R_need   = λ / c                              replicas needed (fractional; 0 when λ = 0, ∞ when c = 0 < λ)
    needed   = R_need · g                         GPU-hours needed per hour
    S        = min(1, needed / paid)              sizing: share of the paid GPUs the observed peak needs
    u        = min(1, (running / R̄) / n_c)        engine utilisation vs what a replica holds at capacity,
               n_c = c · E2E_mean(c)              (Little's law on the simulated run at c)
    k        = min(1, kv_max / kv_c)              KV use vs the simulated peak KV share at capacity
    A        = min over observed SLO targets of min(1, target / observed)    (1 when none is observed)
    score    = 100 · A · (0.6·S + 0.2·u + 0.2·k) / (sum of the weights of the terms present)

Why these terms: S is the question ("are we paying for idle GPUs?") answered through the perf model; u and k are the
engine's own view of the same thing (measured, not predicted), each relative to what the replica can hold *under the
SLO* — not to ``max_num_seqs`` or a full cache, which an SLO-bound replica never reaches. A term whose input was not
observed (no running / KV gauge, or c = 0) is left out and the weights renormalised. A multiplies everything, so an
overloaded deployment (S = u = k = 1) scores by how far it misses its SLO, never as "efficient".

Reported beside the score: ``utilisation`` = running / (R̄ · max_num_seqs) (raw engine occupancy) and
``kv_headroom`` = 1 − kv_max; dollars = GPU-hours × the plan's $/GPU-hour × 730 h/month.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from servewise.catalog import CatalogSnapshot
from servewise.cost import HOURS_PER_MONTH
from servewise.errors import UsageError
from servewise.perf import CalibrationTable

from ._observation import Efficiency, Observation, WatchTarget
from ._rightsize_observed import observed_workload, planned_workload, sustained_peak_qps
from ._rightsize_replica import catalog_snapshot, replica_model

__all__ = ["WEIGHTS", "EfficiencyInputs", "efficiency", "efficiency_score", "observed_slo"]

WEIGHTS = {"sizing": 0.6, "utilisation": 0.2, "kv": 0.2}
"""Weights of S, u and k (module docstring): sizing carries the cost question; the engine's two gauges confirm it."""


@dataclass(frozen=True, slots=True)
class EfficiencyInputs:
    """Everything the score needs, as plain numbers (module docstring for the symbols)."""

    replicas_mean: float
    gpus_per_replica: int
    peak_qps: float
    capacity_qps_per_replica: float
    max_num_seqs: int
    usd_per_gpu_hour: float
    running_mean: float | None = None
    """Sum over replicas, mean over the window."""
    running_at_capacity: float | None = None
    """Per replica, n_c (None when c = 0)."""
    kv_usage_max: float | None = None
    kv_at_capacity: float | None = None
    slo: Sequence[tuple[float, float | None]] = ()
    """(target, observed) seconds per SLO target; observed None when not measured."""
    provenance: str = "analytical"


def _share(value: float, reference: float) -> float:
    if reference <= 0:
        return 1.0 if value > 0 else 0.0
    return min(1.0, max(0.0, value / reference))


def efficiency_score(inputs: EfficiencyInputs) -> Efficiency:
    """The score and its terms (formula in the module docstring). ``UsageError`` when no replica was up."""
    i = inputs
    if not i.replicas_mean > 0:
        raise UsageError(
            "no replica was up during the window, so there is nothing paid to score; check the endpoints"
        )
    paid = i.replicas_mean * i.gpus_per_replica
    if i.peak_qps <= 0:
        replicas_needed = 0.0
    elif i.capacity_qps_per_replica <= 0:
        replicas_needed = math.inf
    else:
        replicas_needed = i.peak_qps / i.capacity_qps_per_replica
    needed = replicas_needed * i.gpus_per_replica
    terms: dict[str, float] = {"sizing": _share(needed, paid) if math.isfinite(needed) else 1.0}
    utilisation = None
    if i.running_mean is not None:
        utilisation = min(1.0, max(0.0, i.running_mean / (i.replicas_mean * i.max_num_seqs)))
        if i.running_at_capacity is not None and i.running_at_capacity > 0:
            terms["utilisation"] = _share(i.running_mean / i.replicas_mean, i.running_at_capacity)
    kv_headroom = None
    if i.kv_usage_max is not None:
        kv_headroom = min(1.0, max(0.0, 1.0 - i.kv_usage_max))
        if i.kv_at_capacity is not None and i.kv_at_capacity > 0:
            terms["kv"] = _share(i.kv_usage_max, i.kv_at_capacity)
    slo_factor = min(
        [1.0]
        + [min(1.0, target / observed) for target, observed in i.slo if observed is not None and observed > 0]
    )
    total_weight = sum(WEIGHTS[name] for name in terms)
    weights = {name: WEIGHTS[name] / total_weight for name in terms}
    blended = sum(weights[name] * value for name, value in terms.items())
    components: dict[str, float] = {"slo_factor": slo_factor}
    for name, value in terms.items():
        components[name] = value
        components[f"{name}_weight"] = weights[name]
    components["peak_qps"] = i.peak_qps
    components["capacity_qps_per_replica"] = i.capacity_qps_per_replica
    usd_per_gpu_month = i.usd_per_gpu_hour * HOURS_PER_MONTH
    return Efficiency(
        score=100.0 * slo_factor * blended,
        gpu_hours_paid_per_hour=paid,
        gpu_hours_needed_per_hour=needed,
        replicas_needed=replicas_needed,
        utilisation=utilisation,
        kv_headroom=kv_headroom,
        components=components,
        usd_per_month_paid=paid * usd_per_gpu_month,
        usd_per_month_needed=needed * usd_per_gpu_month,
        provenance=i.provenance,
    )


def observed_slo(target: WatchTarget, observation: Observation) -> list[tuple[str, float, float | None]]:
    """(name, target, observed) seconds for each of the plan's SLO targets, ``ttft_p95`` read from
    ``observation.ttft_s[0.95]`` (observed None when the window did not measure it)."""
    series = {"ttft": observation.ttft_s, "itl": observation.itl_s, "e2e": observation.e2e_s}
    out: list[tuple[str, float, float | None]] = []
    for name, target_s in sorted(target.slo_targets_s.items()):
        metric, _, percentile = name.partition("_")
        quantiles = series.get(metric)
        if quantiles is None or not percentile.startswith("p"):
            continue
        q = float(percentile[1:]) / 100.0
        observed = next((v for k, v in quantiles.items() if abs(k - q) < 1e-9), None)
        out.append((name, target_s, observed))
    return out


def efficiency(
    target: WatchTarget,
    observation: Observation,
    *,
    catalog: CatalogSnapshot | None = None,
    calibration: CalibrationTable | None = None,
) -> Efficiency:
    """The efficiency of the watched deployment over the window (module docstring). ``catalog`` defaults to the
    configured catalog; ``calibration`` to the packaged fit."""
    has_traffic = observation.requests > 0 and observation.qps > 0
    workload = observed_workload(target, observation) if has_traffic else planned_workload(target)
    replica = replica_model(target, workload, catalog_snapshot(catalog), calibration=calibration)
    capacity = replica.capacity.qps
    running_at_capacity = kv_at_capacity = None
    if capacity > 0:
        run = replica.run(capacity)
        e2e_mean_s = run.mean("e2e")
        if math.isfinite(e2e_mean_s):
            running_at_capacity = capacity * e2e_mean_s
        kv_at_capacity = run.peak_kv_blocks / run.kv_blocks if run.kv_blocks else None
    return efficiency_score(
        EfficiencyInputs(
            replicas_mean=observation.replicas_mean,
            gpus_per_replica=target.gpu_count,
            peak_qps=sustained_peak_qps(observation) if has_traffic else 0.0,
            capacity_qps_per_replica=capacity,
            max_num_seqs=replica.settings.max_num_seqs,
            usd_per_gpu_hour=target.usd_per_gpu_hour,
            running_mean=observation.running_mean,
            running_at_capacity=running_at_capacity,
            kv_usage_max=observation.kv_cache_usage_max,
            kv_at_capacity=kv_at_capacity,
            slo=[(goal, seen) for _, goal, seen in observed_slo(target, observation)],
            provenance=replica.provenance,
        )
    )
