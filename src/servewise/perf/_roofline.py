"""Roofline time of one engine step (a batch of decode tokens plus prefill chunks) on one replica.

A replica is ``tp`` × ``dp`` GPUs: ``dp`` attention data-parallel ranks of ``tp``-way tensor parallelism each (dp = 1
for ordinary tensor parallelism); a MoE's routed experts are split over all tp·dp GPUs (expert or tensor parallel).
Per GPU, for one rank's step, with efficiencies ``e_c`` (compute), ``e_b`` (bandwidth), ``e_ar`` (all-reduce):

    FLOPs  = 2·P_lin/tp · T  +  2·V·H/tp · S  +  4·L·A/tp · pairs
    bytes  = (W_dense − W_embed)/tp + W_exp/(tp·dp) · f(dp·T)  +  kv · (pairs_read + T)
    comm   = [tp>1]·2L·(α + 2(tp−1)/tp · T·H·2 / (BW_link/2 · e_ar))
             + [tp·dp>1, MoE]·L·(δ + 2·k·T·H·2/tp · (G−1)/G / (BW_link/2 · e_ar))
    t      = max(c, m) + γ·min(c, m)  +  comm  +  t_step  +  L·t_layer,   c = FLOPs/(peak·e_c), m = bytes/(BW·e_b)

T tokens in the step (decodes + prefill chunk tokens); S sequences sampled (LM head); pairs = Σ query × key
positions (a decode at context c adds c, a prefill chunk of p tokens after c₀ cached ones adds p·(c₀ + p/2));
P_lin = active parameters minus embedding and LM head; A = heads × head_dim (MLA: heads × latent width);
f(T) = 1 − (1 − k/E)^T, the expected fraction of a layer's E experts that T tokens routed top-k touch (all dp ranks
route into the same experts); W_exp = routed-expert weights, from total/active params: P_exp = (P − P_act)/(1 − k/E);
the input embedding W_embed = V·H·2 bytes is a table lookup (a few rows per step), so it is not streamed. γ is the
share of the shorter of compute and memory time that does not overlap the longer (0: ideal roofline). δ is the
MoE dispatch latency per layer and the all-to-all moves each token's hidden state to its k experts and back. The
link is NVLink within an NVLink domain (8 GPUs per HGX node, 72 in a GB200 NVL72 rack) and the scale-out network
(400 Gb/s = 50 GB/s per GPU, ConnectX-7 NDR) beyond it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision

from ._memory import embedding_params, kv_bytes_per_token_per_gpu, routed_expert_bytes, weight_bytes
from ._params import StepParams
from ._precision import peak_tflops

__all__ = ["INTER_NODE_GBPS", "NVLINK_DOMAIN_GPUS", "StepModel", "build_step_model"]

INTER_NODE_GBPS = 50.0
"""Scale-out bandwidth per GPU, GB/s: one 400 Gb/s NDR InfiniBand/ConnectX-7 port per GPU (DGX H100/B200)."""
NVLINK_DOMAIN_GPUS = {"GB200": 72}
"""GPUs sharing one NVLink fabric where it exceeds a node (GB200 NVL72: 72 GPUs, NVIDIA product brief)."""


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
    """Per step: step overhead + layers × layer overhead + the fixed latencies of every collective."""
    request_overhead_s: float
    """Added once to each request's time to first token (frontend, tokenisation)."""
    overlap_penalty: float = 0.0
    prompt_overhead_s_per_token: float = 0.0
    routing_ranks: int = 1
    """Attention data-parallel ranks whose tokens share the experts (dp)."""
    layers: int = 0
    allreduces: int = 0
    moe_layers_split: int = 0
    """MoE layers whose experts are split over several GPUs (each pays a dispatch latency)."""
    peak_flops_per_s: float = 0.0
    peak_bytes_per_s: float = 0.0
    comm_s_per_token_at_full_link: float = 0.0
    """All-reduce + all-to-all seconds per token at 100 % link efficiency (the fit scales it by 1/e_ar)."""

    def expert_fraction(self, tokens: float) -> float:
        """Expected fraction of experts a step of ``tokens`` tokens per rank reads (1 for dense weights)."""
        if self.expert_route_fraction <= 0.0 or self.expert_weight_bytes <= 0.0:
            return 1.0
        untouched: float = (1.0 - self.expert_route_fraction) ** max(tokens * self.routing_ranks, 0.0)
        return 1.0 - untouched

    def weight_bytes_per_step(self, tokens: float) -> float:
        return self.dense_weight_bytes + self.expert_weight_bytes * self.expert_fraction(tokens)

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
        traffic = self.weight_bytes_per_step(tokens) + self.kv_bytes_per_token * (kv_read_tokens + tokens)
        compute, memory = flops / self.flops_per_s, traffic / self.bytes_per_s
        roof = max(compute, memory)
        if self.overlap_penalty:
            roof += self.overlap_penalty * min(compute, memory)
        return roof + self.allreduce_fixed_s + self.allreduce_s_per_token * tokens + self.overhead_s

    def decode_run_s(self, decodes: int, kv_read_tokens: float, steps: int) -> float:
        """Seconds of ``steps`` consecutive decode-only steps of ``decodes`` sequences, the first reading
        ``kv_read_tokens`` KV tokens and each next one ``decodes`` more. Closed form: each step is a max of two
        lines in the step index, so the run is two arithmetic series split where the lines cross."""
        if steps <= 0:
            return 0.0
        n = float(decodes)
        fixed = self.allreduce_fixed_s + self.allreduce_s_per_token * n + self.overhead_s
        c0 = (
            (self.linear_flops_per_token + self.lm_head_flops_per_seq) * n
            + self.attn_flops_per_pair * kv_read_tokens
        ) / self.flops_per_s
        c1 = self.attn_flops_per_pair * n / self.flops_per_s
        m0 = (
            self.weight_bytes_per_step(n) + self.kv_bytes_per_token * (kv_read_tokens + n)
        ) / self.bytes_per_s
        m1 = self.kv_bytes_per_token * n / self.bytes_per_s
        top = sum_of_max_lines(c0, c1, m0, m1, steps)
        if self.overlap_penalty:  # Σ min = Σ c + Σ m − Σ max
            both = _series(c0, c1, 0, steps) + _series(m0, m1, 0, steps)
            top += self.overlap_penalty * (both - top)
        return steps * fixed + top


