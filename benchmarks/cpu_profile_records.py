"""The records and the prediction of benchmarks/bench_cpu_profile.py, apart from its I/O: the random model and this
machine as in-memory catalog records (``ModelSpec``, ``CpuSpec``), and what the CPU serving profile
(``perf.build_cpu_step_model`` + the scheduler simulation) predicts for a closed loop on them.

Why in memory: the random model is not a model anyone should plan for, so it never enters the shipped
``models.csv``; the machine is described the way docs/cpu.md asks for an unknown instance (measured bandwidth).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from servewise.catalog import CpuSpec, ModelSpec
from servewise.perf import (
    CPU_ANALYTICAL_PARAMS,
    CpuParams,
    SimEngine,
    build_cpu_step_model,
    closed_loop,
    simulate,
)
from servewise.perf._arrivals import uniform_lengths
from servewise.types import Precision

SERVED = "random-llama-0.5b"
MAX_NUM_SEQS, TOKEN_BUDGET, MAX_MODEL_LEN = 16, 2048, 1024
"""The server's engine limits (passed to vLLM), which the simulation mirrors."""
ENGINE_CORES = 1
"""vLLM's CPU build binds its engine to one core here and reserves the other for the API server (its log:
``local_rank=0, core ids=[0]``, ``reserved_cpus=[1]``)."""


@dataclass(frozen=True)
class Size:
    hidden: int = 1536
    heads: int = 12
    kv_heads: int = 4
    layers: int = 20
    intermediate: int = 4096


def llama_params(size: Size, vocab: int) -> int:
    """Parameters of an untied Llama: embeddings, LM head, per layer q/k/v/o, gate/up/down and two norms."""
    head = size.hidden // size.heads
    attention = 2 * size.hidden * size.hidden + 2 * size.hidden * size.kv_heads * head
    per_layer = attention + 3 * size.hidden * size.intermediate + 2 * size.hidden
    return 2 * vocab * size.hidden + size.layers * per_layer + size.hidden


def model_spec(size: Size, vocab: int) -> ModelSpec:
    """The random model as a catalog record (in memory only: it is not a model anyone should plan for)."""
    params_b = llama_params(size, vocab) / 1e9
    head = size.hidden // size.heads
    return ModelSpec(
        name=SERVED,
        hf_id=f"local/{SERVED}",
        params_b=params_b,
        active_params_b=params_b,
        num_layers=size.layers,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_attention_heads=size.heads,
        num_kv_heads=size.kv_heads,
        head_dim=head,
        vocab_size=vocab,
        max_context=MAX_MODEL_LEN,
        moe_num_experts=None,
        moe_top_k=None,
        moe_intermediate_size=None,
        attention="gqa",
        kv_bytes_per_token_fp16=size.layers * 2 * size.kv_heads * head * 2,
        license="none",
        source="benchmarks/bench_cpu_profile.py: random weights built by scripts/real_vllm_model.py",
    )


def cpu_spec(cpu_model: str, copy_gbps: float, gemm_tflops: float, today: dt.date) -> CpuSpec:
    """The engine's share of this machine as a catalog CPU record: ``memory_bw_gbps`` the measured single-thread
    copy bandwidth (docs/cpu.md: measure an unknown instance), ``bf16_tflops`` the measured single-thread bf16
    GEMM rate — a lower bound of the core's peak, which a VM does not reveal (its boost clock is hidden: a first
    run assuming the 2.6 GHz base clock × 128 FLOP/cycle got 0.33 TFLOP/s, below the 0.44 measured)."""
    return CpuSpec(
        provider="local",
        instance_type=f"this machine ({ENGINE_CORES} core)",
        cpu_model=cpu_model,
        vcpus=ENGINE_CORES,
        physical_cores=ENGINE_CORES,
        socket_cores=os.cpu_count() or ENGINE_CORES,
        socket_memory_bw_gbps=copy_gbps,
        memory_bw_gbps=copy_gbps,
        bf16_tflops=gemm_tflops,
        int8_tops=None,
        isa="avx512+avx512_bf16",
        source=f"measured by benchmarks/bench_cpu_profile.py on {today}",
        as_of=today,
        notes="memory_bw: single-thread numpy copy (read + write bytes); bf16: single-thread torch GEMM rate",
    )


def predict(
    model: ModelSpec,
    cpu: CpuSpec,
    *,
    isl: int,
    osl: int,
    concurrency: int,
    requests: int,
    kv_tokens: int,
    params: CpuParams = CPU_ANALYTICAL_PARAMS,
) -> dict[str, float]:
    """Mean TTFT/TPOT (ms) and output tokens/s of the closed loop, simulated on the CPU step model (the profile's
    default efficiencies unless ``params`` says otherwise)."""
    step = build_cpu_step_model(model, cpu, Precision.bf16, params)
    engine = SimEngine(MAX_NUM_SEQS, TOKEN_BUDGET, max(1, kv_tokens // 16))
    load = closed_loop(concurrency, requests, uniform_lengths(isl, osl, 1.0), seed=0)
    result = simulate(step, engine, load)
    return {
        "ttft_ms": result.mean("ttft") * 1000,
        "tpot_ms": result.mean("tpot") * 1000,
        "output_tokens_per_s": result.output_tokens_per_s,
    }


def implied_bandwidth_efficiency(model: ModelSpec, cpu: CpuSpec, *, isl: int, tpot_ms: float) -> float:
    """The bandwidth efficiency that makes one decode step at batch 1 last the measured TPOT (step overhead
    kept at the profile's value): bytes streamed / ((TPOT − overhead) × bandwidth)."""
    step = build_cpu_step_model(model, cpu, Precision.bf16, CPU_ANALYTICAL_PARAMS)
    traffic = step.weight_bytes_per_step(1) + step.kv_bytes_per_token * (isl + 1)
    busy_s = tpot_ms / 1000 - CPU_ANALYTICAL_PARAMS.step_overhead_s
    return traffic / (busy_s * cpu.memory_bw_gbps * 1e9)


def implied_compute_efficiency(model: ModelSpec, cpu: CpuSpec, *, isl: int, ttft_ms: float) -> float:
    """The compute efficiency that makes the prefill of one ``isl``-token prompt (C = 1: nothing else runs) last
    the measured TTFT less the profile's request and step overheads: FLOPs / ((TTFT − overheads) × peak)."""
    step = build_cpu_step_model(model, cpu, Precision.bf16, CPU_ANALYTICAL_PARAMS)
    flops = (
        step.linear_flops_per_token * isl
        + step.lm_head_flops_per_seq
        + step.attn_flops_per_pair * isl * (isl + 1) / 2
    )
    params = CPU_ANALYTICAL_PARAMS
    busy_s = ttft_ms / 1000 - params.request_overhead_s - params.step_overhead_s
    return flops / (busy_s * step.peak_flops_per_s)
