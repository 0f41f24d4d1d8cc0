"""Does a model fit on ``tp`` GPUs, and how many sequences does the KV cache hold? (vLLM's memory profile)

Per GPU, in bytes (GB = 10^9 bytes):

    budget      = memory_gb × gpu_memory_utilization
    weights     = [(P_total − P_embed) × bytes_per_param(precision) + P_embed × 2] / tp
                  P_embed = 2 × vocab × hidden (input embedding + LM head, kept 16-bit); MoE: all experts resident;
                  with ``dp`` attention data-parallel ranks the routed experts are split over all tp·dp GPUs
    activation  = max_num_batched_tokens × (2 × I_tok / tp + 4 × hidden) × 2  +  max_num_seqs × vocab / tp × 4
                  I_tok = intermediate (dense) or moe_intermediate × top_k (MoE); the profile run's peak plus fp32
                  logits of the sampler warm-up
    reserve     = CUDA graphs 0.5 GB + non-torch (CUDA context, cuBLAS, NCCL) 0.5 GB (+0.5 GB when tp > 1)
    kv_cache    = budget − weights − activation − reserve
    kv/token    = kv_bytes_per_token_fp16 × (kv_dtype_bytes / 2) / shards × window_factor
                  shards = min(tp, kv_heads) for MHA/GQA (heads replicate beyond that); 1 for MLA (vLLM keeps the
                  whole latent on every rank)
                  window_factor = 1 − w + w · min(S, W + block) / S for a share w of sliding-window layers of
                  window W at the workload's mean sequence length S (1 without them): vLLM's hybrid KV cache
                  manager frees a windowed layer's blocks once they slide out of the window
                  (``SlidingWindowManager`` in vllm/v1/core/single_type_kv_cache_manager.py), so those layers hold
                  about W + one block of tokens per sequence. The simulation's blocks are all-layer blocks, so the
                  saving is spread evenly over a sequence's life at its mean length (an approximation: a young
                  sequence holds less than its share, an old one more).
    kv_tokens   = ⌊kv_cache / kv_per_token / block⌋ × block
    max_seqs    = min(max_num_seqs, ⌊kv_blocks / ⌈seq_tokens / block⌉⌋)

It fits when kv_cache > 0 and one ``max_model_len`` sequence fits in the KV cache (vLLM refuses to start otherwise).
Reserve figures are typical of vLLM start-up logs ("CUDA graph … took 0.4–1 GiB", "non-torch memory 0.2–1 GiB").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision

from ._engine import EngineSettings
from ._precision import BYTES_PER_PARAM

__all__ = [
    "MemoryPlan",
    "embedding_params",
    "kv_bytes_per_token_per_gpu",
    "memory_plan",
    "routed_expert_bytes",
    "weight_bytes",
]

_GB = 1e9
CUDA_GRAPH_RESERVE_GB = 0.5
NON_TORCH_RESERVE_GB = 0.5
NCCL_RESERVE_GB = 0.5


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """Memory use of one GPU of a replica; ``reason`` says why it does not fit (empty when it fits)."""

    budget_gb: float
    weights_gb: float
    activation_gb: float
    reserve_gb: float
    kv_cache_gb: float
    kv_bytes_per_token: float
    """At the workload's mean sequence length (sliding-window layers hold at most their window)."""
    kv_capacity_tokens: int
    max_model_len: int
    max_concurrent_seqs: int
    """At the workload's mean sequence length (prompt + output), capped by ``max_num_seqs``."""
    fits: bool
    reason: str


def embedding_params(model: ModelSpec) -> float:
    """Input embedding + LM head parameters (kept 16-bit when the rest is quantised)."""
    return 2.0 * model.vocab_size * model.hidden_size


def weight_bytes(model: ModelSpec, precision: Precision) -> float:
    """Bytes of all weights of one replica (every expert of a MoE is resident)."""
    total = model.params_b * 1e9
    embed = min(embedding_params(model), total)
    return (total - embed) * BYTES_PER_PARAM[precision] + embed * 2.0


def routed_expert_bytes(model: ModelSpec, precision: Precision) -> float:
    """Bytes of a MoE's routed experts: P_exp = (P − P_active) / (1 − k/E) parameters (0 for a dense model)."""
    if not (model.is_moe and model.moe_num_experts and model.moe_top_k):
        return 0.0
    route = model.moe_top_k / model.moe_num_experts
    params = max(0.0, (model.params_b - model.active_params_b) * 1e9 / (1.0 - route))
    return min(params * BYTES_PER_PARAM[precision], weight_bytes(model, precision))


