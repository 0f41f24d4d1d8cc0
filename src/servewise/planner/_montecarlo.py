"""Monte Carlo over what a plan cannot know: the real traffic, the real request lengths, next quarter's prices.

For each of the plan's top-k options, with its replicas fixed as planned, each sample draws (independently, with
common random numbers across options so their risks compare fairly):

    avg QPS      q  = qps · exp(σ_q Z₁)                     lognormal, median = the workload's qps
    lengths      P̄' = P̄ · exp(σ_l Z₂),  Ō' = Ō · exp(σ_l Z₃)  every quantile scales with its mean (capped at
                                                            max_tokens), as for fixed, exponential, lognormal
    price        m  = exp(σ_p Z₄)                           lognormal multiplier, median 1
    load         λ  = q · peak_factor / replicas · s        per replica, at peak

and asks: does the replica meet every SLO target at λ with the sampled lengths (the queueing approximation of
``perf/_capacity.py``: percentiles and overload), and is ``m · $/month`` over the budget?

    P(SLO met) = share of samples meeting every target;  P(over budget) = share with m·C > B
    (closed form for the latter: 1 − Φ(ln(B/C)/σ_p), which the tests check the estimate against)

Why the load scale ``s``: an option sized by the scheduler simulation has a capacity C_sim that the queueing formula
(capacity C_an) does not reproduce, so the formula is evaluated at the same *share of capacity*, s = C_an / C_sim:
at the planned inputs every option meets its SLO as the plan says, and the formula only says how latency moves
with load and lengths around that point. (A simulation per sample would cost ~20 ms × samples × options.)

Determinism: samples come in fixed chunks of ``SAMPLES_PER_CHUNK``; chunk j draws from
``SeedSequence(seed, spawn_key=(j,))``, so results depend on the seed alone, never on the executor or how many
workers ran the chunks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from servewise.catalog import CatalogSnapshot
from servewise.errors import UsageError
from servewise.perf import (
    QUANTILES,
    EngineSettings,
    RequestShape,
    StepModel,
    max_qps_under_slo,
    slo_value,
    steady_state,
)
from servewise.workload import LengthDistribution, Workload

from ._executor import Executor, InProcessExecutor
from ._plan import Plan, PlanOption
from ._rank import require_feasible
from ._search import ParamsLookup, calibrated_params, request_shape
from ._sweep import step_model_for

__all__ = [
    "SAMPLES_PER_CHUNK",
    "MonteCarloResult",
    "OptionRisk",
    "Uncertainty",
    "monte_carlo",
]

SAMPLES_PER_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Spreads of the uncertain inputs, as σ of the natural log (0.25 ≈ ±25 % at one σ). The defaults are
    assumptions, not measurements: every one is a flag and is printed with the result."""

    qps_sigma: float = 0.25
    length_sigma: float = 0.10
    price_sigma: float = 0.10

    def check(self) -> None:
        for name, flag in (
            ("qps_sigma", "--qps-sigma"),
            ("length_sigma", "--length-sigma"),
            ("price_sigma", "--price-sigma"),
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 3.0):
                raise UsageError(f"{flag}: must be between 0 and 3 (σ of the log), got {value:g}")


@dataclass(frozen=True, slots=True)
class OptionRisk:
    """One plan option under uncertainty."""

    rank: int
    label: str
    replicas: int
    gpus_total: int
    usd_per_month: float
    """As planned (price multiplier 1)."""
    p_slo_met: float
    p_over_budget: float | None
    """None without a budget."""
    usd_per_month_p50: float
    usd_per_month_p95: float
    misses: tuple[tuple[str, float], ...]
    """(target or overload cause, share of samples missing it), most frequent first."""
    load_scale: float
    """C_an / C_plan: the share-of-capacity mapping for simulated options (1 for analytical ones)."""


@dataclass(frozen=True, slots=True)
class MonteCarloResult:
    samples: int
    seed: int
    uncertainty: Uncertainty
    budget_usd_month: float | None
    options: tuple[OptionRisk, ...]
    executor: str


