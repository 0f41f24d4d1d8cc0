"""The vLLM command line of one plan option: the settings the plan's numbers assumed, written as engine flags.

Flag names are vLLM's (``vllm serve --help``; docs.vllm.ai "Engine Arguments"). The model is the first positional
argument: ``vllm serve --model`` has been deprecated since v0.20.0 ("you should provide the model as a positional
argument", vllm-project/vllm#39518) and will be removed.

    <model> --tensor-parallel-size tp --max-model-len L --max-num-seqs S --max-num-batched-tokens B
            --gpu-memory-utilization u [--block-size b] --dtype d [--quantization fp8] [--kv-cache-dtype fp8]
            [--enable-prefix-caching] --port 8000

``L`` is the plan's ``perf.memory.max_model_len`` (p99.9 prompt + p99.9 output of the workload, rounded up to 256,
see ``planner.max_model_len``): the KV-cache sizing the SLO predictions rest on. S, B, u, b are the option's
``candidate.engine``. A CPU replica drops the GPU-only ``--gpu-memory-utilization`` and ``--block-size`` (the CPU
backend sizes its cache from ``VLLM_CPU_KVCACHE_SPACE``).

``--block-size`` is written only when the plan's block differs from ``VLLM_DEFAULT_BLOCK_SIZE_TOKENS`` (16): vLLM's
``--block-size`` defaults to None and the platform then picks it (16 for standard attention on CUDA, 64 or 128
for the MLA kernels FlashMLA / CUTLASS MLA, a computed size for hybrid Mamba models; vllm-project/vllm#24692,
#25478, #24486). Forcing 16 would override that choice for DeepSeek-style models; the plan's 16 is the assumption
"vLLM's default", so leaving the flag out keeps the deployment on the engine the plan assumed.

Prefix caching: ``--enable-prefix-caching`` when the workload has ``prefix_share > 0`` (the plan skipped that
share of prefill, so the deployment needs the cache). With no sharing the flag is left out and vLLM's own default
applies (prefix caching on in the V1 engine, off where a model does not support it): the plan counted no cache
hits, so any hit only makes the real replica faster than planned; forcing ``--no-enable-prefix-caching`` would
throw away shared system prompts the workload model did not describe.

Precision (``candidate.precision``) against the checkpoint the catalog names (``candidate.hf_id``):

    bf16 / fp16   16-bit checkpoint      --dtype bfloat16 / float16
    fp8           16-bit checkpoint      --quantization fp8 (vLLM's dynamic per-tensor fp8 W8A8 at load)
    fp8           fp8 checkpoint         nothing: vLLM reads the checkpoint's quantization_config
    int4 / fp4    matching checkpoint    nothing, as above
    other pairs   -                      an error: no on-the-fly conversion exists; pass ``model_id`` (a
                                         pre-quantised export) or choose another option

The catalog's checkpoints are 16-bit except those in ``NATIVE_CHECKPOINT_PRECISION`` (sources there). With a
``model_id`` override the checkpoint is the user's: no ``--quantization`` flag is written, its own
``quantization_config`` decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from servewise.errors import UsageError

__all__ = [
    "NATIVE_CHECKPOINT_PRECISION",
    "VLLM_CPU_IMAGE",
    "VLLM_DEFAULT_BLOCK_SIZE_TOKENS",
    "VLLM_IMAGE",
    "VLLM_PORT",
    "EngineArgs",
    "engine_args",
]

VLLM_IMAGE = "vllm/vllm-openai:v0.31.0"
"""vLLM's GPU image, pinned. v0.31.0 was the newest release seen in public deployment files when this was written
(2026-11-25; e.g. images ``vllm/vllm-openai:v0.31.0`` in repositories dated 2026-10; v0.30.0 was "on Docker Hub,
checked 2026-09-26"). Override with ``image=`` / ``--image``."""

VLLM_CPU_IMAGE = "vllm/vllm-openai-cpu:v0.31.0-x86_64"
"""vLLM's x86-64 CPU image (docs.vllm.ai, CPU installation:
``docker pull vllm/vllm-openai-cpu:v${VLLM_VERSION}-x86_64``; older releases went to
``public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo``). Same version as ``VLLM_IMAGE``; every CPU instance in the
catalog is x86-64 (Intel Xeon Platinum 8488C)."""

VLLM_DEFAULT_BLOCK_SIZE_TOKENS = 16
"""The KV block the plan assumes when it assumes vLLM's default (CUDA standard attention); see the module
docstring for why the flag is omitted at this value."""

VLLM_PORT = 8000
"""vLLM's default API port; /health, /metrics and /v1/* are all served on it."""

NATIVE_CHECKPOINT_PRECISION: dict[str, str] = {
    # config.json quantization_config quant_method "fp8" (block-wise fp8 weights as released)
    "deepseek-ai/DeepSeek-V3": "fp8",
    "deepseek-ai/DeepSeek-R1": "fp8",
    # MiniMax-M2 family: attention and expert weights float8_e4m3fn + weight_scale_inv, as released
    "MiniMaxAI/MiniMax-M2.5": "fp8",
    # gpt-oss: MoE weights released in MXFP4 (4-bit with shared scales): the plan's "fp4"
    "openai/gpt-oss-20b": "fp4",
    "openai/gpt-oss-120b": "fp4",
}
"""Catalog checkpoints that are not 16-bit as published (Hugging Face config.json ``quantization_config``); every
other catalog checkpoint is treated as 16-bit. A fact about checkpoints that belongs in the catalog's model rows:
kept here until the catalog has a column for it."""

_DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True, slots=True)
class EngineArgs:
    """The vLLM flags of one replica, and the facts they were made from (for the README and the checks)."""

    args: tuple[str, ...]
    """Everything after ``vllm serve``: the model first, then flags."""
    quantization: str | None
    kv_cache_dtype: str
    dtype: str | None
    prefix_caching: bool
    checkpoint_precision: str
    """Precision of the checkpoint loaded (``bf16`` for a 16-bit one)."""


