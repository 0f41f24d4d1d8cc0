"""Latency percentiles of one replica at an arrival rate, and the highest rate that still meets the SLO.

A first-version queueing approximation (issue #4 replaces it with the scheduler simulation). At a steady arrival rate
λ each engine step of mean length t̄ carries, on average, the work of λ·t̄ requests: d = λ(O−1)t̄ decode tokens and
λ·P_eff·t̄ prefill tokens (P_eff = prompt × (1 − prefix_share)). Every term of the step time is then linear in t̄:

    t̄ = max(λ t̄ F_r / C,  (W + λ t̄ B_r) / BW) + α₀ + λ t̄ a_r + o

with per-request FLOPs F_r, per-request KV bytes B_r, weight bytes W, and per-request all-reduce time a_r. The
fixed point of a max of two lines is the larger of the two lines' fixed points:

    t̄ = max( (α₀ + o) / (1 − λ(F_r/C + a_r)),  (W/BW + α₀ + o) / (1 − λ(B_r/BW + a_r)) )

and the replica saturates when either denominator reaches 0. (MoE weight traffic depends on the tokens per step, so
for MoE the fixed point is iterated a few times; a step that runs has at least one token, so it reads at least the
top-k experts of every layer.) From t̄, with d = max(λ(O−1)t̄, 1) decodes in the step a request sees:

    ITL      two-point mixture: steps without a prefill chunk, and steps with one chunk of min(P_eff, budget − d)
             tokens, the latter a fraction q = min(1, λ t̄ ⌈P_eff / chunk⌉) of steps
    TTFT_x   = t_req + wait_x + Σ chunk steps, chunk = budget − ⌊d⌋ tokens (the last one smaller), each chunk
             attending to the cached prefix and the chunks before it; t_req is the per-request frontend overhead;
             wait_x = x·t̄ (the step in flight) + an M/D/1 queue on the token budget:
             ρ = (d + λ t̄ P_eff) / budget, W_q = ρ t̄ / (2(1 − ρ)), P(wait > w) ≈ ρ e^{−w ρ / W_q}
    E2E_x    = TTFT_x + (O_x − 1) · t̄
Percentiles of sums are taken as sums of percentiles (conservative). The replica is over capacity when the running
sequences λ·E2E exceed ``max_num_seqs`` or their KV (λ·E2E·(P + O/2) tokens) exceeds the KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._engine import EngineSettings
from ._roofline import StepModel

__all__ = [
    "QUANTILES",
    "LatencyPercentiles",
    "LoadPoint",
    "RequestShape",
    "SloCheck",
    "max_qps_under_slo",
    "saturation_qps",
    "slo_checks",
    "slo_value",
    "steady_state",
]

QUANTILES = (0.50, 0.90, 0.95, 0.99)
"""The percentiles every latency estimate reports."""
_PERCENTILE_INDEX = {"p50_ms": 0, "p90_ms": 1, "p95_ms": 2, "p99_ms": 3}


@dataclass(frozen=True, slots=True)
class RequestShape:
    """Request lengths (tokens) at the quantiles the model needs."""

    prompt_mean: float
    output_mean: float
    prompt_q: tuple[float, float, float, float]
    """Prompt tokens at p50, p90, p95, p99."""
    output_q: tuple[float, float, float, float]
    prefix_share: float = 0.0


@dataclass(frozen=True, slots=True)
class LatencyPercentiles:
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float

    def at(self, percentile: str) -> float:
        return float(getattr(self, f"{percentile}_ms"))


@dataclass(frozen=True, slots=True)
class LoadPoint:
    """One replica at arrival rate ``qps``; ``overload`` names what gives out when the rate is not sustainable."""

    qps: float
    step_s: float
    ttft: LatencyPercentiles
    itl: LatencyPercentiles
    e2e: LatencyPercentiles
    running_seqs: float
    output_tokens_per_s: float
    overload: str


@dataclass(frozen=True, slots=True)
class SloCheck:
    """One SLO target (``ttft_p95_ms`` …) against a prediction."""

    name: str
    target_ms: float
    predicted_ms: float
    met: bool


def slo_value(latencies: object, name: str) -> float:
    """The predicted value of SLO field ``name`` (``ttft_p95_ms``) on anything with ttft/itl/e2e percentiles."""
    metric, percentile, _ = name.split("_")
    percentiles: LatencyPercentiles = getattr(latencies, metric)
    return percentiles.at(percentile)


def slo_checks(latencies: object, targets: dict[str, float]) -> tuple[SloCheck, ...]:
    checks = []
    for name, target in targets.items():
        value = slo_value(latencies, name)
        checks.append(SloCheck(name, target, value, value <= target * (1 + 1e-9)))
    return tuple(checks)


@dataclass(frozen=True, slots=True)
class _RequestWork:
    """One request's share of the engine's work, summed over its prefill and decode steps."""

    tokens: float
    compute_s: float
    """FLOPs / effective FLOP/s."""
    kv_s: float
    """KV-cache bytes read and written / effective bandwidth."""
    comm_s: float
    """Tensor-parallel all-reduce time proportional to its tokens."""


def _request_work(step: StepModel, shape: RequestShape) -> _RequestWork:
    prompt, out = shape.prompt_mean, shape.output_mean
    prefill = prompt * (1.0 - shape.prefix_share)
    cached = prompt - prefill
    decodes = max(out - 1.0, 0.0)
    decode_ctx = _mean_decode_context(step, prompt, out)
    tokens = prefill + decodes
    pairs = decodes * decode_ctx + step.chunk_pairs(cached, prefill)
    kv_read = decodes * decode_ctx + step.context_tokens(cached)
    return _RequestWork(
        tokens=tokens,
        compute_s=step.compute_s(tokens, 1.0 + decodes, pairs),
        kv_s=step.kv_bytes_per_token * (kv_read + tokens) / step.bytes_per_s,
        comm_s=step.allreduce_s_per_token * tokens,
    )


def _mean_decode_context(step: StepModel, prompt: float, output: float) -> float:
    """Mean KV tokens a decode step reads for a request while its context grows from ``prompt`` by ``output``
    (``prompt + output/2`` without sliding-window layers): the pairs of a chunk of ``output`` tokens, per token."""
    if output <= 0.0:
        return step.context_tokens(prompt)
    return step.chunk_pairs(prompt, output) / output


def _mean_step_s(step: StepModel, work: _RequestWork, qps: float, prefill_steps: float = 1.0) -> float:
    """t̄ at rate ``qps``: the smallest fixed point of ``_step_of``; ``inf`` past saturation.

    Start from the closed form of the plain roofline (exact when γ = 0, the model has no prefill factor and
    prompt-carrying steps cost nothing extra — the analytical parameters); the fitted ones add terms that only
    lengthen a step, so that start is a lower bound and the fixed point is bracketed above it and bisected."""
    fixed = step.allreduce_fixed_s + step.overhead_s
    compute_den = 1.0 - qps * (work.compute_s + work.comm_s)
    memory_den = 1.0 - qps * (work.kv_s + work.comm_s)
    if compute_den <= 0.0 or memory_den <= 0.0 or qps >= saturation_from_work(step, work):
        return math.inf
    step_s = fixed / compute_den
    for _ in range(8 if step.expert_route_fraction > 0 else 1):
        tokens_per_step = max(qps * step_s * work.tokens, 1.0)
        weights = step.weight_bytes_per_step(tokens_per_step)
        new = max(fixed / compute_den, (weights / step.bytes_per_s + fixed) / memory_den)
        if abs(new - step_s) <= 1e-9 + 1e-6 * new:
            step_s = new
            break
        step_s = new
    if _step_of(step, work, qps, prefill_steps, step_s) <= step_s * (1.0 + 1e-9):
        return step_s
    low, high = step_s, step_s * 1.25
    while _step_of(step, work, qps, prefill_steps, high) > high:
        low, high = high, high * 1.25
        if high > _STEP_CAP_S:
            return math.inf
    while high - low > 1e-9 * high:
        mid = (low + high) / 2.0
        if _step_of(step, work, qps, prefill_steps, mid) > mid:
            low = mid
        else:
            high = mid
    return high


_STEP_CAP_S = 3600.0
"""A mean step longer than an hour is past saturation for any purpose here."""


def _step_of(step: StepModel, work: _RequestWork, qps: float, prefill_steps: float, step_s: float) -> float:
    """The mean step time implied by a mean step of ``step_s``: ``qps·step_s`` requests' work per step, of which a
    share q = min(1, qps·step_s·prefill_steps) of steps carry prompt tokens and pay the per-layer prefill overhead
    and the model's prefill factor (``StepModel.step_time_s``), with the overlap penalty γ on the shorter roof."""
    n = qps * step_s
    compute = n * work.compute_s
    weights = step.weight_bytes_per_step(max(n * work.tokens, 1.0))
    memory = weights / step.bytes_per_s + n * work.kv_s
    roof = max(compute, memory) + step.overlap_penalty * min(compute, memory)
    base = roof + n * work.comm_s + step.allreduce_fixed_s + step.overhead_s
    share = min(1.0, n * prefill_steps)
    factor = step.prefill_factor
    return base * (1.0 + share * (factor - 1.0)) + share * step.prefill_overhead_s * factor


