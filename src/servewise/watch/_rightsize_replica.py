"""The perf model of one replica of the watched deployment, at the observed request lengths.

Why its own module: efficiency ("replicas needed"), right-sizing ("drop to N replicas") and drift ("predicted at the
observed load") must use the same replica, set up the way the planner set it up when it sized the plan:

* step model: the roofline with the packaged calibration's efficiencies for (GPU, backend, precision) — the
  planner's ``calibrated_params`` — or a given ``CalibrationTable`` (e.g. a refit with observed rows);
* engine: the plan option's engine settings (``max_num_seqs``, token budget, KV dtype, …; vLLM's defaults for the
  GPU where the plan omits one); KV blocks from the memory plan at the plan's ``max-model-len``;
* capacity: the planner's two passes — the queueing approximation (``perf.estimate_replica``) as the start, then the
  scheduler simulation's highest Poisson rate whose p95s meet every SLO target (``perf.simulated_max_qps``), with the
  same memo key, so a planner run on the same workload reuses it.

``tests/watch/test_rightsize_replica.py`` checks that this capacity equals the planner's for the same candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from servewise.catalog import Accelerator, CatalogSnapshot, ModelSpec, open_catalog
from servewise.errors import UnknownNameError, UsageError
from servewise.perf import (
    CalibrationTable,
    EngineSettings,
    MemoryPlan,
    RequestShape,
    SimEngine,
    SimPoint,
    SimResult,
    StepModel,
    StepParams,
    build_step_model,
    default_engine_settings,
    estimate_replica,
    memory_plan,
    poisson_arrivals,
    sampled_lengths,
    simulate,
    simulated_max_qps,
    simulated_point,
)
from servewise.planner import max_model_len, request_shape
from servewise.planner._search import calibrated_params  # the planner's lookup (in its module's __all__)
from servewise.types import Precision
from servewise.workload import Workload

from ._observation import WatchTarget
from ._rightsize_observed import planned_workload

__all__ = [
    "Capacity",
    "ReplicaModel",
    "catalog_snapshot",
    "replica_model",
    "replicas_for",
    "step_params",
]

SIM_REQUESTS = 600
"""Requests per simulated run, as the planner's capacity search (``perf._simcapacity``)."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """Highest per-replica rate meeting every SLO target (0 when none does), and why not more."""

    qps: float
    binding: tuple[str, ...]
    reason: str
    """Empty when ``qps > 0``; else why no rate meets the SLO."""


def step_params(
    gpu: Accelerator, backend: str, precision: Precision, calibration: CalibrationTable | None
) -> StepParams:
    """The efficiencies the planner uses (packaged fit), or those of ``calibration``."""
    if calibration is None:
        return calibrated_params(gpu, precision)
    return calibration.params_for(gpu.name, backend, str(precision))


def _engine_settings(target: WatchTarget, gpu: Accelerator) -> EngineSettings:
    default = default_engine_settings(gpu)
    raw = target.engine
    try:
        return EngineSettings(
            max_num_seqs=int(raw.get("max_num_seqs", default.max_num_seqs)),
            max_num_batched_tokens=int(raw.get("max_num_batched_tokens", default.max_num_batched_tokens)),
            gpu_memory_utilization=float(raw.get("gpu_memory_utilization", default.gpu_memory_utilization)),
            block_size_tokens=int(raw.get("block_size_tokens", default.block_size_tokens)),
            kv_cache_bytes_per_element=int(
                raw.get("kv_cache_bytes_per_element", default.kv_cache_bytes_per_element)
            ),
        )
    except (TypeError, ValueError) as err:
        raise UsageError(f"the plan option's engine settings are not numbers ({err}); re-plan") from None


def _lengths(workload: Workload) -> sampled_lengths:
    """Inverse-CDF samplers of the workload's lengths, as the planner's simulation draws them."""
    prompt, output = workload.traffic.prompt_tokens, workload.traffic.output_tokens

    def clamp(u: float) -> float:
        return min(max(u, 1e-6), 1 - 1e-6)

    return sampled_lengths(lambda u: prompt.quantile(clamp(u)), lambda u: output.quantile(clamp(u)))


