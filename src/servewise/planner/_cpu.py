"""CPU serving candidates: small (quantised) models on CPU-only instances, next to the GPU candidates.

Why they go through the GPU path's sizing: a CPU replica is one whole instance, so its offer is presented to the
sizing and pricing code as an instance with one "device" (the label ``"<instance> (CPU)"``) and ``tp`` = 1. Replicas,
the budget, pricing modes, the ranking and the scheduler-simulation pass then treat CPU and GPU options by the same
rules; only the step model (``perf/_cpu.py``, always ``analytical``) and the memory pool (host RAM) differ. A CPU
option uses no GPU, so ``gpus_total`` is 0 and ``--max-gpus`` does not limit it.

Which models get CPU candidates (``constraints.cpu``):
    true    every allowed model (the memory and SLO checks still reject what is too big or too slow)
    false   none
    unset   models with at most ``CPU_AUTO_MAX_ACTIVE_PARAMS_B`` = 4 billion active parameters: the 1–4B class
            (Llama-3.2-1B/3B, Qwen3-4B, Phi-3-mini, and MoEs like Qwen3-30B-A3B) whose decode can keep up on a few
            cores; larger models would only add rejections.
Precisions: ``bf16`` (AMX-BF16) and ``int4`` (weight-only) are served; ``fp8``/``fp4`` are rejected per instance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from servewise.catalog import CatalogSnapshot, CloudOffer, CpuSpec, ModelSpec
from servewise.cost import allowed_offers
from servewise.perf import (
    CPU_ENGINE,
    CpuParams,
    MemoryPlan,
    PerfEstimate,
    RequestShape,
    StepModel,
    build_cpu_step_model,
    cpu_memory_plan,
    cpu_serving_precision,
    cpu_unsupported_reason,
    estimate_cpu_replica,
)
from servewise.types import Precision
from servewise.workload import Constraints, Workload

from ._plan import Candidate, PlanOption, Rejection

__all__ = [
    "CPU_AUTO_MAX_ACTIVE_PARAMS_B",
    "CpuInstance",
    "SizeCpu",
    "cpu_assumption",
    "cpu_instances",
    "cpu_label",
    "cpu_labels",
    "cpu_offers",
    "cpu_step_model",
    "cpu_wanted",
    "sweep_cpus",
]

CPU_AUTO_MAX_ACTIVE_PARAMS_B = 4.0
"""Without ``constraints.cpu``, CPU candidates are made for models with at most this many active parameters."""

SizeCpu = Callable[
    [Candidate, PerfEstimate, StepModel, MemoryPlan, tuple[CloudOffer, ...]], PlanOption | None
]
"""The planner's sizing of a CPU replica estimate (replicas, price, budget), as for GPU candidates."""


@dataclasses.dataclass(frozen=True, slots=True)
class CpuInstance:
    """A CPU-only instance type with its specs, host RAM and offers (as one-device offers for the sizing)."""

    cpu: CpuSpec
    host_memory_gb: float
    offers: tuple[CloudOffer, ...]

    @property
    def label(self) -> str:
        return cpu_label(self.cpu.instance_type)


def cpu_label(instance_type: str) -> str:
    """What a CPU replica shows where a GPU replica shows its GPU name."""
    return f"{instance_type} (CPU)"


def cpu_wanted(constraints: Constraints, model: ModelSpec) -> bool:
    """Whether ``model`` gets CPU candidates (see the module docstring)."""
    if constraints.cpu is not None:
        return constraints.cpu
    return model.active_params_b <= CPU_AUTO_MAX_ACTIVE_PARAMS_B


def cpu_instances(catalog: CatalogSnapshot, constraints: Constraints) -> list[CpuInstance]:
    """CPU instance types with a spec, a CPU-only offer priced in the pricing mode, from an allowed provider.

    Ordered by instance type, so plans list their rejections in a stable order."""
    if constraints.cpu is False or (constraints.gpus and constraints.cpu is None):
        return []  # --gpu without --cpu asks for those GPUs only
    instances = []
    for cpu in sorted(catalog.cpus, key=lambda c: (c.instance_type, c.provider)):
        matching = [
            dataclasses.replace(offer, gpu=cpu_label(cpu.instance_type), gpu_count=1)
            for offer in catalog.offers
            if offer.gpu is None
            and offer.instance_type == cpu.instance_type
            and offer.provider.casefold() == cpu.provider.casefold()
        ]
        offers = allowed_offers(
            matching,
            cpu_label(cpu.instance_type),
            pricing=constraints.pricing,
            providers=constraints.providers,
        )
        memory = [o.memory_gb for o in matching if o.memory_gb]
        if offers and memory:
            instances.append(CpuInstance(cpu, min(memory), tuple(offers)))
    return instances