def saturation_qps(step: StepModel, shape: RequestShape) -> float:
    """The arrival rate at which the step time diverges (throughput limit, ignoring SLOs and memory)."""
    return saturation_from_work(step, _request_work(step, shape))


def saturation_from_work(step: StepModel, work: _RequestWork) -> float:
    """1 / the seconds of one request's work at full batch: every step then carries prompt tokens (prefill factor),
    the longer roof plus γ of the shorter, and the all-reduce time."""
    longer, shorter = max(work.compute_s, work.kv_s), min(work.compute_s, work.kv_s)
    return 1.0 / ((longer + step.overlap_penalty * shorter + work.comm_s) * step.prefill_factor)


def _queue_wait_s(mean_wait_s: float, rho: float, q: float) -> float:
    if rho <= 0.0 or q <= 1.0 - rho:
        return 0.0
    return mean_wait_s / rho * math.log(rho / (1.0 - q))


def steady_state(
    step: StepModel, shape: RequestShape, engine: EngineSettings, qps: float, *, kv_capacity_tokens: int
) -> LoadPoint:
    """Latency percentiles of one replica receiving Poisson arrivals at ``qps``."""
    return _steady_state(step, shape, _request_work(step, shape), engine, qps, kv_capacity_tokens)


def _steady_state(
    step: StepModel,
    shape: RequestShape,
    work: _RequestWork,
    engine: EngineSettings,
    qps: float,
    kv_capacity_tokens: int,
    needed: frozenset[int] = frozenset(range(len(QUANTILES))),
) -> LoadPoint:
    """``needed`` are the indices into QUANTILES to compute; the others are reported as 0 (bisection only)."""
    budget = engine.max_num_batched_tokens
    prefill_steps = max(1.0, math.ceil(shape.prompt_mean * (1.0 - shape.prefix_share) / budget))
    step_s = _mean_step_s(step, work, qps, prefill_steps)
    inf = LatencyPercentiles(math.inf, math.inf, math.inf, math.inf)
    if math.isinf(step_s):
        return LoadPoint(qps, step_s, inf, inf, inf, math.inf, 0.0, "throughput")
    prefill = shape.prompt_mean * (1.0 - shape.prefix_share)
    decode_ctx = _mean_decode_context(step, shape.prompt_mean, shape.output_mean)
    mean_decodes = qps * max(shape.output_mean - 1.0, 0.0) * step_s
    budget_rho = (mean_decodes + qps * step_s * prefill) / budget
    if budget_rho >= 1.0:
        return LoadPoint(qps, step_s, inf, inf, inf, math.inf, 0.0, "max_num_batched_tokens")
    decodes = max(mean_decodes, 1.0)  # the step a request sees holds at least that request
    chunk_size = max(budget - math.floor(mean_decodes), 1)

    def step_with_chunk(chunk: float, cached: float) -> float:
        return step.step_time_s(
            tokens=decodes + chunk,
            sampled_seqs=decodes + 1.0,
            attn_pairs=decodes * decode_ctx + step.chunk_pairs(cached, chunk),
            kv_read_tokens=decodes * decode_ctx + step.context_tokens(cached),
        )

    def prefill_service_s(prompt_tokens: float) -> tuple[float, int]:
        """Seconds and steps to prefill one prompt, chunk by chunk after its cached prefix."""
        done = prompt_tokens * shape.prefix_share
        remaining = prompt_tokens - done
        total, steps = 0.0, 0
        while remaining > 1e-9 or steps == 0:
            chunk = min(remaining, chunk_size)
            total += step_with_chunk(chunk, done)
            done += chunk
            remaining -= chunk
            steps += 1
        return total, steps

    plain = step.step_time_s(
        tokens=decodes,
        sampled_seqs=decodes,
        attn_pairs=decodes * decode_ctx,
        kv_read_tokens=decodes * decode_ctx,
    )
    mean_service, chunks_per_request = prefill_service_s(shape.prompt_mean)
    mixed = step_with_chunk(min(prefill, chunk_size), shape.prompt_mean - prefill)
    prefill_step_share = min(1.0, qps * step_s * chunks_per_request)
    mean_wait = budget_rho * step_s / (2.0 * (1.0 - budget_rho))

    ttft, itl, e2e = [], [], []
    services: dict[float, float] = {shape.prompt_mean: mean_service}
    for index, (q, prompt_q, output_q) in enumerate(
        zip(QUANTILES, shape.prompt_q, shape.output_q, strict=True)
    ):
        if index not in needed:
            ttft.append(0.0)
            itl.append(0.0)
            e2e.append(0.0)
            continue
        itl_q = mixed if q > 1.0 - prefill_step_share else plain
        if prompt_q not in services:
            services[prompt_q] = prefill_service_s(prompt_q)[0]
        ttft_q = (
            step.request_overhead_s
            + q * step_s
            + _queue_wait_s(mean_wait, budget_rho, q)
            + services[prompt_q]
        )
        ttft.append(ttft_q)
        itl.append(itl_q)
        e2e.append(ttft_q + max(output_q - 1.0, 0.0) * step_s)

    ttft_mean = step.request_overhead_s + 0.5 * step_s + mean_wait + mean_service
    running = qps * (ttft_mean + max(shape.output_mean - 1.0, 0.0) * step_s)
    overload = ""
    if running > engine.max_num_seqs:
        overload = "max_num_seqs"
    elif running * (shape.prompt_mean + shape.output_mean / 2.0) > kv_capacity_tokens:
        overload = "kv_cache"

    def ms(v: list[float]) -> LatencyPercentiles:
        return LatencyPercentiles(v[0] * 1000.0, v[1] * 1000.0, v[2] * 1000.0, v[3] * 1000.0)

    return LoadPoint(
        qps=qps,
        step_s=step_s,
        ttft=ms(ttft),
        itl=ms(itl),
        e2e=ms(e2e),
        running_seqs=running,
        output_tokens_per_s=qps * shape.output_mean,
        overload=overload,
    )


