"""Enumerate model × GPU × TP × precision, drop what does not fit, size and price the rest, rank.

Order of the filters is cheapest-first, so a full-catalog sweep stays fast: constraints and quality floor (per
model), price availability and precision support (per GPU), memory (per configuration), then the capacity search
(per configuration that fits), then replicas, GPU cap and budget.

    replicas = ⌈peak_qps / max_qps_per_replica⌉,   gpus_total = replicas × tp
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from servewise.catalog import Accelerator, CatalogSnapshot, CloudOffer, ModelSpec
from servewise.cost import CostEstimate, allowed_offers
from servewise.errors import UnknownNameError
from servewise.perf import (
    ANALYTICAL_PARAMS,
    CPU_ANALYTICAL_PARAMS,
    QUANTILES,
    MemoryPlan,
    PerfEstimate,
    RequestShape,
    StepModel,
    StepParams,
    default_engine_settings,
    estimate_replica,
    latency_at,
    load_fitted_table,
    memory_plan,
    serving_precision,
    unsupported_reason,
)
from servewise.types import Precision
from servewise.workload import Workload

from ._cpu import cpu_assumption, sweep_cpus
from ._executor import Executor
from ._plan import PLAN_SCHEMA_VERSION, UNBUDGETED_BEST, Candidate, Plan, PlanOption, Rejection
from ._rank import explain_choice
from ._sizing import ReplicaContext, Sizing, refine_by_simulation

__all__ = [
    "SIMULATED_OPTIONS",
    "TP_SIZES",
    "ParamsLookup",
    "analytical_params",
    "calibrated_params",
    "make_plan",
    "max_model_len",
    "request_shape",
]

TP_SIZES = (1, 2, 4, 8)
SIMULATED_OPTIONS = 5
"""The best-ranked options whose capacity is re-derived by simulation (until the top ones are all simulated)."""
BACKEND = "vllm"
"""Plans deploy vLLM (issue #6 writes its manifests), so its calibration applies."""

ParamsLookup = Callable[[Accelerator, Precision], StepParams]
"""Efficiencies for a (GPU, precision)."""


def analytical_params(_gpu: Accelerator, _precision: Precision) -> StepParams:
    return ANALYTICAL_PARAMS


def calibrated_params(gpu: Accelerator, precision: Precision) -> StepParams:
    """The packaged fit for vLLM on this GPU and precision (with its fallbacks); analytical without a fit."""
    table = load_fitted_table()
    return table.params_for(gpu.name, BACKEND, str(precision)) if table else ANALYTICAL_PARAMS


def request_shape(workload: Workload) -> RequestShape:
    traffic = workload.traffic
    return RequestShape(
        prompt_mean=traffic.prompt_tokens.mean,
        output_mean=traffic.output_tokens.mean,
        prompt_q=tuple(traffic.prompt_tokens.quantile(q) for q in QUANTILES),  # type: ignore[arg-type]
        output_q=tuple(traffic.output_tokens.quantile(q) for q in QUANTILES),  # type: ignore[arg-type]
        prefix_share=traffic.prefix_share,
    )


def max_model_len(workload: Workload) -> int:
    """Longest sequence to provision for: p99.9 prompt + p99.9 output, rounded up to 256 tokens."""
    traffic = workload.traffic
    longest = traffic.prompt_tokens.quantile(0.999) + traffic.output_tokens.quantile(0.999)
    return int(math.ceil(longest / 256.0) * 256)


def _pick(names: Sequence[str], known: Mapping[str, object], kind: str) -> list[str]:
    for name in names:
        if name not in known:
            raise UnknownNameError(kind, name, known)
    return list(names)


def _valid_tp(model: ModelSpec, tp: int) -> bool:
    """vLLM splits attention heads evenly: heads % tp == 0, and KV heads either split (kv % tp) or replicate
    (tp % kv); MLA keeps one latent per rank."""
    if model.num_attention_heads % tp:
        return False
    kv = model.num_kv_heads
    return model.is_mla or kv % tp == 0 or tp % kv == 0


def _model_rejection(model: ModelSpec, workload: Workload, seq_len: int) -> Rejection | None:
    floor = workload.constraints.min_params_b
    if floor is not None and model.params_b < floor:
        return Rejection(
            model.name,
            "*",
            None,
            None,
            "quality",
            f"{model.params_b:g}B parameters is below the quality floor of {floor:g}B (--min-params-b)",
        )
    if seq_len > model.max_context:
        return Rejection(
            model.name,
            "*",
            None,
            None,
            "context",
            f"needs {seq_len}-token sequences but the model's context is {model.max_context}",
        )
    return None


def make_plan(
    workload: Workload,
    catalog: CatalogSnapshot,
    *,
    params_for: ParamsLookup = calibrated_params,
    tp_sizes: Sequence[int] = TP_SIZES,
    simulate_top: int = SIMULATED_OPTIONS,
    executor: Executor | None = None,
) -> Plan:
    """Every candidate the constraints allow, evaluated; a pure function of the workload and the catalog.
    With an ``executor``, the sweep runs in model chunks on it (``_sweep.py``), with the same result."""
    plan = _sweep_and_rank(workload, catalog, params_for, tp_sizes, simulate_top, executor)
    budget = workload.budget_usd_month
    if (
        plan.options
        or budget is None
        or simulate_top <= 0
        or not any(r.stage == "budget" for r in plan.rejected)
    ):
        return plan
    # The budget left nothing. Its rejections carry the queueing approximation's replicas, which the simulation
    # that sizes a chosen option may raise: plan again without the budget, so the figure the error quotes is one
    # that a plan with that budget would accept.
    free = make_plan(
        workload.model_copy(update={"budget_usd_month": None}),
        catalog,
        params_for=params_for,
        tp_sizes=tp_sizes,
        simulate_top=simulate_top,
        executor=executor,
    )
    if not free.options:
        return plan
    best = min(free.options, key=lambda o: o.cost.usd_per_month)
    c = best.candidate
    usd = best.cost.usd_per_month
    reason = (
        f"{UNBUDGETED_BEST}: ${usd:,.0f}/month for {best.replicas} replica(s), over the ${budget:,.0f} budget"
    )
    extra = Rejection(c.model, c.gpu, c.tp, c.precision, "budget", reason, usd, best.replicas)
    return replace(plan, rejected=(*plan.rejected, extra))


def _sweep_and_rank(
    workload: Workload,
    catalog: CatalogSnapshot,
    params_for: ParamsLookup,
    tp_sizes: Sequence[int],
    simulate_top: int,
    executor: Executor | None,
) -> Plan:
    if executor is not None:
        from ._sweep import plan_in_chunks  # it builds on this module's internals

        return plan_in_chunks(
            workload, catalog, executor, params_for=params_for, tp_sizes=tp_sizes, simulate_top=simulate_top
        )
    constraints = workload.constraints
    models = {m.name: m for m in catalog.models}
    gpus = {g.name: g for g in catalog.accelerators}
    model_names = _pick(constraints.models, models, "model") if constraints.models else sorted(models)
    gpu_names = _pick(constraints.gpus, gpus, "gpu") if constraints.gpus else sorted(gpus)
    known_providers = {o.provider for o in catalog.offers}
    for provider in constraints.providers:
        if provider.casefold() not in {p.casefold() for p in known_providers}:
            raise UnknownNameError(
                "provider",
                provider,
                known_providers,
                hint=f"Known providers: {', '.join(sorted(known_providers))}.",
            )

    shape = request_shape(workload)
    seq_len = max_model_len(workload)
    mean_seq = shape.prompt_mean + shape.output_mean
    targets = workload.slo.targets()
    peak = workload.traffic.peak_qps
    avg = workload.traffic.avg_qps
    rejected: list[Rejection] = []
    options: list[PlanOption] = []
    evaluated = 0
    gpus_usable = 0
    costs: dict[tuple[str, int, int], CostEstimate | None] = {}
    contexts: dict[Candidate, ReplicaContext] = {}

    usable_models = []
    for name in model_names:
        rejection = _model_rejection(models[name], workload, seq_len)
        if rejection:
            rejected.append(rejection)
        else:
            usable_models.append(models[name])

    for gpu_name in gpu_names:
        gpu = gpus[gpu_name]
        offers = allowed_offers(
            catalog.offers, gpu_name, pricing=constraints.pricing, providers=constraints.providers
        )
        if not offers:
            where = f" from {', '.join(constraints.providers)}" if constraints.providers else ""
            rejected.append(
                Rejection(
                    "*",
                    gpu_name,
                    None,
                    None,
                    "price",
                    f"no {constraints.pricing} offer for {gpu_name}{where} in the catalog",
                )
            )
            continue
        precisions: list[Precision] = []
        for wanted in constraints.precisions:
            precision = serving_precision(gpu, wanted)
            reason = unsupported_reason(gpu, precision)
            if reason:
                rejected.append(Rejection("*", gpu_name, None, precision, "precision", reason))
            elif precision not in precisions:
                precisions.append(precision)
        gpus_usable += bool(precisions)
        largest_instance = max(o.gpu_count for o in offers)
        engine = default_engine_settings(gpu)
        for model in usable_models:
            for tp in tp_sizes:
                if tp > min(gpu.max_per_node, largest_instance) or not _valid_tp(model, tp):
                    continue
                cap = constraints.max_gpus
                if cap is not None and tp > cap:
                    rejected.append(
                        Rejection(
                            model.name,
                            gpu_name,
                            tp,
                            None,
                            "max_gpus",
                            f"one replica needs {tp} GPUs, over the cap of {cap} (--max-gpus)",
                        )
                    )
                    continue
                for precision in precisions:
                    evaluated += 1
                    option = _evaluate(
                        Candidate(model.name, model.hf_id, gpu_name, tp, precision, engine),
                        model,
                        gpu,
                        offers,
                        workload,
                        shape,
                        seq_len,
                        mean_seq,
                        targets,
                        peak,
                        avg,
                        params_for(gpu, precision),
                        rejected,
                        costs,
                        contexts,
                    )
                    if option is not None:
                        options.append(option)

    def size_cpu(
        candidate: Candidate,
        estimate: PerfEstimate,
        step: StepModel,
        memory: MemoryPlan,
        cpu_offers: tuple[CloudOffer, ...],
    ) -> PlanOption | None:
        contexts[candidate] = ReplicaContext(step, memory, cpu_offers)
        cpu_sizing = Sizing(workload, shape, targets, peak, avg, rejected, costs)
        return cpu_sizing.option(
            candidate, estimate, lambda qps: latency_at(estimate, step, shape, qps), cpu_offers
        )

    cpu_options, cpu_evaluated = sweep_cpus(  # CPU instances, same sizing and ranking (planner/_cpu.py)
        workload,
        catalog,
        usable_models,
        shape=shape,
        seq_len=seq_len,
        mean_seq=mean_seq,
        targets=targets,
        params=CPU_ANALYTICAL_PARAMS,
        rejected=rejected,
        size=size_cpu,
    )
    options.extend(cpu_options)
    evaluated += cpu_evaluated

    sizing = Sizing(workload, shape, targets, peak, avg, rejected, costs)
    ranked = refine_by_simulation(options, contexts, sizing, simulate_top)
    return Plan(
        schema_version=PLAN_SCHEMA_VERSION,
        workload=workload,
        peak_qps=peak,
        options=tuple(ranked),
        chosen=0 if ranked else None,
        rejected=tuple(rejected),
        assumptions=_assumptions(workload, seq_len),
        why=explain_choice(ranked, workload),
        candidates_evaluated=evaluated,
        models_usable=len(usable_models),
        gpus_usable=gpus_usable,
    )


def _evaluate(
    candidate: Candidate,
    model: ModelSpec,
    gpu: Accelerator,
    offers: Sequence[CloudOffer],
    workload: Workload,
    shape: RequestShape,
    seq_len: int,
    mean_seq: float,
    targets: dict[str, float],
    peak_qps: float,
    avg_qps: float,
    params: StepParams,
    rejected: list[Rejection],
    costs: dict[tuple[str, int, int], CostEstimate | None],
    contexts: dict[Candidate, ReplicaContext],
) -> PlanOption | None:
    def reject(
        stage: str, reason: str, usd_per_month: float | None = None, replicas: int | None = None
    ) -> None:
        c = candidate
        rejected.append(Rejection(c.model, c.gpu, c.tp, c.precision, stage, reason, usd_per_month, replicas))

    memory = memory_plan(
        model,
        gpu,
        candidate.tp,
        candidate.precision,
        candidate.engine,
        mean_seq_tokens=mean_seq,
        max_model_len=seq_len,
    )
    if not memory.fits:
        reject("memory", memory.reason)
        return None
    estimate, perf_rejection, step = estimate_replica(
        model,
        gpu,
        candidate.tp,
        candidate.precision,
        shape=shape,
        targets=targets,
        engine=candidate.engine,
        memory=memory,
        params=params,
    )
    if estimate is None:
        assert perf_rejection is not None
        c = candidate
        rejected.append(
            Rejection(
                c.model, c.gpu, c.tp, c.precision, "slo", perf_rejection.reason, misses=perf_rejection.misses
            )
        )
        return None
    contexts[candidate] = ReplicaContext(step, memory, tuple(offers))
    sizing = Sizing(workload, shape, targets, peak_qps, avg_qps, rejected, costs)
    return sizing.option(
        candidate, estimate, lambda qps: latency_at(estimate, step, shape, qps), tuple(offers)
    )


def _assumptions(workload: Workload, seq_len: int) -> tuple[str, ...]:
    traffic = workload.traffic
    c = workload.constraints
    lines = [
        f"traffic: {traffic.avg_qps:g} req/s on average, peak factor {traffic.peak_factor:g} -> "
        f"provisioned for {traffic.peak_qps:g} req/s (Poisson arrivals)",
        f"lengths: prompt {traffic.prompt_tokens.kind} mean {traffic.prompt_tokens.mean:g} tokens, "
        f"output {traffic.output_tokens.kind} mean {traffic.output_tokens.mean:g} tokens; "
        f"max-model-len {seq_len} (p99.9 prompt + p99.9 output)",
        f"precisions allowed: {', '.join(str(p) for p in c.precisions)} (4-bit formats are opt-in: --precision)",
        f"pricing: {c.pricing}, {'providers ' + ', '.join(c.providers) if c.providers else 'any provider'}; "
        "a month is 730 h; whole instances are rented",
        "engine: vLLM defaults per GPU (max_num_seqs, max_num_batched_tokens, gpu_memory_utilization 0.9, "
        "16-token KV blocks, 16-bit KV cache)",
        f"latency: roofline step model with vLLM efficiencies fitted on measured rows where the GPU has them "
        f"(else fitted on other GPUs); capacity of the {SIMULATED_OPTIONS} best options from the scheduler "
        "simulation (p95 of 600 Poisson requests), the rest from the queueing approximation",
    ]
    if c.min_params_b:
        lines.insert(
            3, f"quality floor: models with >= {c.min_params_b:g}B parameters (--min-params-b to change)"
        )
    if traffic.prefix_share:
        lines.append(f"prefix cache: {traffic.prefix_share:.0%} of prompt tokens skip prefill")
    if c.cpu or (c.cpu is None and not c.gpus):
        lines.append(cpu_assumption(CPU_ANALYTICAL_PARAMS))
    return tuple(lines)
