"""Efficiency parameters of the step-time model: what fraction of the datasheet peaks an engine reaches.

These are the numbers ``calibrate`` fits to measured rows. Until a fit exists for a (GPU, backend, precision), the
analytical defaults below apply and every estimate built on them says ``provenance = analytical``.

Analytical defaults and where they come from:
    compute_efficiency   0.70   large-M GEMMs reach ~65–75 % of dense tensor peak on Hopper/Ada (cuBLAS/CUTLASS)
    moe_compute_efficiency 0.70 the routed experts' grouped GEMMs; the fit separates them from the dense GEMMs
                                because each expert sees only T·k/E of a step's T tokens (small-M GEMMs run far
                                below peak), which no single efficiency can describe for dense and MoE models alike
    attention_efficiency 0.70   attention (FlashAttention/FlashInfer/MLA kernels) against the 16-bit tensor peak:
                                attention runs in 16-bit even when the weights are fp8/fp4, so it must not be
                                costed at the quantised GEMM peak (4x too fast at fp4)
    bandwidth_efficiency 0.75   decode kernels stream weights/KV at ~70–80 % of HBM peak
    step_overhead_s      1.0 ms per engine step: scheduling, sampling, launch gaps (vLLM V1 with CUDA graphs)
    allreduce_latency_s  20 µs  per tensor-parallel all-reduce of a small message (NCCL / custom all-reduce, NVLink)
    allreduce_efficiency 0.70   of the per-direction link bandwidth for large all-reduces (and MoE all-to-all)
    layer_overhead_s     0      per transformer layer per step: kernel launches that CUDA graphs do not hide; the
                                analytical default folds it into the step overhead, the fit separates them
    prefill_layer_overhead_s 0  per layer per step that carries prompt tokens: engines replay CUDA graphs only for
                                decode batches and run prefill/mixed steps eagerly (SGLang's extend batches,
                                TensorRT-LLM's context phase), paying per-layer launch and host work on every one
    moe_dispatch_s       20 µs  per MoE layer per step when tokens move between GPUs for the experts (expert
                                parallelism, or attention data parallelism): the dispatch/combine all-to-all's
                                fixed latency (token bytes are costed separately); tensor-parallel experts need
                                none, their output joins the layer's all-reduce
    overlap_penalty      0      share of the smaller of a step's compute and memory times that does not overlap
                                the larger: t = max(c, m) + γ·min(c, m); 0 is the ideal roofline, 1 runs them one
                                after the other (engines that run prefill and decode kernels back to back)
    dp_dispatch_s        0      per split MoE layer per step under attention data parallelism, on top of
                                ``moe_dispatch_s``: every rank waits at each layer's dispatch and combine for the
                                slowest one (its batch and its experts' load differ)
    prompt_overhead_s_per_token 0  frontend time per prompt token on TTFT (tokenisation, request transfer)
    client_overhead_s_per_client 0  frontend time on TTFT per concurrent client of a closed-loop benchmark (the
                                HTTP server and the client share one event loop each; their per-request work
                                grows with the requests in flight); applied where the client count is known
    client_prompt_overhead_s_per_token 0  the same per client and prompt token: an empirical term for frontend and
                                scheduling work that grows with both the wave size and the prompt length (the fit
                                finds 0.3–1 ns, far below a tokeniser's cost, so it is not tokenisation alone)
    request_overhead_s   5 ms   per request on the time to first token: HTTP, tokenisation and hand-off between the
                                OpenAI server and the engine core (vLLM runs them in separate processes)
Sanity check, not a fit: Llama-3.1-8B bf16 on one H100 at 8 concurrent requests predicts 7.5 ms per output token;
NVIDIA's measured TensorRT-LLM row (calibration.csv, 1024→512, c=8) is 7.4 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.types import Provenance

__all__ = ["ANALYTICAL_PARAMS", "ModelFactors", "StepParams"]


@dataclass(frozen=True, slots=True)
class StepParams:
    compute_efficiency: float
    bandwidth_efficiency: float
    step_overhead_s: float
    allreduce_latency_s: float
    allreduce_efficiency: float
    request_overhead_s: float
    provenance: Provenance
    basis: str
    """What the parameters rest on: "analytical defaults" or the fitted rows' description."""
    layer_overhead_s: float = 0.0
    moe_dispatch_s: float = 20e-6
    moe_compute_efficiency: float = 0.70
    attention_efficiency: float = 0.70
    prefill_layer_overhead_s: float = 0.0
    overlap_penalty: float = 0.0
    dp_dispatch_s: float = 0.0
    prompt_overhead_s_per_token: float = 0.0
    client_overhead_s_per_client: float = 0.0
    client_prompt_overhead_s_per_token: float = 0.0
    model_corrections: tuple[ModelFactors, ...] = ()
    """Per-model corrections fitted with these parameters (``_correction``); ``build_step_model`` applies the
    one of the model it builds, so every prediction path (predict, plan, simulate, accuracy) carries it."""

    def correction_for(self, model: str) -> ModelFactors | None:
        return next((c for c in self.model_corrections if c.model == model), None)


@dataclass(frozen=True, slots=True)
class ModelFactors:
    """One model's correction on top of the shared efficiencies: every step of it lasts ``step_time_factor``
    times the roofline step, a step that carries prompt tokens ``prefill_factor`` times that again, and its frontend
    overheads (per request, per prompt token) ``prefill_factor`` times the fitted ones. ``rows`` measured rows on
    other configurations support it; ``basis`` says which."""

    model: str
    step_time_factor: float
    prefill_factor: float
    rows: int
    basis: str = ""


ANALYTICAL_PARAMS = StepParams(
    compute_efficiency=0.70,
    bandwidth_efficiency=0.75,
    step_overhead_s=1.0e-3,
    allreduce_latency_s=20e-6,
    allreduce_efficiency=0.70,
    request_overhead_s=5e-3,
    provenance=Provenance.analytical,
    basis="analytical defaults (datasheet peaks x typical efficiencies; see docs/perf-model.md)",
)