def _violations(point: LoadPoint, targets: list[tuple[str, str, str, float]]) -> list[str]:
    """SLO fields (``ttft_p95_ms`` …) that ``point`` misses, after the overload cause if any. ``targets`` holds
    (name, metric, percentile field, target) so the bisection's inner loop builds no objects."""
    missed = [point.overload] if point.overload else []
    for name, metric, field, target in targets:
        if getattr(getattr(point, metric), field) > target * (1 + 1e-9):
            missed.append(name)
    return missed


def max_qps_under_slo(
    step: StepModel,
    shape: RequestShape,
    engine: EngineSettings,
    targets: dict[str, float],
    *,
    kv_capacity_tokens: int,
    rel_tol: float = 5e-3,
) -> tuple[float, list[str], LoadPoint]:
    """Highest arrival rate meeting every target, by bisection (latency grows with load) to ``rel_tol`` of the
    answer; the rate returned is always on the feasible side, so capacity is never overstated.

    Returns ``(qps, binding, point)``: ``binding`` lists what stops a higher rate; when even an idle replica misses
    the SLO, ``qps`` is 0 and ``point`` is the near-zero-load point, so callers can say by how much it misses.
    """
    work = _request_work(step, shape)
    checks: list[tuple[str, str, str, float]] = []
    for name, target in targets.items():
        metric, percentile, _ = name.split("_")
        checks.append((name, metric, f"{percentile}_ms", target))
    needed = frozenset(_PERCENTILE_INDEX[field] for _, _, field, _ in checks)
    idle = _steady_state(step, shape, work, engine, 1e-9, kv_capacity_tokens)
    missed = _violations(idle, checks)
    if missed:
        return 0.0, missed, idle
    high = saturation_qps(step, shape)
    low = 0.0
    binding: list[str] = ["throughput"]
    best = idle
    while high - low > rel_tol * max(low, 1e-3 * high):
        mid = (low + high) / 2.0
        point = _steady_state(step, shape, work, engine, mid, kv_capacity_tokens, needed)
        missed = _violations(point, checks)
        if missed:
            high, binding = mid, missed
        else:
            low, best = mid, point
    if best is not idle:  # the loop computed only the targeted percentiles; report all of them
        best = _steady_state(step, shape, work, engine, low, kv_capacity_tokens)
    return low, binding, best