@dataclass(frozen=True, slots=True)
class _OptionModel:
    step: StepModel
    engine: EngineSettings
    kv_capacity_tokens: int
    replicas: int
    usd_per_month: float
    load_scale: float


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What every chunk needs: plain, picklable data (it travels to Ray workers once)."""

    seed: int
    uncertainty: Uncertainty
    avg_qps: float
    peak_factor: float
    prompt: tuple[float, tuple[float, ...], float]
    """(mean, uncapped quantiles at QUANTILES, cap or inf)."""
    output: tuple[float, tuple[float, ...], float]
    prefix_share: float
    targets: tuple[tuple[str, float], ...]
    budget_usd_month: float | None
    options: tuple[_OptionModel, ...]


@dataclass(frozen=True, slots=True)
class _ChunkResult:
    met: np.ndarray
    """bool [options, samples]"""
    usd_per_month: np.ndarray
    """float [options, samples]"""
    misses: tuple[dict[str, int], ...]


def _length_profile(dist: LengthDistribution) -> tuple[float, tuple[float, ...], float]:
    uncapped = dist.model_copy(update={"max_tokens": None})
    cap = float(dist.max_tokens) if dist.max_tokens is not None else math.inf
    return dist.mean, tuple(uncapped.quantile(q) for q in QUANTILES), cap


def _scaled(
    profile: tuple[float, tuple[float, ...], float], factor: float
) -> tuple[float, tuple[float, ...]]:
    mean, quantiles, cap = profile
    return mean * factor, tuple(min(q * factor, cap) for q in quantiles)


def _run_chunk(inputs: _Inputs, chunk: tuple[int, int]) -> _ChunkResult:
    """Samples ``chunk = (index, count)``; a pure function of the inputs and the chunk index."""
    index, count = chunk
    rng = np.random.default_rng(np.random.SeedSequence(inputs.seed, spawn_key=(index,)))
    z = rng.standard_normal((count, 4))
    u = inputs.uncertainty
    qps = inputs.avg_qps * np.exp(u.qps_sigma * z[:, 0])
    prompt_factor = np.exp(u.length_sigma * z[:, 1])
    output_factor = np.exp(u.length_sigma * z[:, 2])
    price = np.exp(u.price_sigma * z[:, 3])
    k = len(inputs.options)
    met = np.zeros((k, count), dtype=bool)
    misses: list[Counter[str]] = [Counter() for _ in range(k)]
    for s in range(count):
        prompt_mean, prompt_q = _scaled(inputs.prompt, float(prompt_factor[s]))
        output_mean, output_q = _scaled(inputs.output, float(output_factor[s]))
        shape = RequestShape(
            prompt_mean,
            output_mean,
            prompt_q,  # type: ignore[arg-type]
            output_q,  # type: ignore[arg-type]
            inputs.prefix_share,
        )
        peak = float(qps[s]) * inputs.peak_factor
        for i, option in enumerate(inputs.options):
            load = peak / option.replicas * option.load_scale
            point = steady_state(
                option.step, shape, option.engine, load, kv_capacity_tokens=option.kv_capacity_tokens
            )
            missed = [point.overload] if point.overload else []
            missed += [
                name for name, target in inputs.targets if slo_value(point, name) > target * (1 + 1e-9)
            ]
            met[i, s] = not missed
            misses[i].update(missed)
    cost = np.array([o.usd_per_month for o in inputs.options])[:, None] * price[None, :]
    return _ChunkResult(met, cost, tuple(dict(m) for m in misses))


def _option_model(
    option: PlanOption, workload: Workload, catalog: CatalogSnapshot, params_for: ParamsLookup
) -> _OptionModel:
    step = step_model_for(option, catalog, params_for)
    kv = option.perf.memory.kv_capacity_tokens
    scale = 1.0
    if option.perf.capacity_method == "simulated":
        analytical, _, _ = max_qps_under_slo(
            step, request_shape(workload), option.perf.engine, workload.slo.targets(), kv_capacity_tokens=kv
        )
        scale = analytical / option.perf.max_qps_per_replica
    return _OptionModel(step, option.perf.engine, kv, option.replicas, option.cost.usd_per_month, scale)


def chunks_for(samples: int) -> list[tuple[int, int]]:
    """(index, count) of each chunk: fixed size, so the seed alone decides every sample."""
    return [
        (j, min(SAMPLES_PER_CHUNK, samples - j * SAMPLES_PER_CHUNK))
        for j in range(math.ceil(samples / SAMPLES_PER_CHUNK))
    ]


def monte_carlo(
    plan: Plan,
    catalog: CatalogSnapshot,
    *,
    samples: int = 1000,
    top_k: int = 5,
    seed: int = 0,
    uncertainty: Uncertainty | None = None,
    executor: Executor | None = None,
    params_for: ParamsLookup = calibrated_params,
    on_done: Callable[[int], None] | None = None,
) -> MonteCarloResult:
    """Risk of the plan's ``top_k`` best options; ``on_done(n)`` reports chunks of ``SAMPLES_PER_CHUNK`` done."""
    uncertainty = uncertainty or Uncertainty()
    uncertainty.check()
    if samples < 1:
        raise UsageError(f"--samples: must be at least 1, got {samples}")
    if top_k < 1:
        raise UsageError(f"--top-k: must be at least 1, got {top_k}")
    require_feasible(plan)
    workload = plan.workload
    chosen: Sequence[PlanOption] = plan.options[:top_k]
    inputs = _Inputs(
        seed=seed,
        uncertainty=uncertainty,
        avg_qps=workload.traffic.avg_qps,
        peak_factor=workload.traffic.peak_factor,
        prompt=_length_profile(workload.traffic.prompt_tokens),
        output=_length_profile(workload.traffic.output_tokens),
        prefix_share=workload.traffic.prefix_share,
        targets=tuple(workload.slo.targets().items()),
        budget_usd_month=workload.budget_usd_month,
        options=tuple(_option_model(o, workload, catalog, params_for) for o in chosen),
    )
    runner = executor or InProcessExecutor()
    results = runner.map(_run_chunk, inputs, chunks_for(samples), on_done=on_done)
    met = np.concatenate([r.met for r in results], axis=1)
    cost = np.concatenate([r.usd_per_month for r in results], axis=1)
    budget = workload.budget_usd_month
    risks = []
    for i, option in enumerate(chosen):
        missed: Counter[str] = Counter()
        for r in results:
            missed.update(r.misses[i])
        risks.append(
            OptionRisk(
                rank=option.rank,
                label=option.candidate.label(),
                replicas=option.replicas,
                gpus_total=option.gpus_total,
                usd_per_month=option.cost.usd_per_month,
                p_slo_met=float(met[i].mean()),
                p_over_budget=None if budget is None else float((cost[i] > budget).mean()),
                usd_per_month_p50=float(np.quantile(cost[i], 0.50)),
                usd_per_month_p95=float(np.quantile(cost[i], 0.95)),
                misses=tuple((name, n / samples) for name, n in missed.most_common()),
                load_scale=inputs.options[i].load_scale,
            )
        )
    return MonteCarloResult(samples, seed, uncertainty, budget, tuple(risks), runner.name)