@dataclass(frozen=True)
class ReplicaModel:
    """One replica of the deployment under ``workload``'s lengths and SLO (build with ``replica_model``)."""

    target: WatchTarget
    workload: Workload
    model: ModelSpec
    gpu: Accelerator
    precision: Precision
    settings: EngineSettings
    params: StepParams
    step: StepModel
    engine: SimEngine
    memory: MemoryPlan
    shape: RequestShape
    max_model_len: int
    targets_ms: dict[str, float]

    @property
    def provenance(self) -> str:
        return str(self.params.provenance)

    @property
    def lengths(self) -> sampled_lengths:
        return _lengths(self.workload)

    @property
    def prefix_hit_ratio(self) -> float:
        return self.workload.traffic.prefix_share

    @cached_property
    def capacity(self) -> Capacity:
        """The planner's capacity search for this one candidate (module docstring)."""
        estimate, rejection, _ = estimate_replica(
            self.model,
            self.gpu,
            self.target.tp,
            self.precision,
            shape=self.shape,
            targets=self.targets_ms,
            engine=self.settings,
            memory=self.memory,
            params=self.params,
        )
        if estimate is None:
            reason = rejection.reason if rejection is not None else "misses the SLO at any load"
            return Capacity(0.0, (), reason)
        qps, binding, _ = simulated_max_qps(
            self.step,
            self.engine,
            self.lengths,
            self.targets_ms,
            start_qps=estimate.max_qps_per_replica,
            shape_key=(self.shape, self.max_model_len),
            prefix_hit_ratio=self.prefix_hit_ratio,
        )
        if qps <= 0:
            return Capacity(
                0.0,
                binding,
                f"the scheduler simulation misses {', '.join(binding)} even at "
                f"{estimate.max_qps_per_replica / 50:.3g} req/s per replica",
            )
        return Capacity(qps, binding, "")

    def point(self, qps_per_replica: float) -> SimPoint:
        """Simulated latency percentiles (ms) at a per-replica Poisson rate, as the planner reports them."""
        return simulated_point(
            self.step, self.engine, self.lengths, qps_per_replica, prefix_hit_ratio=self.prefix_hit_ratio
        )

    def run(self, qps_per_replica: float, *, requests: int = SIM_REQUESTS, seed: int = 0) -> SimResult:
        """The whole simulated run (per-request arrays) at a per-replica Poisson rate."""
        arrivals = poisson_arrivals(qps_per_replica, requests, self.lengths, seed=seed)
        return simulate(self.step, self.engine, arrivals, prefix_hit_ratio=self.prefix_hit_ratio)


def catalog_snapshot(catalog: CatalogSnapshot | None, db_url: str | None = None) -> CatalogSnapshot:
    """``catalog`` when given, else a snapshot of the catalog at ``db_url`` (default ``SERVEWISE_DB_URL``)."""
    if catalog is not None:
        return catalog
    with open_catalog(db_url) as opened:
        return opened.snapshot()


def _find(snapshot: CatalogSnapshot, target: WatchTarget) -> tuple[ModelSpec, Accelerator]:
    if target.gpu_count < 1:
        raise UsageError(
            f"option {target.option_rank} of {target.plan_path} is a CPU option ({target.gpu}); the perf model "
            "behind efficiency, right-sizing and drift covers GPU replicas only"
        )
    model = next((m for m in snapshot.models if m.name == target.model), None)
    if model is None:
        raise UnknownNameError("model", target.model, [m.name for m in snapshot.models])
    gpu = next((g for g in snapshot.accelerators if g.name == target.gpu), None)
    if gpu is None:
        raise UnknownNameError("gpu", target.gpu, [g.name for g in snapshot.accelerators])
    return model, gpu


def replica_model(
    target: WatchTarget,
    workload: Workload,
    snapshot: CatalogSnapshot,
    *,
    calibration: CalibrationTable | None = None,
) -> ReplicaModel:
    """The deployed replica (``target``'s model, GPU, TP, precision and engine) under ``workload``'s lengths and
    SLO; ``max-model-len`` is the plan's (what was deployed). ``UsageError`` when it no longer fits in memory."""
    model, gpu = _find(snapshot, target)
    try:
        precision = Precision(target.precision)
    except ValueError:
        raise UsageError(f"the plan's precision {target.precision!r} is unknown; re-plan") from None
    if target.tp < 1:
        raise UsageError(f"the plan's tp must be >= 1 (got {target.tp}); re-plan")
    settings = _engine_settings(target, gpu)
    deployed_len = max_model_len(planned_workload(target))
    shape = request_shape(workload)
    memory = memory_plan(
        model,
        gpu,
        target.tp,
        precision,
        settings,
        mean_seq_tokens=shape.prompt_mean + shape.output_mean,
        max_model_len=deployed_len,
    )
    if not memory.fits:
        raise UsageError(
            f"{target.model} {precision} on {target.tp}x{target.gpu} does not fit the observed lengths: "
            f"{memory.reason}"
        )
    params = step_params(gpu, target.backend, precision, calibration)
    step = build_step_model(
        model, gpu, target.tp, precision, params, kv_bytes=settings.kv_cache_bytes_per_element
    )
    engine = SimEngine(
        settings.max_num_seqs,
        settings.max_num_batched_tokens,
        max(1, memory.kv_capacity_tokens // settings.block_size_tokens),
        settings.block_size_tokens,
    )
    return ReplicaModel(
        target=target,
        workload=workload,
        model=model,
        gpu=gpu,
        precision=precision,
        settings=settings,
        params=params,
        step=step,
        engine=engine,
        memory=memory,
        shape=shape,
        max_model_len=deployed_len,
        targets_ms=workload.slo.targets(),
    )


def replicas_for(peak_qps: float, capacity_qps: float) -> int:
    """The planner's sizing rule: ⌈peak / capacity⌉, at least 1."""
    if capacity_qps <= 0:
        raise ValueError("capacity must be > 0")
    return max(1, math.ceil(peak_qps / capacity_qps - 1e-9))
