"""Replicas, GPU cap, price and budget for a replica's estimate, and the re-sizing of the best-ranked options by
the scheduler simulation: the second half of ``make_plan`` (``_search.py`` enumerates and estimates; ``_sweep.py``
runs the same sizing after a chunked sweep).

    replicas = ⌈peak_qps / max_qps_per_replica⌉,   gpus_total = replicas × tp
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from servewise.catalog import CloudOffer
from servewise.cost import CostEstimate, cheapest_rental
from servewise.perf import (
    MemoryPlan,
    PerfEstimate,
    RequestShape,
    SimEngine,
    StepModel,
    sampled_lengths,
    simulated_max_qps,
    simulated_point,
    slo_checks,
)
from servewise.workload import Workload

from ._plan import Candidate, PlanOption, Rejection
from ._rank import rank_options

__all__ = ["ReplicaContext", "Sizing", "refine_by_simulation"]

_MAX_SIMULATIONS = 25
"""Simulations one plan may run while re-ranking (each ~0.1 s): the top options settle long before."""


@dataclass(frozen=True, slots=True)
class ReplicaContext:
    """What re-sizing an option by simulation needs, kept from its analytical evaluation."""

    step: StepModel
    memory: MemoryPlan
    offers: tuple[CloudOffer, ...]


@dataclass(frozen=True, slots=True)
class Sizing:
    """Replicas, GPU cap, price and budget for a replica estimate: shared by the analytical and simulated passes."""

    workload: Workload
    shape: RequestShape
    targets: dict[str, float]
    peak_qps: float
    avg_qps: float
    rejected: list[Rejection]
    costs: dict[tuple[str, int, int], CostEstimate | None]

    def option(
        self,
        candidate: Candidate,
        estimate: PerfEstimate,
        at_load: Callable[[float], PerfEstimate],
        offers: Sequence[CloudOffer],
    ) -> PlanOption | None:
        def reject(
            stage: str, reason: str, usd_per_month: float | None = None, replicas: int | None = None
        ) -> None:
            c = candidate
            self.rejected.append(
                Rejection(c.model, c.gpu, c.tp, c.precision, stage, reason, usd_per_month, replicas)
            )

        replicas = max(1, math.ceil(self.peak_qps / estimate.max_qps_per_replica - 1e-9))
        gpus_total = 0 if candidate.cpu is not None else replicas * candidate.tp  # a CPU replica has no GPU
        cap = self.workload.constraints.max_gpus
        if cap is not None and gpus_total > cap:
            reject(
                "max_gpus",
                f"meets the SLO but needs {replicas} replicas = {gpus_total} GPUs, over the cap of {cap} "
                "(--max-gpus)",
                replicas=replicas,
            )
            return None
        cost_key = (candidate.gpu, candidate.tp, replicas)
        if cost_key not in self.costs:  # many models share a GPU, TP and replica count: price each once
            self.costs[cost_key] = cheapest_rental(
                offers,
                tp=candidate.tp,
                replicas=replicas,
                pricing=self.workload.constraints.pricing,
                avg_output_tokens_per_s=self.avg_qps * self.shape.output_mean,
                avg_tokens_per_s=self.avg_qps * (self.shape.output_mean + self.shape.prompt_mean),
            )
        cost = self.costs[cost_key]
        if cost is None:
            reject("price", f"no offer has {candidate.tp} {candidate.gpu} GPUs in one instance")
            return None
        budget = self.workload.budget_usd_month
        if budget is not None and cost.usd_per_month > budget:
            reject(
                "budget",
                f"${cost.usd_per_month:,.0f}/month for {replicas} replica(s) is over the ${budget:,.0f} budget",
                cost.usd_per_month,
                replicas,
            )
            return None
        planned = at_load(self.peak_qps / replicas)
        return PlanOption(
            rank=0,
            candidate=candidate,
            replicas=replicas,
            gpus_total=gpus_total,
            perf=planned,
            cost=cost,
            slo=slo_checks(planned, self.targets),
            within_budget=budget is None or cost.usd_per_month <= budget,
        )


def refine_by_simulation(
    options: list[PlanOption], contexts: dict[Candidate, ReplicaContext], sizing: Sizing, top: int
) -> list[PlanOption]:
    """Re-size the best-ranked options with simulated capacity, re-rank, and repeat until the ``top`` best are all
    simulated (or the simulation budget is spent): the chosen option always rests on the simulation."""
    priority = sizing.workload.priority
    ranked = rank_options(options, priority)
    simulated: set[Candidate] = set()
    for _ in range(_MAX_SIMULATIONS):
        pending = [o for o in ranked[:top] if o.candidate not in simulated]
        if not pending:
            break
        option = pending[0]
        simulated.add(option.candidate)
        replacement = _simulated_option(option, contexts[option.candidate], sizing)
        options = [o for o in options if o.candidate != option.candidate]
        if replacement is not None:
            options.append(replacement)
        ranked = rank_options(options, priority)
    return ranked


def _lengths(workload: Workload) -> sampled_lengths:
    prompt, output = workload.traffic.prompt_tokens, workload.traffic.output_tokens

    def clamp(q: float) -> float:
        return min(max(q, 1e-6), 1 - 1e-6)

    return sampled_lengths(lambda u: prompt.quantile(clamp(u)), lambda u: output.quantile(clamp(u)))


def _simulated_option(option: PlanOption, context: ReplicaContext, sizing: Sizing) -> PlanOption | None:
    candidate = option.candidate
    engine = candidate.engine
    sim_engine = SimEngine(
        engine.max_num_seqs,
        engine.max_num_batched_tokens,
        max(1, context.memory.kv_capacity_tokens // engine.block_size_tokens),
        engine.block_size_tokens,
    )
    lengths = _lengths(sizing.workload)
    hit = sizing.workload.traffic.prefix_share
    qps, binding, point = simulated_max_qps(
        context.step,
        sim_engine,
        lengths,
        sizing.targets,
        start_qps=option.perf.max_qps_per_replica,
        shape_key=(sizing.shape, context.memory.max_model_len),
        prefix_hit_ratio=hit,
    )
    if qps <= 0 or point is None:
        c = candidate
        sizing.rejected.append(
            Rejection(
                c.model,
                c.gpu,
                c.tp,
                c.precision,
                "slo",
                f"the scheduler simulation misses {', '.join(binding)} even at "
                f"{option.perf.max_qps_per_replica / 50:.3g} req/s per replica",
            )
        )
        return None
    estimate = dataclasses.replace(
        option.perf,
        max_qps_per_replica=qps,
        binding=binding,
        capacity_method="simulated",
    )

    def at_load(rate: float) -> PerfEstimate:
        at = simulated_point(context.step, sim_engine, lengths, rate, prefix_hit_ratio=hit)
        return dataclasses.replace(
            estimate,
            qps_per_replica=rate,
            ttft=at.ttft,
            itl=at.itl,
            e2e=at.e2e,
            output_tokens_per_s=at.output_tokens_per_s,
        )

    return sizing.option(candidate, estimate, at_load, context.offers)