def cpu_labels(catalog: CatalogSnapshot, constraints: Constraints) -> list[str]:
    """The ``gpu`` labels CPU rejections carry, in sweep order (for merging chunked sweeps)."""
    return [instance.label for instance in cpu_instances(catalog, constraints)]


def cpu_step_model(candidate: Candidate, catalog: CatalogSnapshot, params: CpuParams) -> StepModel:
    """The step model a CPU option was evaluated with (rebuilt from the catalog, as ``sweep_cpus`` built it)."""
    model = next(m for m in catalog.models if m.name == candidate.model)
    cpu = next(c for c in catalog.cpus if c.instance_type == candidate.cpu)
    return build_cpu_step_model(model, cpu, candidate.precision, params)


def cpu_offers(
    candidate: Candidate, catalog: CatalogSnapshot, constraints: Constraints
) -> tuple[CloudOffer, ...]:
    """The one-device offers a CPU option was sized with (for re-sizing it by simulation)."""
    for instance in cpu_instances(catalog, constraints):
        if instance.label == candidate.gpu:
            return instance.offers
    return ()


def sweep_cpus(
    workload: Workload,
    catalog: CatalogSnapshot,
    models: Sequence[ModelSpec],
    *,
    shape: RequestShape,
    seq_len: int,
    mean_seq: float,
    targets: dict[str, float],
    params: CpuParams,
    rejected: list[Rejection],
    size: SizeCpu,
) -> tuple[list[PlanOption], int]:
    """Every CPU candidate the constraints allow, evaluated and sized; returns (options, candidates evaluated)."""
    constraints = workload.constraints
    wanted = [m for m in models if cpu_wanted(constraints, m)]
    options: list[PlanOption] = []
    evaluated = 0
    if not wanted:
        return options, evaluated
    for instance in cpu_instances(catalog, constraints):
        cpu = instance.cpu
        precisions: list[Precision] = []
        for asked in constraints.precisions:
            precision = cpu_serving_precision(asked)
            reason = cpu_unsupported_reason(cpu, precision)
            if reason:
                rejected.append(Rejection("*", instance.label, None, precision, "precision", reason))
            elif precision not in precisions:
                precisions.append(precision)
        for model in wanted:
            for precision in precisions:
                evaluated += 1
                candidate = Candidate(
                    model.name,
                    model.hf_id,
                    instance.label,
                    1,
                    precision,
                    CPU_ENGINE,
                    cpu=cpu.instance_type,
                    vcpus=cpu.vcpus,
                )

                memory = cpu_memory_plan(
                    model,
                    cpu,
                    instance.host_memory_gb,
                    precision,
                    mean_seq_tokens=mean_seq,
                    max_model_len=seq_len,
                    params=params,
                )
                if not memory.fits:
                    rejected.append(
                        Rejection(model.name, instance.label, 1, precision, "memory", memory.reason)
                    )
                    continue
                estimate, rejection, step = estimate_cpu_replica(
                    model, cpu, precision, shape=shape, targets=targets, memory=memory, params=params
                )
                if estimate is None:
                    assert rejection is not None
                    rejected.append(
                        Rejection(
                            model.name,
                            instance.label,
                            1,
                            precision,
                            "slo",
                            rejection.reason,
                            misses=rejection.misses,
                        )
                    )
                    continue
                option = size(candidate, estimate, step, memory, instance.offers)
                if option is not None:
                    options.append(option)
    return options, evaluated


def cpu_assumption(params: CpuParams) -> str:
    """The plan's assumption line for CPU options: every efficiency the CPU model rests on."""
    return (
        f"CPU options (analytical, no measured CPU rows): decode at {params.bandwidth_efficiency:g} of the "
        f"instance's DRAM share (socket bandwidth x cores / socket cores, an assumption), prefill at "
        f"{params.compute_efficiency:g} of the AMX bf16 peak, {params.step_overhead_s * 1e3:g} ms per step, "
        f"{params.memory_utilization:g} of host RAM minus {params.reserve_gb:g} GB for weights + KV; one replica "
        f"per instance; considered for models <= {CPU_AUTO_MAX_ACTIVE_PARAMS_B:g}B active parameters unless "
        "--cpu/--no-cpu (see docs/cpu.md)"
    )
