"""Analytical step model of a CPU replica (vLLM CPU backend / llama.cpp style): small quantised models on CPUs.

Why a separate model and not ``build_step_model``: a CPU instance is a slice of a socket, with one memory pool
(host DRAM, shared by weights and KV cache), no tensor parallelism, and matrix units (Intel AMX) that only pay off
on large matrices. The result is the same ``StepModel`` the GPU path uses, so the capacity search and the
queueing approximation (``perf/_capacity.py``) apply unchanged, and every estimate says ``provenance =
analytical``: there are no measured CPU rows to calibrate on.

Per step of T tokens (decodes + prefill chunk tokens), S sequences sampled, ``pairs`` attention pairs:

    bytes   = W − V·H·2  +  kv · (pairs_read + T)        W = weight_bytes(model, precision); the input embedding
                                                          is a table lookup, not streamed
    FLOPs   = 2·P_lin·T + 2·V·H·S + 4·L·A·pairs           P_lin = active params − embedding and LM head
    t       = max(FLOPs / (peak · e_c), bytes / (BW · e_b)) + t_step

so decode (T = batch, tiny FLOPs) is bandwidth-bound — one token of a 1B int4 model reads ~0.9 GB of weights —
and prefill (T = hundreds of tokens) is compute-bound on the AMX peak. ``peak`` is ``bf16_tflops`` of the
instance for bf16 and for int4 (weight-only int4: weights are dequantised to bf16 tiles, as IPEX's weight-only
quantisation does by default); MoE weights are streamed as on a GPU (``routed_expert_bytes``, top-k of E).

Memory (one pool, GB = 10⁹ bytes; the catalog's host RAM is AWS GiB, read as GB, which understates it by 7 %):

    budget   = host_memory_gb × memory_utilization
    kv_cache = budget − W − activation − reserve_gb
    kv_tokens, max_seqs as in ``perf/_memory.py`` (16-token blocks, bf16 KV cache)

Analytical defaults (``CPU_ANALYTICAL_PARAMS``; all assumptions, printed by the planner, flags on ``plan``):
    bandwidth_efficiency  0.50  of the instance's DRAM share reached by decode GEMV kernels. Users report ~35 GB/s
                                sustained for llama.cpp on dual-channel DDR5-6000 (96 GB/s peak, i.e. ~0.36); a
                                partial-socket VM may also borrow idle neighbours' bandwidth. See docs/cpu.md.
    compute_efficiency    0.20  of the AMX peak in prefill: AMX only wins on large matrices (llama.cpp falls back
                                to AVX-512 below a size threshold; its AMX build helps prompt processing above
                                ~256 tokens), and attention, norms and sampling run on AVX-512.
    step_overhead_s       2 ms  per engine step: Python scheduling plus per-layer thread barriers (OpenMP).
    request_overhead_s    5 ms  per request on TTFT (HTTP, tokenisation), as on GPUs.
    memory_utilization    0.90  of host RAM for weights + activations + KV (vLLM's VLLM_CPU_KVCACHE_SPACE is set
                                explicitly in practice; this is the sizing it would get).
    reserve_gb            2.0   OS, Python runtime and the engine's own allocations.
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.catalog import CpuSpec, ModelSpec
from servewise.types import Precision, Provenance

from ._capacity import RequestShape
from ._engine import EngineSettings
from ._estimate import PerfEstimate, PerfRejection, estimate_on_step
from ._memory import MemoryPlan, embedding_params, routed_expert_bytes, settle_memory, weight_bytes
from ._roofline import StepModel

__all__ = [
    "CPU_ANALYTICAL_PARAMS",
    "CPU_ENGINE",
    "CpuParams",
    "build_cpu_step_model",
    "cpu_memory_plan",
    "cpu_serving_precision",
    "cpu_unsupported_reason",
    "estimate_cpu_replica",
]

_GB = 1e9


@dataclass(frozen=True, slots=True)
class CpuParams:
    """Efficiencies and overheads of a CPU replica; every field is an assumption (see the module docstring)."""

    bandwidth_efficiency: float = 0.50
    compute_efficiency: float = 0.20
    step_overhead_s: float = 2e-3
    request_overhead_s: float = 5e-3
    memory_utilization: float = 0.90
    reserve_gb: float = 2.0
    provenance: Provenance = Provenance.analytical
    basis: str = "CPU analytical model (DRAM share x efficiency, AMX peak x efficiency; see docs/cpu.md)"

    def __post_init__(self) -> None:
        for name in ("bandwidth_efficiency", "compute_efficiency", "memory_utilization"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"CPU {name.replace('_', ' ')} must be in (0, 1], got {value:g}")
        if self.step_overhead_s < 0 or self.request_overhead_s < 0 or self.reserve_gb < 0:
            raise ValueError("CPU overheads and reserve must be >= 0")


CPU_ANALYTICAL_PARAMS = CpuParams()

CPU_ENGINE = EngineSettings(max_num_seqs=256, max_num_batched_tokens=2048, gpu_memory_utilization=0.90)
"""Engine knobs of a CPU replica: vLLM's defaults for devices under 70 GiB (``perf/_engine.py``); the memory
share is ``CpuParams.memory_utilization`` of host RAM."""


def cpu_serving_precision(precision: Precision) -> Precision:
    """16-bit weights run as bf16 on CPUs (vLLM's CPU backend casts fp16 to bf16)."""
    return Precision.bf16 if precision is Precision.fp16 else precision


def cpu_unsupported_reason(cpu: CpuSpec, precision: Precision) -> str | None:
    """Why ``cpu`` cannot serve ``precision`` (one line), or None when it can."""
    precision = cpu_serving_precision(precision)
    if precision in (Precision.fp8, Precision.fp4):
        return (
            f"no {precision} matrix units on {cpu.cpu_model} ({cpu.instance_type}); CPUs serve bf16 or int4"
        )
    if cpu.bf16_tflops is None:
        return f"{cpu.instance_type} has no bf16 matrix throughput in the catalog"
    return None


def _attention_width(model: ModelSpec) -> float:
    if model.head_dim:
        return float(model.num_attention_heads * model.head_dim)
    if model.is_mla:
        return model.num_attention_heads * model.kv_bytes_per_token_fp16 / (2 * model.num_layers)
    return float(model.hidden_size)


def build_cpu_step_model(
    model: ModelSpec, cpu: CpuSpec, precision: Precision, params: CpuParams = CPU_ANALYTICAL_PARAMS
) -> StepModel:
    """Coefficients of one CPU replica (the module formula); raises ValueError for an unsupported precision."""
    reason = cpu_unsupported_reason(cpu, precision)
    if reason:
        raise ValueError(reason)
    precision = cpu_serving_precision(precision)
    assert cpu.bf16_tflops is not None  # checked by cpu_unsupported_reason
    embed = embedding_params(model)
    active = model.active_params_b * 1e9
    linear_params = max(active - embed, 0.1 * active)
    expert_bytes = routed_expert_bytes(model, precision)
    route = 0.0
    if expert_bytes and model.moe_top_k and model.moe_num_experts:
        route = model.moe_top_k / model.moe_num_experts
    input_embedding_bytes = model.vocab_size * model.hidden_size * 2.0
    peak = cpu.bf16_tflops * 1e12
    bandwidth = cpu.memory_bw_gbps * _GB
    return StepModel(
        linear_flops_per_token=2.0 * linear_params,
        lm_head_flops_per_seq=2.0 * model.vocab_size * model.hidden_size,
        attn_flops_per_pair=4.0 * model.num_layers * _attention_width(model),
        dense_weight_bytes=max(weight_bytes(model, precision) - expert_bytes - input_embedding_bytes, 0.0),
        expert_weight_bytes=expert_bytes,
        expert_route_fraction=route,
        kv_bytes_per_token=float(model.kv_bytes_per_token_fp16),
        flops_per_s=peak * params.compute_efficiency,
        bytes_per_s=bandwidth * params.bandwidth_efficiency,
        allreduce_fixed_s=0.0,
        allreduce_s_per_token=0.0,
        overhead_s=params.step_overhead_s,
        request_overhead_s=params.request_overhead_s,
        layers=model.num_layers,
        peak_flops_per_s=peak,
        peak_bytes_per_s=bandwidth,
        window_tokens=float(model.sliding_window_tokens or 0),
        window_share=model.sliding_share,
    )


def _activation_bytes(model: ModelSpec, engine: EngineSettings) -> float:
    """The engine's largest step of hidden states plus fp32 logits (as ``perf/_memory.py``, tp = 1)."""
    if model.is_moe and model.moe_intermediate_size and model.moe_top_k:
        per_token_intermediate = model.moe_intermediate_size * model.moe_top_k
    else:
        per_token_intermediate = model.intermediate_size or 4 * model.hidden_size
    hidden = engine.max_num_batched_tokens * (2 * per_token_intermediate + 4 * model.hidden_size) * 2
    return hidden + engine.max_num_seqs * model.vocab_size * 4


def cpu_memory_plan(
    model: ModelSpec,
    cpu: CpuSpec,
    host_memory_gb: float,
    precision: Precision,
    *,
    mean_seq_tokens: float,
    max_model_len: int,
    engine: EngineSettings = CPU_ENGINE,
    params: CpuParams = CPU_ANALYTICAL_PARAMS,
) -> MemoryPlan:
    """Host memory of one CPU replica: weights, activations, reserve and the KV cache left over."""
    precision = cpu_serving_precision(precision)
    budget = host_memory_gb * _GB * params.memory_utilization
    weights = weight_bytes(model, precision)
    activation = _activation_bytes(model, engine)
    reserve = params.reserve_gb * _GB
    where = f"{cpu.instance_type} ({host_memory_gb:g} GB RAM)"
    return settle_memory(
        budget=budget,
        weights=weights,
        activation=activation,
        reserve=reserve,
        per_token=float(model.kv_bytes_per_token_fp16),
        engine=engine,
        mean_seq_tokens=mean_seq_tokens,
        max_model_len=max_model_len,
        where=where,
        per="",
        too_heavy=(
            f"weights need {weights / _GB:.1f} GB at {precision} but {where} has {budget / _GB:.1f} GB usable "
            f"({params.memory_utilization:g} of RAM)"
        ),
    )


def estimate_cpu_replica(
    model: ModelSpec,
    cpu: CpuSpec,
    precision: Precision,
    *,
    shape: RequestShape,
    targets: dict[str, float],
    memory: MemoryPlan,
    engine: EngineSettings = CPU_ENGINE,
    params: CpuParams = CPU_ANALYTICAL_PARAMS,
) -> tuple[PerfEstimate | None, PerfRejection | None, StepModel]:
    """Capacity of one CPU replica under the SLO (queueing approximation); exactly one of estimate and rejection
    is set. The rejection says by how much an idle replica misses, e.g. ``itl_p95_ms 74 > 50 ms``."""
    return estimate_on_step(
        build_cpu_step_model(model, cpu, precision, params),
        shape=shape,
        targets=targets,
        engine=engine,
        memory=memory,
        provenance=params.provenance,
        basis=params.basis,
        too_slow="too slow on CPU: {misses} even at zero load",
    )
