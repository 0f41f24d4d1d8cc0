"""``PerfEstimate``: what one replica of a configuration does under a workload, with where the numbers come from.

Why one entry point: the planner, ``predict`` and the simulator must read the same numbers for the same
configuration, and every number must carry its provenance and the data it rests on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision, Provenance

from ._capacity import (
    LatencyPercentiles,
    RequestShape,
    SloCheck,
    max_qps_under_slo,
    saturation_qps,
    slo_checks,
    steady_state,
)
from ._engine import EngineSettings
from ._memory import MemoryPlan
from ._params import StepParams
from ._roofline import StepModel, build_step_model

__all__ = ["PerfEstimate", "PerfRejection", "estimate_replica", "latency_at", "with_correction"]


@dataclass(frozen=True, slots=True)
class PerfEstimate:
    """One replica: capacity under the SLO and latency percentiles at the load it is planned for."""

    qps_per_replica: float
    """The planned load per replica at which the latencies below hold."""
    max_qps_per_replica: float
    """Highest arrival rate per replica that meets every SLO target."""
    saturation_qps_per_replica: float
    """Throughput limit ignoring SLOs (the step time diverges)."""
    binding: tuple[str, ...]
    """What stops a higher rate: SLO fields (``ttft_p95_ms``), ``throughput``, ``kv_cache`` or ``max_num_seqs``."""
    ttft: LatencyPercentiles
    itl: LatencyPercentiles
    e2e: LatencyPercentiles
    output_tokens_per_s: float
    running_seqs: float
    memory: MemoryPlan
    engine: EngineSettings
    provenance: Provenance
    basis: str
    capacity_method: str = "queueing approximation"
    """``simulated`` when the capacity and latencies come from the scheduler simulation (``perf/_simcapacity``)."""


@dataclass(frozen=True, slots=True)
class PerfRejection:
    """Why a configuration cannot serve the workload: the SLO targets it misses even at zero load."""

    reason: str
    misses: tuple[SloCheck, ...]
    """The targets missed at zero load, with the predicted values; empty when an overload binds instead."""


def estimate_replica(
    model: ModelSpec,
    gpu: Accelerator,
    tp: int,
    precision: Precision,
    *,
    shape: RequestShape,
    targets: dict[str, float],
    engine: EngineSettings,
    memory: MemoryPlan,
    params: StepParams,
) -> tuple[PerfEstimate | None, PerfRejection | None, StepModel]:
    """Capacity of one replica; exactly one of estimate and rejection is set. ``memory`` must fit."""
    step = build_step_model(model, gpu, tp, precision, params, kv_bytes=engine.kv_cache_bytes_per_element)
    return estimate_on_step(
        step,
        shape=shape,
        targets=targets,
        engine=engine,
        memory=memory,
        provenance=params.provenance,
        basis=with_correction(params.basis, step),
        too_slow="misses the SLO even at zero load: {misses}",
    )


def with_correction(basis: str, step: StepModel) -> str:
    """``basis`` plus the model correction folded into ``step``, if any: provenance says what shaped a number."""
    return f"{basis}; {step.correction}" if step.correction else basis


def estimate_on_step(
    step: StepModel,
    *,
    shape: RequestShape,
    targets: dict[str, float],
    engine: EngineSettings,
    memory: MemoryPlan,
    provenance: Provenance,
    basis: str,
    too_slow: str,
) -> tuple[PerfEstimate | None, PerfRejection | None, StepModel]:
    """The capacity search and the zero-load rejection for any step model (a GPU's or a CPU host's).
    ``too_slow`` is the rejection's wording, with ``{misses}`` where e.g. ``itl_p95_ms 74 > 50 ms`` goes."""
    qps, binding, point = max_qps_under_slo(
        step, shape, engine, targets, kv_capacity_tokens=memory.kv_capacity_tokens
    )
    if qps <= 0.0:
        misses = tuple(check for check in slo_checks(point, targets) if not check.met)
        named = [f"{c.name} {c.predicted_ms:.4g} > {c.target_ms:g} ms" for c in misses]
        named += [cause for cause in binding if cause not in targets]
        return None, PerfRejection(too_slow.format(misses=", ".join(named)), misses), step
    estimate = PerfEstimate(
        qps_per_replica=qps,
        max_qps_per_replica=qps,
        saturation_qps_per_replica=saturation_qps(step, shape),
        binding=tuple(binding),
        ttft=point.ttft,
        itl=point.itl,
        e2e=point.e2e,
        output_tokens_per_s=point.output_tokens_per_s,
        running_seqs=point.running_seqs,
        memory=memory,
        engine=engine,
        provenance=provenance,
        basis=basis,
    )
    return estimate, None, step


def latency_at(
    estimate: PerfEstimate, step: StepModel, shape: RequestShape, qps_per_replica: float
) -> PerfEstimate:
    """The same replica's estimate at a lower planned load (replicas share the peak)."""
    point = steady_state(
        step, shape, estimate.engine, qps_per_replica, kv_capacity_tokens=estimate.memory.kv_capacity_tokens
    )
    if math.isinf(point.step_s):
        return estimate
    return dataclasses.replace(
        estimate,
        qps_per_replica=qps_per_replica,
        ttft=point.ttft,
        itl=point.itl,
        e2e=point.e2e,
        output_tokens_per_s=point.output_tokens_per_s,
        running_seqs=point.running_seqs,
    )