def _precision_flags(precision: str, hf_id: str, overridden: bool) -> tuple[list[str], str | None, str]:
    """(flags, quantization, checkpoint precision) for serving ``precision`` from ``hf_id``."""
    if overridden:
        dtype = _DTYPE.get(precision)
        return (["--dtype", dtype] if dtype else []), None, precision
    native = NATIVE_CHECKPOINT_PRECISION.get(hf_id, "bf16")
    if precision in _DTYPE and native == "bf16":
        return ["--dtype", _DTYPE[precision]], None, native
    if precision == native:
        return [], None, native
    if precision == "fp8" and native == "bf16":
        return ["--quantization", "fp8"], "fp8", native
    need = {"int4": "a W4A16 (AWQ/GPTQ)", "fp4": "an NVFP4"}.get(precision, f"a {precision}")
    raise UsageError(
        f"this option serves {precision} weights but {hf_id} is a {native} checkpoint and vLLM cannot convert it "
        f"at load time; pass {need} export of the same model as --model-id, or choose an option with another "
        "precision (--option N), or re-plan with --precision bf16 --precision fp8"
    )


def engine_args(
    *,
    hf_id: str,
    precision: str,
    tp: int,
    engine: dict[str, float],
    max_model_len: int,
    prefix_share: float,
    cpu: bool,
    model_id: str | None = None,
) -> EngineArgs:
    """vLLM flags for one option (``engine`` is the plan's ``candidate.engine``; formulas in the module docstring)."""
    served = model_id or hf_id
    flags, quantization, checkpoint = _precision_flags(precision, hf_id, model_id is not None)
    kv_fp8 = int(engine["kv_cache_bytes_per_element"]) == 1
    args = [
        served,
        "--tensor-parallel-size",
        str(tp),
        "--max-model-len",
        str(max_model_len),
        "--max-num-seqs",
        str(int(engine["max_num_seqs"])),
        "--max-num-batched-tokens",
        str(int(engine["max_num_batched_tokens"])),
    ]
    if not cpu:
        args += ["--gpu-memory-utilization", f"{float(engine['gpu_memory_utilization']):g}"]
        block_size_tokens = int(engine["block_size_tokens"])
        if block_size_tokens != VLLM_DEFAULT_BLOCK_SIZE_TOKENS:
            args += ["--block-size", str(block_size_tokens)]
    args += flags
    if kv_fp8:
        args += ["--kv-cache-dtype", "fp8"]
    if prefix_share > 0:
        args.append("--enable-prefix-caching")
    args += ["--port", str(VLLM_PORT)]
    dtype = flags[1] if flags[:1] == ["--dtype"] else None
    return EngineArgs(
        args=tuple(args),
        quantization=quantization,
        kv_cache_dtype="fp8" if kv_fp8 else "auto",
        dtype=dtype,
        prefix_caching=prefix_share > 0,
        checkpoint_precision=checkpoint,
    )
