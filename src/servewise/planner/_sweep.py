"""A plan sweep split by model chunks over an executor (``plan --executor ray``), with the in-process plan's answer.

Why by model: the sweep is a product of models and GPUs, and a model's candidates on every GPU are independent of
the other models' — each chunk is the ordinary ``make_plan`` over a few models, without the simulation pass. The
parent then puts the rejections back in the order one sweep would have made them (models' own rejections, then per
GPU: the GPU's, then each model's), ranks all options, and runs the simulation pass itself, so the plan is the
in-process plan exactly (tests compare the documents). The step model an option was evaluated with is rebuilt from
the catalog, as ``estimate_replica`` built it, rather than shipped back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from servewise.catalog import CatalogSnapshot
from servewise.cost import CostEstimate, allowed_offers
from servewise.perf import CPU_ANALYTICAL_PARAMS, StepModel, build_step_model
from servewise.workload import Workload

from ._cpu import cpu_labels, cpu_offers, cpu_step_model
from ._executor import Executor
from ._plan import PLAN_SCHEMA_VERSION, Candidate, Plan, PlanOption, Rejection
from ._rank import explain_choice
from ._search import ParamsLookup, _assumptions, _pick, max_model_len, request_shape
from ._sizing import ReplicaContext, Sizing, refine_by_simulation

__all__ = ["MODELS_PER_CHUNK", "plan_in_chunks", "step_model_for"]

MODELS_PER_CHUNK = 6
"""Models per task: 41 catalog models make 7 tasks, enough to keep a few workers busy, few enough that shipping
the catalog to each stays small next to the work."""


def step_model_for(option: PlanOption, catalog: CatalogSnapshot, params_for: ParamsLookup) -> StepModel:
    """The step model ``option`` was evaluated with (same inputs as ``estimate_replica``)."""
    c = option.candidate
    if c.cpu is not None:  # a CPU option (planner/_cpu.py)
        return cpu_step_model(c, catalog, CPU_ANALYTICAL_PARAMS)
    model = next(m for m in catalog.models if m.name == c.model)
    gpu = next(g for g in catalog.accelerators if g.name == c.gpu)
    return build_step_model(
        model,
        gpu,
        c.tp,
        c.precision,
        params_for(gpu, c.precision),
        kv_bytes=c.engine.kv_cache_bytes_per_element,
    )


@dataclass(frozen=True, slots=True)
class _SweepInputs:
    workload: Workload
    catalog: CatalogSnapshot
    params_for: ParamsLookup
    tp_sizes: tuple[int, ...]


def _plan_chunk(inputs: _SweepInputs, models: tuple[str, ...]) -> Plan:
    """The analytical sweep of ``models`` (no simulation pass): one task."""
    from ._search import make_plan  # at call time: a Ray worker unpickles this function before the planner

    constraints = inputs.workload.constraints.model_copy(update={"models": list(models)})
    workload = inputs.workload.model_copy(update={"constraints": constraints})
    return make_plan(
        workload, inputs.catalog, params_for=inputs.params_for, tp_sizes=inputs.tp_sizes, simulate_top=0
    )


class _Contexts(dict[Candidate, ReplicaContext]):
    """Contexts rebuilt on first use: only the options the simulation pass re-sizes need one."""

    def __init__(self, options: Sequence[PlanOption], inputs: _SweepInputs) -> None:
        super().__init__()
        self._options = {o.candidate: o for o in options}
        self._inputs = inputs

    def __missing__(self, candidate: Candidate) -> ReplicaContext:
        option = self._options[candidate]
        inputs = self._inputs
        constraints = inputs.workload.constraints
        if candidate.cpu is not None:  # a CPU option (planner/_cpu.py)
            step = cpu_step_model(candidate, inputs.catalog, CPU_ANALYTICAL_PARAMS)
            cpu_context = ReplicaContext(
                step, option.perf.memory, cpu_offers(candidate, inputs.catalog, constraints)
            )
            self[candidate] = cpu_context
            return cpu_context
        offers = allowed_offers(
            inputs.catalog.offers, candidate.gpu, pricing=constraints.pricing, providers=constraints.providers
        )
        context = ReplicaContext(
            step_model_for(option, inputs.catalog, inputs.params_for), option.perf.memory, tuple(offers)
        )
        self[candidate] = context
        return context


def _merged_rejections(chunks: Sequence[Plan], gpu_order: Sequence[str]) -> list[Rejection]:
    merged = [r for plan in chunks for r in plan.rejected if r.gpu == "*"]
    for gpu in gpu_order:
        # A device's own rejections are the same in every chunk that has them (CPU ones only where a chunk has a
        # model small enough for CPUs), so take them from the first such chunk.
        own = next((p for p in chunks if any(r.gpu == gpu and r.model == "*" for r in p.rejected)), chunks[0])
        merged.extend(r for r in own.rejected if r.gpu == gpu and r.model == "*")
        for plan in chunks:
            merged.extend(r for r in plan.rejected if r.gpu == gpu and r.model != "*")
    return merged


def plan_in_chunks(
    workload: Workload,
    catalog: CatalogSnapshot,
    executor: Executor,
    *,
    params_for: ParamsLookup,
    tp_sizes: Sequence[int],
    simulate_top: int,
    models_per_chunk: int = MODELS_PER_CHUNK,
) -> Plan:
    """``make_plan`` with the sweep spread over ``executor``; the same plan whatever the chunking."""
    constraints = workload.constraints
    models = {m.name: m for m in catalog.models}
    gpus = {g.name: g for g in catalog.accelerators}
    model_names = _pick(constraints.models, models, "model") if constraints.models else sorted(models)
    gpu_names = _pick(constraints.gpus, gpus, "gpu") if constraints.gpus else sorted(gpus)
    unique = list(dict.fromkeys(model_names))
    size = max(1, models_per_chunk)
    chunks = [tuple(unique[i : i + size]) for i in range(0, len(unique), size)] or [()]
    inputs = _SweepInputs(workload, catalog, params_for, tuple(tp_sizes))
    plans = executor.map(_plan_chunk, inputs, chunks)

    rejected = _merged_rejections(plans, [*gpu_names, *cpu_labels(catalog, constraints)])
    options = [o for plan in plans for o in plan.options]
    shape = request_shape(workload)
    peak, avg = workload.traffic.peak_qps, workload.traffic.avg_qps
    costs: dict[tuple[str, int, int], CostEstimate | None] = {}
    sizing = Sizing(workload, shape, workload.slo.targets(), peak, avg, rejected, costs)
    ranked = refine_by_simulation(options, _Contexts(options, inputs), sizing, simulate_top)
    return Plan(
        schema_version=PLAN_SCHEMA_VERSION,
        workload=workload,
        peak_qps=peak,
        options=tuple(ranked),
        chosen=0 if ranked else None,
        rejected=tuple(rejected),
        assumptions=_assumptions(workload, max_model_len(workload)),
        why=explain_choice(ranked, workload),
        candidates_evaluated=sum(p.candidates_evaluated for p in plans),
        models_usable=sum(p.models_usable for p in plans),
        gpus_usable=plans[0].gpus_usable,
    )
