"""Bytes per weight and peak throughput for each precision on each accelerator.

Bytes per parameter (weights only; scales included):
    bf16  2.0                 (fp16 likewise)
    fp8   1.0                 per-channel/tensor scales are negligible
    int4  0.5 + 2/128         W4A16 (AWQ/GPTQ): 4-bit weights + one fp16 scale per group of 128
    fp4   0.5 + 1/16          NVFP4: 4-bit weights + one fp8 (E4M3) scale per block of 16
Embeddings and the LM head stay in 16-bit in every quantised checkpoint we model.

Peak used for the GEMMs: bf16 → bf16 tensor cores; fp16 → fp16 tensor cores; fp8 → fp8 tensor cores (W8A8)
where the GPU has them, else weight-only (``weight_only``); int4 → 16-bit tensor cores (weights dequantised on the
fly); fp4 → fp4 tensor cores (W4A4, Blackwell), or weight-only on an NVIDIA GPU without them.

Why weight-only: vLLM serves FP8 checkpoints on NVIDIA GPUs without fp8 tensor cores (Ampere: A100, A10G, A40) as
W8A16 with its FP8 Marlin kernels (vllm-project/vllm#5975, 2024; MoE experts too since #18026, 2025), and NVFP4 and
MXFP4 checkpoints on GPUs without fp4 tensor cores with its FP4 Marlin kernels (gpt-oss's MXFP4 experts run that
way on Hopper). The weights stream at 8 or 4 bits, the math runs at the 16-bit peak. The benchmark set holds 56
weight-only fp4 rows (gpt-oss-120b, vLLM, H100) and no weight-only fp8 row. Marlin needs compute capability 8.0,
read from the catalog as "NVIDIA with bf16 tensor cores" (T4 and V100, 7.5 and 7.0, have none; vLLM's docs also
allow fp8 Marlin on Turing, which the catalog cannot tell from Volta, so it is not offered there).
"""

from __future__ import annotations

from servewise.catalog import Accelerator
from servewise.types import Precision

__all__ = [
    "BYTES_PER_PARAM",
    "peak_tflops",
    "serving_precision",
    "unsupported_reason",
    "weight_only",
]

BYTES_PER_PARAM: dict[Precision, float] = {
    Precision.bf16: 2.0,
    Precision.fp16: 2.0,
    Precision.fp8: 1.0,
    Precision.int4: 0.5 + 2 / 128,
    Precision.fp4: 0.5 + 1 / 16,
}

_WEIGHT_ONLY_VENDORS = frozenset({"NVIDIA", "AMD"})
"""Vendors whose vLLM builds ship W4A16 kernels (Marlin/Machete on NVIDIA, Triton/ExLlama on ROCm)."""


def _sixteen_bit_tflops(gpu: Accelerator) -> float | None:
    return gpu.bf16_tflops or gpu.fp16_tflops


def weight_only(gpu: Accelerator, precision: Precision) -> bool:
    """Does ``gpu`` serve ``precision`` (fp8 or fp4) as 8- or 4-bit weights with 16-bit math, for want of tensor
    cores of that format?"""
    if precision is Precision.fp8:
        return not gpu.fp8_tflops and _marlin_capable(gpu)
    return precision is Precision.fp4 and not gpu.fp4_tflops and _marlin_capable(gpu)


def _marlin_capable(gpu: Accelerator) -> bool:
    return gpu.vendor == "NVIDIA" and bool(gpu.bf16_tflops)


def peak_tflops(gpu: Accelerator, precision: Precision) -> float:
    """Dense peak TFLOP/s used for the GEMMs at ``precision``; raises ValueError if unsupported."""
    reason = unsupported_reason(gpu, precision)
    if reason:
        raise ValueError(reason)
    if precision is Precision.fp8 and not weight_only(gpu, precision):
        assert gpu.fp8_tflops is not None
        return gpu.fp8_tflops
    if precision is Precision.fp4 and not weight_only(gpu, precision):
        assert gpu.fp4_tflops is not None
        return gpu.fp4_tflops  # weight-only fp8 and fp4 fall through to the 16-bit peak below
    if precision is Precision.bf16:
        assert gpu.bf16_tflops is not None
        return gpu.bf16_tflops
    if precision is Precision.fp16 and gpu.fp16_tflops:
        return gpu.fp16_tflops
    sixteen = _sixteen_bit_tflops(gpu)
    assert sixteen is not None
    return sixteen


def serving_precision(gpu: Accelerator, precision: Precision) -> Precision:
    """The format ``gpu`` actually serves ``precision`` in: 16-bit weights run as fp16 where bf16 is missing."""
    if precision is Precision.bf16 and not gpu.bf16_tflops and gpu.fp16_tflops:
        return Precision.fp16
    return precision


def unsupported_reason(gpu: Accelerator, precision: Precision) -> str | None:
    """Why ``gpu`` cannot run ``precision`` (one line), or None when it can."""
    if _sixteen_bit_tflops(gpu) is None:
        return f"{gpu.name} has no 16-bit tensor throughput in the catalog"
    if precision is Precision.bf16 and not gpu.bf16_tflops:
        return f"{gpu.name} has no bf16 tensor cores (serve 16-bit weights as fp16)"
    if precision is Precision.fp8 and not gpu.fp8_tflops and not _marlin_capable(gpu):
        return (
            f"{gpu.name} has no fp8 tensor cores and no weight-only fp8 kernels "
            "(vLLM's need an NVIDIA GPU with bf16, Ampere or newer)"
        )
    if precision is Precision.fp4 and not gpu.fp4_tflops and not _marlin_capable(gpu):
        return (
            f"{gpu.name} has no fp4 tensor cores and no weight-only fp4 kernels "
            "(vLLM's need an NVIDIA GPU with bf16, Ampere or newer)"
        )
    if precision is Precision.int4 and gpu.vendor not in _WEIGHT_ONLY_VENDORS:
        return f"no int4 weight-only kernels for {gpu.vendor} {gpu.name}"
    return None