def kv_bytes_per_token_per_gpu(model: ModelSpec, tp: int, kv_bytes_per_element: int = 2) -> float:
    """KV bytes one token occupies on one GPU of a ``tp``-way replica."""
    shards = 1 if model.is_mla else max(1, min(tp, model.num_kv_heads))
    return model.kv_bytes_per_token_fp16 * (kv_bytes_per_element / 2) / shards


def kv_window_factor(model: ModelSpec, seq_tokens: float, block_tokens: int) -> float:
    """KV bytes per token of a ``seq_tokens``-long sequence relative to every layer holding all of it."""
    share = model.sliding_share
    if not share or seq_tokens <= 0 or not model.sliding_window_tokens:
        return 1.0
    held = min(seq_tokens, model.sliding_window_tokens + block_tokens)
    return 1.0 - share + share * held / seq_tokens


def _activation_bytes(model: ModelSpec, tp: int, engine: EngineSettings) -> float:
    if model.is_moe and model.moe_intermediate_size and model.moe_top_k:
        per_token_intermediate = model.moe_intermediate_size * model.moe_top_k
    else:
        per_token_intermediate = model.intermediate_size or 4 * model.hidden_size
    hidden_states = (
        engine.max_num_batched_tokens * (2 * per_token_intermediate / tp + 4 * model.hidden_size) * 2
    )
    logits = engine.max_num_seqs * model.vocab_size / tp * 4
    return hidden_states + logits


def memory_plan(
    model: ModelSpec,
    gpu: Accelerator,
    tp: int,
    precision: Precision,
    engine: EngineSettings,
    *,
    mean_seq_tokens: float,
    max_model_len: int,
    dp: int = 1,
) -> MemoryPlan:
    """Memory of one GPU of a ``tp``×``dp``-GPU replica serving sequences of ``mean_seq_tokens`` on average."""
    budget = gpu.memory_gb * _GB * engine.gpu_memory_utilization
    experts = routed_expert_bytes(model, precision)
    weights = (weight_bytes(model, precision) - experts) / tp + experts / (tp * dp)
    activation = _activation_bytes(model, tp, engine)
    reserve = (CUDA_GRAPH_RESERVE_GB + NON_TORCH_RESERVE_GB + (NCCL_RESERVE_GB if tp > 1 else 0.0)) * _GB
    return settle_memory(
        budget=budget,
        weights=weights,
        activation=activation,
        reserve=reserve,
        per_token=kv_bytes_per_token_per_gpu(model, tp, engine.kv_cache_bytes_per_element)
        * kv_window_factor(model, mean_seq_tokens, engine.block_size_tokens),
        engine=engine,
        mean_seq_tokens=mean_seq_tokens,
        max_model_len=max_model_len,
        where=f"{tp}x{gpu.name}",
        per=" per GPU",
        too_heavy=(
            f"weights need {weights / _GB:.1f} GB per GPU at {precision} on {tp}x{gpu.name}, "
            f"but only {budget / _GB:.1f} GB is usable ({gpu.memory_gb:g} GB x {engine.gpu_memory_utilization:g})"
        ),
    )


def settle_memory(
    *,
    budget: float,
    weights: float,
    activation: float,
    reserve: float,
    per_token: float,
    engine: EngineSettings,
    mean_seq_tokens: float,
    max_model_len: int,
    where: str,
    per: str,
    too_heavy: str,
) -> MemoryPlan:
    """What is left for the KV cache once weights, activations and reserve are placed (bytes in), in whole blocks,
    and the first reason it does not serve — one verdict for a GPU and for a CPU host, so both fail alike."""
    kv_cache = budget - weights - activation - reserve
    block = engine.block_size_tokens
    blocks = max(0, math.floor(kv_cache / (per_token * block))) if kv_cache > 0 else 0
    kv_tokens = blocks * block
    max_seqs = min(engine.max_num_seqs, blocks // max(1, math.ceil(mean_seq_tokens / block)))
    reason = ""
    if weights > budget:
        reason = too_heavy
    elif kv_cache <= 0:
        reason = (
            f"no room for a KV cache on {where}: weights {weights / _GB:.1f} GB + activations "
            f"{activation / _GB:.1f} GB + reserve {reserve / _GB:.1f} GB exceed {budget / _GB:.1f} GB{per}"
        )
    elif kv_tokens < max_model_len:
        reason = f"KV cache on {where} holds {kv_tokens} tokens, less than one {max_model_len}-token sequence"
    return MemoryPlan(
        budget_gb=budget / _GB,
        weights_gb=weights / _GB,
        activation_gb=activation / _GB,
        reserve_gb=reserve / _GB,
        kv_cache_gb=max(kv_cache, 0.0) / _GB,
        kv_bytes_per_token=per_token,
        kv_capacity_tokens=kv_tokens,
        max_model_len=max_model_len,
        max_concurrent_seqs=max_seqs,
        fits=not reason,
        reason=reason,
    )