def _series(a: float, b: float, first: int, count: int) -> float:
    """Σ_{i=first}^{first+count−1} (a + b·i)."""
    return count * a + b * (count * first + count * (count - 1) / 2.0)


def sum_of_max_lines(a0: float, a1: float, b0: float, b1: float, steps: int) -> float:
    """Σ_{i=0}^{steps−1} max(a0 + a1·i, b0 + b1·i), exactly."""
    if steps <= 0:
        return 0.0
    if a1 != b1:
        cross = (b0 - a0) / (a1 - b1)  # the lines meet at i = cross
        if 0.0 < cross < steps - 1:
            split = math.floor(cross) + 1
            first, second = ((a0, a1), (b0, b1)) if a0 >= b0 else ((b0, b1), (a0, a1))
            return _series(*first, 0, split) + _series(*second, split, steps - split)
    mid = (steps - 1) / 2.0
    return _series(a0, a1, 0, steps) if a0 + a1 * mid >= b0 + b1 * mid else _series(b0, b1, 0, steps)


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
    dp: int = 1,
    clients: int = 0,
) -> StepModel:
    """Coefficients of ``model`` at ``precision`` on ``tp`` × ``dp`` × ``gpu`` with efficiencies ``params``;
    ``clients`` (a closed loop's concurrency, 0 when unknown) scales the per-client frontend overhead."""
    embed = embedding_params(model)
    active = model.active_params_b * 1e9
    linear_params = max(active - embed, 0.1 * active)
    expert_bytes = routed_expert_bytes(model, precision)
    route = 0.0
    if expert_bytes and model.moe_top_k and model.moe_num_experts:
        route = model.moe_top_k / model.moe_num_experts
    all_weights = weight_bytes(model, precision)
    input_embedding_bytes = model.vocab_size * model.hidden_size * 2.0
    gpus = tp * dp
    full_link = _link_gbps(gpu, gpus) * 1e9 / 2
    allreduces = 2 * model.num_layers if tp > 1 else 0
    allreduce_s = allreduces * 2.0 * (tp - 1) / tp * model.hidden_size * 2 / full_link if tp > 1 else 0.0
    split_moe_layers = model.num_layers if route > 0 and gpus > 1 else 0
    a2a_s = 0.0
    if split_moe_layers and model.moe_top_k:
        a2a_s = split_moe_layers * 2.0 * model.moe_top_k * model.hidden_size * 2 / tp * (gpus - 1) / gpus
        a2a_s /= full_link
    comm_s = allreduce_s + a2a_s
    peak = peak_tflops(gpu, precision) * 1e12
    hbm = gpu.memory_bw_gbps * 1e9
    return StepModel(
        linear_flops_per_token=2.0 * linear_params / tp,
        lm_head_flops_per_seq=2.0 * model.vocab_size * model.hidden_size / tp,
        attn_flops_per_pair=4.0 * model.num_layers * _attention_width(model) / tp,
        dense_weight_bytes=max(all_weights - expert_bytes - input_embedding_bytes, 0.0) / tp,
        expert_weight_bytes=expert_bytes / gpus,
        expert_route_fraction=route,
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(model, tp, kv_bytes),
        flops_per_s=peak * params.compute_efficiency,
        bytes_per_s=hbm * params.bandwidth_efficiency,
        allreduce_fixed_s=allreduces * params.allreduce_latency_s,
        allreduce_s_per_token=comm_s / params.allreduce_efficiency,
        overhead_s=(
            params.step_overhead_s
            + model.num_layers * params.layer_overhead_s
            + split_moe_layers * params.moe_dispatch_s
        ),
        request_overhead_s=params.request_overhead_s + clients * params.client_overhead_s_per_client,
        overlap_penalty=params.overlap_penalty,
        prompt_overhead_s_per_token=(
            params.prompt_overhead_s_per_token + clients * params.client_prompt_overhead_s_per_token
        ),
        routing_ranks=dp,
        layers=model.num_layers,
        allreduces=allreduces,
        moe_layers_split=split_moe_layers,
        peak_flops_per_s=peak,
        peak_bytes_per_s=hbm,
        comm_s_per_token_at_full_link=comm_s,
    )


def _link_gbps(gpu: Accelerator, gpus: int) -> float:
    """Bandwidth the replica's collectives see: NVLink inside the NVLink domain, the scale-out network beyond."""
    domain = NVLINK_DOMAIN_GPUS.get(gpu.name, gpu.max_per_node)
    return gpu.intra_node_bw_gbps if gpus <= domain else min(gpu.intra_node_bw_gbps, INTER_NODE_GBPS)
