"""Roofline time of one engine step (a batch of decode tokens plus prefill chunks) on one replica.

Per GPU of a ``tp``-way replica, with efficiencies ``e_c`` (compute), ``e_b`` (bandwidth), ``e_ar`` (all-reduce):

    FLOPs  = 2·P_lin/tp · T  +  2·V·H/tp · S  +  4·L·A/tp · pairs
    bytes  = (W_dense − W_embed)/tp + W_exp/tp · f(T)  +  kv · (pairs_read + T)
    t      = max(FLOPs / (peak·e_c), bytes / (BW·e_b))  +  [tp>1]·2L·(α + 2(tp−1)/tp · T·H·2 / (BW_link/2 · e_ar))
             +  t_overhead

T tokens in the step (decodes + prefill chunk tokens); S sequences sampled (LM head); pairs = Σ query × key
positions (a decode at context c adds c, a prefill chunk of p tokens after c₀ cached ones adds p·(c₀ + p/2));
P_lin = active parameters minus embedding and LM head; A = heads × head_dim (MLA: heads × latent width);
f(T) = 1 − (1 − k/E)^T, the expected fraction of a layer's E experts that T tokens routed top-k touch;
W_exp = routed-expert weights, from total/active params: P_exp = (P − P_act) / (1 − k/E); the input embedding
W_embed = V·H·2 bytes is a table lookup (a few rows per step), so it is not streamed like the other weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision

from ._memory import embedding_params, kv_bytes_per_token_per_gpu, weight_bytes
from ._params import StepParams
from ._precision import BYTES_PER_PARAM, peak_tflops

__all__ = ["StepModel", "build_step_model"]


@dataclass(frozen=True, slots=True)
class StepModel:
    """Per-GPU coefficients of one replica's step time; build once per configuration, evaluate many times."""

    linear_flops_per_token: float
    lm_head_flops_per_seq: float
    attn_flops_per_pair: float
    dense_weight_bytes: float
    expert_weight_bytes: float
    expert_route_fraction: float
    """k/E for a MoE (0 for dense): the chance one routed token picks a given expert."""
    kv_bytes_per_token: float
    flops_per_s: float
    """Effective: peak × compute efficiency."""
    bytes_per_s: float
    """Effective: HBM bandwidth × bandwidth efficiency."""
    allreduce_fixed_s: float
    allreduce_s_per_token: float
    overhead_s: float
    request_overhead_s: float
    """Added once to each request's time to first token (frontend, tokenisation)."""

    def expert_fraction(self, tokens: float) -> float:
        """Expected fraction of experts a step of ``tokens`` routed tokens reads (1 for dense weights)."""
        if self.expert_route_fraction <= 0.0 or self.expert_weight_bytes <= 0.0:
            return 1.0
        untouched: float = (1.0 - self.expert_route_fraction) ** max(tokens, 0.0)
        return 1.0 - untouched

    def step_time_s(
        self,
        *,
        tokens: float,
        sampled_seqs: float,
        attn_pairs: float,
        kv_read_tokens: float,
    ) -> float:
        """Seconds for one step processing ``tokens`` tokens (see the module formula)."""
        flops = (
            self.linear_flops_per_token * tokens
            + self.lm_head_flops_per_seq * sampled_seqs
            + self.attn_flops_per_pair * attn_pairs
        )
        weights = self.dense_weight_bytes + self.expert_weight_bytes * self.expert_fraction(tokens)
        traffic = weights + self.kv_bytes_per_token * (kv_read_tokens + tokens)
        roof = max(flops / self.flops_per_s, traffic / self.bytes_per_s)
        return roof + self.allreduce_fixed_s + self.allreduce_s_per_token * tokens + self.overhead_s


def _attention_width(model: ModelSpec) -> float:
    if model.head_dim:
        return float(model.num_attention_heads * model.head_dim)
    if model.is_mla:
        latent = model.kv_bytes_per_token_fp16 / (2 * model.num_layers)
        return model.num_attention_heads * latent
    return float(model.hidden_size)


def build_step_model(
    model: ModelSpec,
    gpu: Accelerator,
    tp: int,
    precision: Precision,
    params: StepParams,
    *,
    kv_bytes: int = 2,
) -> StepModel:
    """Coefficients of ``model`` at ``precision`` on ``tp`` × ``gpu`` with efficiencies ``params``."""
    embed = embedding_params(model)
    active = model.active_params_b * 1e9
    linear_params = max(active - embed, 0.1 * active)
    if model.is_moe and model.moe_num_experts and model.moe_top_k:
        route = model.moe_top_k / model.moe_num_experts
        expert_params = max(0.0, (model.params_b - model.active_params_b) * 1e9 / (1.0 - route))
    else:
        route, expert_params = 0.0, 0.0
    all_weights = weight_bytes(model, precision)
    input_embedding_bytes = model.vocab_size * model.hidden_size * 2.0
    expert_bytes = min(expert_params * BYTES_PER_PARAM[precision], all_weights)
    link_bytes_per_s = gpu.intra_node_bw_gbps * 1e9 / 2 * params.allreduce_efficiency
    allreduces = 2 * model.num_layers if tp > 1 else 0
    return StepModel(
        linear_flops_per_token=2.0 * linear_params / tp,
        lm_head_flops_per_seq=2.0 * model.vocab_size * model.hidden_size / tp,
        attn_flops_per_pair=4.0 * model.num_layers * _attention_width(model) / tp,
        dense_weight_bytes=max(all_weights - expert_bytes - input_embedding_bytes, 0.0) / tp,
        expert_weight_bytes=expert_bytes / tp,
        expert_route_fraction=route,
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(model, tp, kv_bytes),
        flops_per_s=peak_tflops(gpu, precision) * 1e12 * params.compute_efficiency,
        bytes_per_s=gpu.memory_bw_gbps * 1e9 * params.bandwidth_efficiency,
        allreduce_fixed_s=allreduces * params.allreduce_latency_s,
        allreduce_s_per_token=(
            allreduces * 2.0 * (tp - 1) / tp * model.hidden_size * 2 / link_bytes_per_s if tp > 1 else 0.0
        ),
        overhead_s=params.step_overhead_s,
        request_overhead_s=params.request_overhead_s,
    )
