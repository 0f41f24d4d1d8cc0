"""``PerfEstimate``: what one replica of a configuration does under a workload, with where the numbers come from.

Why one entry point: the planner, ``predict`` and the simulator must read the same numbers for the same
configuration, and every number must carry its provenance and the data it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision, Provenance

from ._capacity import LatencyPercentiles, RequestShape, max_qps_under_slo, saturation_qps, steady_state
from ._engine import EngineSettings
from ._memory import MemoryPlan
from ._params import StepParams
from ._roofline import StepModel, build_step_model

__all__ = ["PerfEstimate", "PerfRejection", "estimate_replica", "latency_at"]


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


@dataclass(frozen=True, slots=True)
class PerfRejection:
    """Why a configuration cannot serve the workload, with the numbers; ``kind`` is ``memory`` or ``slo``."""

    kind: str
    reason: str
    idle_ttft_p95_ms: float | None = None
    idle_itl_p95_ms: float | None = None


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
    qps, binding, point = max_qps_under_slo(
        step, shape, engine, targets, kv_capacity_tokens=memory.kv_capacity_tokens
    )
    if qps <= 0.0:
        missed = ", ".join(
            f"{name} {point_value(point, name):.0f} > {targets[name]:g} ms" if name in targets else name
            for name in binding
        )
        return (
            None,
            PerfRejection(
                kind="slo",
                reason=f"misses the SLO even at zero load: {missed}",
                idle_ttft_p95_ms=point.ttft.p95_ms,
                idle_itl_p95_ms=point.itl.p95_ms,
            ),
            step,
        )
    return (
        PerfEstimate(
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
            provenance=params.provenance,
            basis=params.basis,
        ),
        None,
        step,
    )


def point_value(point: object, name: str) -> float:
    """The value of SLO field ``name`` (``ttft_p95_ms``) in a load point."""
    metric, percentile, _ = name.split("_")
    value: float = getattr(point, metric).at(percentile)
    return value


def latency_at(
    estimate: PerfEstimate, step: StepModel, shape: RequestShape, qps_per_replica: float
) -> PerfEstimate:
    """The same replica's estimate at a lower planned load (replicas share the peak)."""
    point = steady_state(
        step, shape, estimate.engine, qps_per_replica, kv_capacity_tokens=estimate.memory.kv_capacity_tokens
    )
    if math.isinf(point.step_s):
        return estimate
    return PerfEstimate(
        qps_per_replica=qps_per_replica,
        max_qps_per_replica=estimate.max_qps_per_replica,
        saturation_qps_per_replica=estimate.saturation_qps_per_replica,
        binding=estimate.binding,
        ttft=point.ttft,
        itl=point.itl,
        e2e=point.e2e,
        output_tokens_per_s=point.output_tokens_per_s,
        running_seqs=point.running_seqs,
        memory=estimate.memory,
        engine=estimate.engine,
        provenance=estimate.provenance,
        basis=estimate.basis,
    )
