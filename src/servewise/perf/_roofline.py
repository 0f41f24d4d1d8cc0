"""Roofline time of one engine step (a batch of decode tokens plus prefill chunks) on one replica.

A replica is ``tp`` × ``dp`` GPUs: ``dp`` attention data-parallel ranks of ``tp``-way tensor parallelism each (dp = 1
for ordinary tensor parallelism); a MoE's routed experts are split over all tp·dp GPUs (expert or tensor parallel).
Per GPU, for one rank's step, with efficiencies ``e_c`` (dense GEMMs), ``e_x`` (routed experts' grouped GEMMs),
``e_a`` (attention), ``e_b`` (bandwidth), ``e_ar`` (all-reduce):

    c      = (2·P_dense/tp · T + 2·V·H/tp · S) / (peak·e_c)  +  2·P_xact/tp · T / (peak·e_x)
             + 4·L·A/tp · pairs / (peak16·e_a)
    m      = ((W_dense − W_embed)/tp + W_exp/(tp·dp) · f(dp·T)  +  kv · (pairs_read + T)) / (BW·e_b)
    comm   = [tp>1]·2L·(α + 2(tp−1)/tp · T·H·2 / (BW_link/2 · e_ar))
             + [moving]·L·(δ + 2·k·T·H·2/tp · (G−1)/G / (BW_link/2 · e_ar))
    t      = s · ( max(c, m) + γ·min(c, m)  +  comm  +  t_step  +  L·t_layer  +  [prefill]·L·t_prefill_layer
                 + [dp>1]·L_moe·δ_dp )

T tokens in the step (decodes + prefill chunk tokens); S sequences sampled (LM head); pairs = Σ query × key
positions (a decode at context c adds c, a prefill chunk of p tokens after c₀ cached ones adds p·(c₀ + p/2));
pairs_read = Σ over the step's sequences of the KV tokens attention reads (a decode's context, a chunk's c₀).
Sliding-window layers (a share w of the layers, window W: gpt-oss, Gemma) attend to at most W keys, so in both
sums a context c counts as c − w·max(c − W, 0) and a chunk's pairs lose w·((c₀+p−W)₊² − (c₀−W)₊²)/2
(``context_tokens``, ``chunk_pairs``): the coefficients stay per token of all layers, the token counts shrink.
P_dense = active parameters minus embedding, LM head and the active routed experts P_xact = k/E · P_exp;
A = heads × head_dim (MLA: heads × latent width); peak is the tensor peak at the weights' precision, peak16 the
16-bit one (attention runs in 16-bit whatever the weights are). δ_dp (``dp_dispatch_s``) is the wait at each split
MoE layer's dispatch and combine for the slowest attention data-parallel rank (their batches and expert loads
differ).
f(T) = 1 − (1 − k/E)^T, the expected fraction of a layer's E experts that T tokens routed top-k touch (all dp ranks
route into the same experts); W_exp = routed-expert weights, from total/active params: P_exp = (P − P_act)/(1 − k/E);
the input embedding W_embed = V·H·2 bytes is a table lookup (a few rows per step), so it is not streamed. γ is the
share of the shorter of compute and memory time that does not overlap the longer (0: ideal roofline). δ is the
MoE dispatch latency per layer and the all-to-all moves each token's hidden state to its k experts and back; both
apply only when tokens move between GPUs for the experts ([moving]: expert parallelism or attention data
parallelism) — tensor-parallel experts reduce their output in the layer's all-reduce. [prefill] marks a step that
carries prompt tokens (T > S): engines replay CUDA graphs only for decode batches. s is the model's step-time
correction (1 without one; ``_correction``), folded into the effective rates and fixed times so every consumer of
the coefficients (scheduler, capacity formulas, simulator) applies it. The link is NVLink within an NVLink domain
(8 GPUs per HGX node, 72 in a GB200 NVL72 rack) and the scale-out network (400 Gb/s = 50 GB/s per GPU,
ConnectX-7 NDR) beyond it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, ModelSpec
from servewise.types import Precision

from ._memory import embedding_params, kv_bytes_per_token_per_gpu, routed_expert_bytes, weight_bytes
from ._params import ModelFactors, StepParams
from ._precision import BYTES_PER_PARAM, peak_tflops

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
    expert_flops_per_token: float = 0.0
    """Routed experts' FLOPs per token (per GPU); costed at ``expert_flops_per_s``."""
    expert_flops_per_s: float = 0.0
    attn_flops_per_s: float = 0.0
    """Effective attention FLOP/s (16-bit peak × attention efficiency); 0: ``flops_per_s``."""
    prefill_overhead_s: float = 0.0
    """Added to a step that carries prompt tokens: layers × per-layer prefill overhead."""
    peak_attn_flops_per_s: float = 0.0
    step_time_factor: float = 1.0
    """The model's correction already folded into the rates and fixed times above (provenance only)."""
    prefill_factor: float = 1.0
    """The model's prefill correction: multiplies steps that carry prompt tokens; already folded into the request
    and prompt overheads."""
    correction: str = ""
    """What the folded correction rests on; empty without one."""
    window_tokens: float = 0.0
    """Sliding-window length of the windowed layers (0: every layer attends to the whole context)."""
    window_share: float = 0.0
    """Share of the layers that attend within ``window_tokens``."""

    def context_tokens(self, context: float) -> float:
        """KV tokens, in all-layer units, that attention reads for one sequence at ``context`` cached tokens."""
        if not self.window_share:
            return context
        return context - self.window_share * max(context - self.window_tokens, 0.0)

    def chunk_pairs(self, cached: float, chunk: float) -> float:
        """Query × key pairs, in all-layer units, of a prefill chunk of ``chunk`` tokens after ``cached`` ones.

        Over all layers it is ∫ position = chunk·(cached + chunk/2); a windowed layer caps each position at W,
        which removes (x − W)²/2 of the integral up to x for x > W."""
        pairs = chunk * (cached + chunk / 2.0)
        if not self.window_share:
            return pairs
        end, window = cached + chunk, self.window_tokens
        beyond = max(end - window, 0.0) ** 2 - max(cached - window, 0.0) ** 2
        return pairs - self.window_share * beyond / 2.0

    def compute_s(self, tokens: float, sampled_seqs: float, attn_pairs: float) -> float:
        """Seconds of a step's FLOPs at the effective rates (dense GEMMs, experts, attention)."""
        seconds = (
            self.linear_flops_per_token * tokens + self.lm_head_flops_per_seq * sampled_seqs
        ) / self.flops_per_s
        if self.expert_flops_per_token:
            seconds += self.expert_flops_per_token * tokens / (self.expert_flops_per_s or self.flops_per_s)
        return seconds + self.attn_flops_per_pair * attn_pairs / (self.attn_flops_per_s or self.flops_per_s)

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
        traffic = self.weight_bytes_per_step(tokens) + self.kv_bytes_per_token * (kv_read_tokens + tokens)
        compute, memory = self.compute_s(tokens, sampled_seqs, attn_pairs), traffic / self.bytes_per_s
        roof = max(compute, memory)
        if self.overlap_penalty:
            roof += self.overlap_penalty * min(compute, memory)
        fixed = self.allreduce_fixed_s + self.allreduce_s_per_token * tokens + self.overhead_s
        if tokens > sampled_seqs:
            return (roof + fixed + self.prefill_overhead_s) * self.prefill_factor
        return roof + fixed

    def decode_run_s(
        self, decodes: int, kv_read_tokens: float, steps: int, growth: float | None = None
    ) -> float:
        """Seconds of ``steps`` consecutive decode-only steps of ``decodes`` sequences, the first reading
        ``kv_read_tokens`` KV tokens and each next one ``growth`` more (default ``decodes``; fewer when some
        sequences are past a sliding window). Closed form: each step is a max of two lines in the step index, so
        the run is two arithmetic series split where the lines cross."""
        if steps <= 0:
            return 0.0
        n = float(decodes)
        grow = n if growth is None else growth
        fixed = self.allreduce_fixed_s + self.allreduce_s_per_token * n + self.overhead_s
        c0 = self.compute_s(n, n, kv_read_tokens)
        c1 = self.attn_flops_per_pair * grow / (self.attn_flops_per_s or self.flops_per_s)
        m0 = (
            self.weight_bytes_per_step(n) + self.kv_bytes_per_token * (kv_read_tokens + n)
        ) / self.bytes_per_s
        m1 = self.kv_bytes_per_token * grow / self.bytes_per_s
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
    expert_parallel: bool = False,
) -> StepModel:
    """Coefficients of ``model`` at ``precision`` on ``tp`` × ``dp`` × ``gpu`` with efficiencies ``params``;
    ``clients`` (a closed loop's concurrency, 0 when unknown) scales the per-client frontend overhead;
    ``expert_parallel`` says the routed experts are split by expert (all-to-all dispatch) rather than by tensor
    (vLLM's default without ``--enable-expert-parallel``). The model's correction in ``params`` is folded in."""
    embed = embedding_params(model)
    active = model.active_params_b * 1e9
    linear_params = max(active - embed, 0.1 * active)
    expert_bytes = routed_expert_bytes(model, precision)
    route = 0.0
    if expert_bytes and model.moe_top_k and model.moe_num_experts:
        route = model.moe_top_k / model.moe_num_experts
    expert_active = min(expert_bytes / BYTES_PER_PARAM[precision] * route, 0.9 * linear_params)
    all_weights = weight_bytes(model, precision)
    input_embedding_bytes = model.vocab_size * model.hidden_size * 2.0
    gpus = tp * dp
    full_link = _link_gbps(gpu, gpus) * 1e9 / 2
    allreduces = 2 * model.num_layers if tp > 1 else 0
    allreduce_s = allreduces * 2.0 * (tp - 1) / tp * model.hidden_size * 2 / full_link if tp > 1 else 0.0
    split_moe_layers = model.num_layers if route > 0 and gpus > 1 else 0
    moving = split_moe_layers > 0 and (expert_parallel or dp > 1)
    a2a_s = 0.0
    if moving and model.moe_top_k:
        a2a_s = split_moe_layers * 2.0 * model.moe_top_k * model.hidden_size * 2 / tp * (gpus - 1) / gpus
        a2a_s /= full_link
    comm_s = allreduce_s + a2a_s
    peak = peak_tflops(gpu, precision) * 1e12
    peak16 = peak_tflops(gpu, Precision.bf16 if gpu.bf16_tflops else Precision.fp16) * 1e12
    hbm = gpu.memory_bw_gbps * 1e9
    factors = params.correction_for(model.name)
    s = factors.step_time_factor if factors else 1.0
    o = factors.prefill_factor if factors else 1.0
    return StepModel(
        linear_flops_per_token=2.0 * (linear_params - expert_active) / tp,
        lm_head_flops_per_seq=2.0 * model.vocab_size * model.hidden_size / tp,
        attn_flops_per_pair=4.0 * model.num_layers * _attention_width(model) / tp,
        dense_weight_bytes=max(all_weights - expert_bytes - input_embedding_bytes, 0.0) / tp,
        expert_weight_bytes=expert_bytes / gpus,
        expert_route_fraction=route,
        kv_bytes_per_token=kv_bytes_per_token_per_gpu(model, tp, kv_bytes),
        flops_per_s=peak * params.compute_efficiency / s,
        bytes_per_s=hbm * params.bandwidth_efficiency / s,
        allreduce_fixed_s=allreduces * params.allreduce_latency_s * s,
        allreduce_s_per_token=comm_s / params.allreduce_efficiency * s,
        overhead_s=(
            params.step_overhead_s
            + model.num_layers * params.layer_overhead_s
            + split_moe_layers * params.moe_dispatch_s
            + (split_moe_layers * params.dp_dispatch_s if dp > 1 else 0.0)
        )
        * s,
        request_overhead_s=(params.request_overhead_s + clients * params.client_overhead_s_per_client) * o,
        overlap_penalty=params.overlap_penalty,
        prompt_overhead_s_per_token=(
            params.prompt_overhead_s_per_token + clients * params.client_prompt_overhead_s_per_token
        )
        * o,
        routing_ranks=dp,
        layers=model.num_layers,
        allreduces=allreduces,
        moe_layers_split=split_moe_layers,
        peak_flops_per_s=peak,
        peak_bytes_per_s=hbm,
        comm_s_per_token_at_full_link=comm_s,
        expert_flops_per_token=2.0 * expert_active / tp,
        expert_flops_per_s=peak * params.moe_compute_efficiency / s,
        attn_flops_per_s=peak16 * params.attention_efficiency / s,
        prefill_overhead_s=model.num_layers * params.prefill_layer_overhead_s * s,
        peak_attn_flops_per_s=peak16,
        step_time_factor=s,
        prefill_factor=o,
        correction=_correction_text(factors),
        window_tokens=float(model.sliding_window_tokens or 0),
        window_share=model.sliding_share,
    )


def _correction_text(factors: ModelFactors | None) -> str:
    if factors is None:
        return ""
    return (
        f"per-model correction x{factors.step_time_factor:.3g} step time, x{factors.prefill_factor:.3g} "
        f"prefill steps and frontend overhead ({factors.basis or f'{factors.rows} measured rows of the model'})"
    )


def _link_gbps(gpu: Accelerator, gpus: int) -> float:
    """Bandwidth the replica's collectives see: NVLink inside the NVLink domain, the scale-out network beyond."""
    domain = NVLINK_DOMAIN_GPUS.get(gpu.name, gpu.max_per_node)
    return gpu.intra_node_bw_gbps if gpus <= domain else min(gpu.intra_node_bw_gbps, INTER_NODE_GBPS)
