"""Which precisions a GPU serves, at which peak: fp4 is native on Blackwell and weight-only (vLLM's FP4 Marlin) on
older NVIDIA GPUs with bf16; nothing serves it on a T4 or an AMD GPU. fp8 likewise: native from Ada and Hopper on,
weight-only (FP8 Marlin) on Ampere, refused on a T4 or a V100."""

import pytest

from servewise.perf import (
    ANALYTICAL_PARAMS,
    BYTES_PER_PARAM,
    build_step_model,
    peak_tflops,
    unsupported_reason,
)
from servewise.perf._precision import weight_only
from servewise.types import Precision
from tests.factories import packaged_gpu, packaged_model


def test_fp4_is_native_on_blackwell():
    b200 = packaged_gpu("B200")
    assert not weight_only(b200, Precision.fp4)
    assert b200.fp4_tflops is not None and peak_tflops(b200, Precision.fp4) == b200.fp4_tflops


WEIGHT_ONLY = [
    *((Precision.fp4, name) for name in ("H100-SXM", "H200", "A100-80GB-SXM", "L40S", "L4")),
    *((Precision.fp8, name) for name in ("A100-80GB-SXM", "A100-40GB-SXM", "A10G")),
]


@pytest.mark.parametrize(("precision", "name"), WEIGHT_ONLY)
def test_weight_only_formats_run_at_the_16_bit_peak_without_native_tensor_cores(precision, name):
    """fp4 on pre-Blackwell NVIDIA GPUs with bf16 (FP4 Marlin), fp8 on Ampere (FP8 Marlin)."""
    gpu = packaged_gpu(name)
    assert unsupported_reason(gpu, precision) is None
    assert weight_only(gpu, precision)
    assert peak_tflops(gpu, precision) == gpu.bf16_tflops


def test_weight_only_fp4_streams_4_bit_weights_and_computes_at_16_bit():
    model, gpu = packaged_model("Llama-3.1-70B"), packaged_gpu("H100-SXM")
    fp4 = build_step_model(model, gpu, 4, Precision.fp4, ANALYTICAL_PARAMS)
    bf16 = build_step_model(model, gpu, 4, Precision.bf16, ANALYTICAL_PARAMS)
    assert fp4.flops_per_s == bf16.flops_per_s
    ratio = BYTES_PER_PARAM[Precision.fp4] / BYTES_PER_PARAM[Precision.bf16]
    assert fp4.dense_weight_bytes < bf16.dense_weight_bytes * (ratio + 0.02)  # 16-bit LM head aside


@pytest.mark.parametrize("name", ["T4", "MI300X"])  # no bf16 (compute capability 7.5); not NVIDIA
def test_fp4_is_refused_where_no_kernel_serves_it(name):
    reason = unsupported_reason(packaged_gpu(name), Precision.fp4)
    assert reason is not None and reason.startswith(
        f"{name} has no fp4 tensor cores and no weight-only fp4 kernels"
    )


@pytest.mark.parametrize("name", ["H100-SXM", "L4", "L40S", "MI300X"])
def test_fp8_is_native_where_the_gpu_has_fp8_tensor_cores(name):
    gpu = packaged_gpu(name)
    assert not weight_only(gpu, Precision.fp8)
    assert gpu.fp8_tflops is not None and peak_tflops(gpu, Precision.fp8) == gpu.fp8_tflops


def test_weight_only_fp8_halves_the_weight_stream_and_keeps_the_16_bit_math():
    """What W8A16 buys on an A100: a decode step (memory-bound) reads half the weights; the GEMM peak is bf16."""
    model, gpu = packaged_model("Llama-3.1-8B"), packaged_gpu("A100-80GB-SXM")
    fp8 = build_step_model(model, gpu, 1, Precision.fp8, ANALYTICAL_PARAMS)
    bf16 = build_step_model(model, gpu, 1, Precision.bf16, ANALYTICAL_PARAMS)
    assert fp8.flops_per_s == bf16.flops_per_s
    assert fp8.dense_weight_bytes < 0.55 * bf16.dense_weight_bytes  # the 16-bit LM head aside


@pytest.mark.parametrize("name", ["T4", "V100-SXM2-32GB"])
def test_fp8_is_refused_without_marlin(name):
    reason = unsupported_reason(packaged_gpu(name), Precision.fp8)
    assert reason is not None and reason.startswith(
        f"{name} has no fp8 tensor cores and no weight-only fp8 kernels"
    )
