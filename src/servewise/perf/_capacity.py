"""Latency percentiles of one replica at an arrival rate, and the highest rate that still meets the SLO.

A first-version queueing approximation (issue #4 replaces it with the scheduler simulation). At a steady arrival rate
λ each engine step of mean length t̄ carries, on average, the work of λ·t̄ requests: d = λ(O−1)t̄ decode tokens and
λ·P_eff·t̄ prefill tokens (P_eff = prompt × (1 − prefix_share)). Every term of the step time is then linear in t̄:

    t̄ = max(λ t̄ F_r / C,  (W + λ t̄ B_r) / BW) + α₀ + λ t̄ a_r + o

with per-request FLOPs F_r, per-request KV bytes B_r, weight bytes W, and per-request all-reduce time a_r. The
fixed point of a max of two lines is the larger of the two lines' fixed points:

    t̄ = max( (α₀ + o) / (1 − λ(F_r/C + a_r)),  (W/BW + α₀ + o) / (1 − λ(B_r/BW + a_r)) )

and the replica saturates when either denominator reaches 0. (MoE weight traffic depends on the tokens per step, so
for MoE the fixed point is iterated a few times.) From t̄:

    ITL      two-point mixture: steps without a prefill chunk, and steps with one chunk of min(P_eff, budget − d)
             tokens, the latter a fraction q = min(1, λ t̄ ⌈P_eff / chunk⌉) of steps
    TTFT_x   = t_req + wait_x + ⌈P_eff,x / chunk⌉ · t_chunk, with t_req the per-request frontend overhead;
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
    "LatencyPercentiles",
    "LoadPoint",
    "RequestShape",
    "max_qps_under_slo",
    "saturation_qps",
    "steady_state",
]

_QUANTILES = (0.50, 0.90, 0.95, 0.99)


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


def _per_request(step: StepModel, shape: RequestShape) -> tuple[float, float, float, float, float, float]:
    """Tokens, sampled seqs, attention pairs, KV tokens read, prefill tokens and decode steps of one request."""
    prompt, out = shape.prompt_mean, shape.output_mean
    prefill = prompt * (1.0 - shape.prefix_share)
    cached = prompt - prefill
    decodes = max(out - 1.0, 0.0)
    decode_ctx = prompt + out / 2.0
    pairs = decodes * decode_ctx + prefill * (cached + prefill / 2.0)
    kv_read = decodes * decode_ctx + cached
    return prefill + decodes, 1.0 + decodes, pairs, kv_read, prefill, decodes


def _mean_step_s(step: StepModel, shape: RequestShape, qps: float) -> float:
    """t̄ at rate ``qps`` (closed form, a few iterations for MoE); ``inf`` past saturation."""
    tokens, sampled, pairs, kv_read, _, _ = _per_request(step, shape)
    flops_r = step.linear_flops_per_token * tokens + step.lm_head_flops_per_seq * sampled
    flops_r += step.attn_flops_per_pair * pairs
    compute_r = flops_r / step.flops_per_s
    kv_r = step.kv_bytes_per_token * (kv_read + tokens) / step.bytes_per_s
    fixed = step.allreduce_fixed_s + step.overhead_s
    comm_r = step.allreduce_s_per_token * tokens
    compute_den = 1.0 - qps * (compute_r + comm_r)
    memory_den = 1.0 - qps * (kv_r + comm_r)
    if compute_den <= 0.0 or memory_den <= 0.0:
        return math.inf
    step_s = fixed / compute_den
    for _ in range(8 if step.expert_route_fraction > 0 else 1):
        weights_s = (
            step.dense_weight_bytes + step.expert_weight_bytes * step.expert_fraction(qps * step_s * tokens)
        ) / step.bytes_per_s
        new = max(fixed / compute_den, (weights_s + fixed) / memory_den)
        if abs(new - step_s) <= 1e-9 + 1e-6 * new:
            return new
        step_s = new
    return step_s


def saturation_qps(step: StepModel, shape: RequestShape) -> float:
    """The arrival rate at which the step time diverges (throughput limit, ignoring SLOs and memory)."""
    tokens, sampled, pairs, kv_read, _, _ = _per_request(step, shape)
    flops_r = (
        step.linear_flops_per_token * tokens
        + step.lm_head_flops_per_seq * sampled
        + step.attn_flops_per_pair * pairs
    )
    comm_r = step.allreduce_s_per_token * tokens
    per_request_s = max(
        flops_r / step.flops_per_s, step.kv_bytes_per_token * (kv_read + tokens) / step.bytes_per_s
    )
    return 1.0 / (per_request_s + comm_r)


def _queue_wait_s(mean_wait_s: float, rho: float, q: float) -> float:
    if rho <= 0.0 or q <= 1.0 - rho:
        return 0.0
    return mean_wait_s / rho * math.log(rho / (1.0 - q))


def steady_state(
    step: StepModel, shape: RequestShape, engine: EngineSettings, qps: float, *, kv_capacity_tokens: int
) -> LoadPoint:
    """Latency percentiles of one replica receiving Poisson arrivals at ``qps``."""
    step_s = _mean_step_s(step, shape, qps)
    inf = LatencyPercentiles(math.inf, math.inf, math.inf, math.inf)
    if math.isinf(step_s):
        return LoadPoint(qps, step_s, inf, inf, inf, math.inf, 0.0, "throughput")
    prefill = shape.prompt_mean * (1.0 - shape.prefix_share)
    decode_ctx = shape.prompt_mean + shape.output_mean / 2.0
    decodes = qps * max(shape.output_mean - 1.0, 0.0) * step_s
    chunk_budget = max(engine.max_num_batched_tokens - decodes, 1.0)
    budget_rho = (decodes + qps * step_s * prefill) / engine.max_num_batched_tokens
    if budget_rho >= 1.0:
        return LoadPoint(qps, step_s, inf, inf, inf, math.inf, 0.0, "max_num_batched_tokens")

    def step_with_chunk(chunk: float, cached: float) -> float:
        return step.step_time_s(
            tokens=decodes + chunk,
            sampled_seqs=decodes + 1.0,
            attn_pairs=decodes * decode_ctx + chunk * (cached + chunk / 2.0),
            kv_read_tokens=decodes * decode_ctx + cached,
        )

    plain = step.step_time_s(
        tokens=decodes,
        sampled_seqs=decodes,
        attn_pairs=decodes * decode_ctx,
        kv_read_tokens=decodes * decode_ctx,
    )
    mean_chunk = min(prefill, chunk_budget)
    chunks_per_request = math.ceil(prefill / chunk_budget) if prefill > 0 else 1
    mixed = step_with_chunk(mean_chunk, shape.prompt_mean - prefill)
    prefill_step_share = min(1.0, qps * step_s * chunks_per_request)
    mean_wait = budget_rho * step_s / (2.0 * (1.0 - budget_rho))

    ttft, itl, e2e = [], [], []
    services: dict[float, float] = {}  # fixed lengths repeat one value at every quantile
    for q, prompt_q, output_q in zip(_QUANTILES, shape.prompt_q, shape.output_q, strict=True):
        itl_q = mixed if q > 1.0 - prefill_step_share else plain
        service = services.get(prompt_q, -1.0)
        if service < 0.0:
            prefill_q = prompt_q * (1.0 - shape.prefix_share)
            chunks = max(1, math.ceil(prefill_q / chunk_budget))
            service = services[prompt_q] = chunks * step_with_chunk(
                min(prefill_q, chunk_budget), prompt_q - prefill_q
            )
        ttft_q = step.request_overhead_s + q * step_s + _queue_wait_s(mean_wait, budget_rho, q) + service
        ttft.append(ttft_q)
        itl.append(itl_q)
        e2e.append(ttft_q + max(output_q - 1.0, 0.0) * step_s)

    ttft_mean = step.request_overhead_s + 0.5 * step_s + mean_wait + chunks_per_request * mixed
    e2e_mean = ttft_mean + max(shape.output_mean - 1.0, 0.0) * step_s
    running = qps * e2e_mean
    overload = ""
    if running > engine.max_num_seqs:
        overload = "max_num_seqs"
    elif running * decode_ctx > kv_capacity_tokens:
        overload = "kv_cache"

    def ms(values: list[float]) -> LatencyPercentiles:
        return LatencyPercentiles(*(v * 1000.0 for v in values))

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


def _violations(point: LoadPoint, targets: dict[str, float]) -> list[str]:
    """SLO fields (``ttft_p95_ms`` …) that ``point`` misses, plus the overload cause if any."""
    missed = [point.overload] if point.overload else []
    for name, target_ms in targets.items():
        metric, percentile, _ = name.split("_")
        if getattr(point, metric).at(percentile) > target_ms:
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
    saturation rate; the rate returned is always on the feasible side, so capacity is never overstated.

    Returns ``(qps, binding, point)``: ``binding`` lists what stops a higher rate; when even an idle replica misses
    the SLO, ``qps`` is 0 and ``point`` is the near-zero-load point, so callers can say by how much it misses.
    """
    idle = steady_state(step, shape, engine, 1e-9, kv_capacity_tokens=kv_capacity_tokens)
    missed = _violations(idle, targets)
    if missed:
        return 0.0, missed, idle
    high = saturation_qps(step, shape)
    low = 0.0
    binding: list[str] = ["throughput"]
    best = idle
    while high - low > rel_tol * max(high, 1e-9):
        mid = (low + high) / 2.0
        point = steady_state(step, shape, engine, mid, kv_capacity_tokens=kv_capacity_tokens)
        missed = _violations(point, targets)
        if missed:
            high, binding = mid, missed
        else:
            low, best = mid, point
    return low, binding, best
