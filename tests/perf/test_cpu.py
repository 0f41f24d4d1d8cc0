"""The CPU step model against hand-computed numbers: decode is bandwidth-bound, prefill compute-bound."""

from __future__ import annotations

import dataclasses

import pytest

from servewise.catalog import CpuSpec
from servewise.perf import (
    CPU_ANALYTICAL_PARAMS,
    CpuParams,
    RequestShape,
    build_cpu_step_model,
    cpu_memory_plan,
    cpu_unsupported_reason,
    estimate_cpu_replica,
)
from servewise.types import Precision, Provenance
from tests.factories import model


def cpu(**overrides: object) -> CpuSpec:
    """A c7i.2xlarge-like slice: 4 of 48 cores, 25.6 GB/s, 9.8304 TFLOP/s bf16 (round numbers of the catalog row)."""
    base = CpuSpec(
        provider="aws",
        instance_type="c7i.2xlarge",
        cpu_model="Test Xeon",
        vcpus=8,
        physical_cores=4,
        socket_cores=48,
        socket_memory_bw_gbps=307.2,
        memory_bw_gbps=25.6,
        bf16_tflops=9.8304,
        int8_tops=19.6608,
        isa="avx512+amx_bf16+amx_int8",
        source="test",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def llama_1b() -> object:
    """Llama-3.2-1B as in models.csv: 1.24B params, 16 layers, hidden 2048, 32 heads x 64, vocab 128256."""
    return model(
        name="Llama-3.2-1B",
        params_b=1.24,
        active_params_b=1.24,
        num_layers=16,
        hidden_size=2048,
        intermediate_size=8192,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=64,
        vocab_size=128_256,
        max_context=131_072,
        kv_bytes_per_token_fp16=32_768,  # 2 x 16 layers x 8 kv heads x 64 dims x 2 bytes
    )


def test_decode_of_a_1b_int4_model_is_bandwidth_bound():
    step = build_cpu_step_model(llama_1b(), cpu(), Precision.int4)  # type: ignore[arg-type]
    # embedding + LM head = 2 x 128256 x 2048 = 525,336,576 params, kept 16-bit
    # other weights: (1.24e9 - 525,336,576) x (0.5 + 2/128) = 714,663,424 x 0.515625 = 368,498,328 bytes
    # streamed per step: 368,498,328 + 525,336,576 x 2 - 525,336,576 (input embedding is a lookup) = 893,834,904
    assert step.dense_weight_bytes == pytest.approx(893_834_904)
    # one decode at context 1000 reads the weights + 1001 tokens of KV: 893,834,904 + 32,768 x 1001 = 926,635,672 B
    # at 25.6 GB/s x 0.5 = 12.8e9 B/s -> 72.393 ms, + 2 ms step overhead = 74.393 ms
    seconds = step.step_time_s(tokens=1, sampled_seqs=1, attn_pairs=1000, kv_read_tokens=1000)
    assert seconds == pytest.approx(0.074393, rel=1e-4)


def test_prefill_of_512_tokens_is_compute_bound_on_the_amx_peak():
    step = build_cpu_step_model(llama_1b(), cpu(), Precision.bf16)  # type: ignore[arg-type]
    # FLOPs = 2 x 714,663,424 x 512 + 2 x 128256 x 2048 + 4 x 16 x (32 x 64) x pairs, pairs = 512 x 256 = 131,072
    #       = 731,815,346,176 + 525,336,576 + 17,179,869,184 = 749,520,551,936
    # at 9.8304e12 x 0.2 = 1.96608e12 FLOP/s -> 0.381226 s (memory: 1.971e9 B / 12.8e9 = 0.154 s, smaller)
    seconds = step.step_time_s(tokens=512, sampled_seqs=1, attn_pairs=131_072, kv_read_tokens=0)
    assert seconds == pytest.approx(0.381226 + 0.002, rel=1e-4)


def test_more_bandwidth_means_proportionally_faster_decode():
    slow = build_cpu_step_model(llama_1b(), cpu(), Precision.int4)  # type: ignore[arg-type]
    fast = build_cpu_step_model(llama_1b(), cpu(memory_bw_gbps=51.2), Precision.int4)  # type: ignore[arg-type]
    kwargs = {"tokens": 1, "sampled_seqs": 1, "attn_pairs": 1000, "kv_read_tokens": 1000}
    # memory time halves (72.393 -> 36.197 ms); the 2 ms step overhead stays
    assert fast.step_time_s(**kwargs) == pytest.approx(0.0361967 + 0.002, rel=1e-4)
    assert slow.step_time_s(**kwargs) > fast.step_time_s(**kwargs)


@pytest.mark.parametrize("precision", [Precision.fp8, Precision.fp4])
def test_fp8_and_fp4_are_not_served_on_cpus(precision: Precision):
    reason = cpu_unsupported_reason(cpu(), precision)
    assert reason is not None and str(precision) in reason and "bf16 or int4" in reason
    with pytest.raises(ValueError, match="matrix units"):
        build_cpu_step_model(llama_1b(), cpu(), precision)  # type: ignore[arg-type]


def test_fp16_runs_as_bf16_and_a_cpu_without_bf16_units_is_refused():
    assert cpu_unsupported_reason(cpu(), Precision.fp16) is None
    assert "no bf16" in (cpu_unsupported_reason(cpu(bf16_tflops=None), Precision.bf16) or "")


def test_memory_plan_counts_host_ram_and_names_what_does_not_fit():
    plan = cpu_memory_plan(
        llama_1b(),  # type: ignore[arg-type]
        cpu(),
        16.0,
        Precision.int4,
        mean_seq_tokens=384,
        max_model_len=512,
    )
    # budget 16 x 0.9 = 14.4 GB; weights 1.419 GB; reserve 2 GB; activations:
    # 2048 x (2 x 8192 + 4 x 2048) x 2 + 256 x 128256 x 4 = 100,663,296 + 131,334,144 = 231,997,440 B
    assert plan.fits and plan.budget_gb == pytest.approx(14.4)
    assert plan.weights_gb == pytest.approx(1.419171480)
    assert plan.kv_cache_gb == pytest.approx(14.4 - 1.419171480 - 0.231997440 - 2.0)
    big = cpu_memory_plan(
        model(params_b=32.8, active_params_b=32.8),  # a 32B model in bf16 needs ~65.6 GB
        cpu(),
        16.0,
        Precision.bf16,
        mean_seq_tokens=384,
        max_model_len=512,
    )
    assert not big.fits and "weights need 65.6 GB" in big.reason and "c7i.2xlarge" in big.reason


def test_a_tight_itl_target_is_rejected_as_too_slow_on_cpu():
    shape = RequestShape(256, 128, (256,) * 4, (128,) * 4)  # type: ignore[arg-type]
    memory = cpu_memory_plan(
        llama_1b(),  # type: ignore[arg-type]
        cpu(),
        16.0,
        Precision.int4,
        mean_seq_tokens=384,
        max_model_len=512,
    )
    estimate, rejection, _ = estimate_cpu_replica(
        llama_1b(),  # type: ignore[arg-type]
        cpu(),
        Precision.int4,
        shape=shape,
        targets={"itl_p95_ms": 50.0},
        memory=memory,
    )
    # an idle replica decodes at ~72.4 ms (weights) + KV + 2 ms per token: more than 50 ms
    assert estimate is None and rejection is not None
    assert rejection.reason.startswith("too slow on CPU: itl_p95_ms 7")
    assert "> 50 ms" in rejection.reason
    relaxed, _, _ = estimate_cpu_replica(
        llama_1b(),  # type: ignore[arg-type]
        cpu(),
        Precision.int4,
        shape=shape,
        targets={"itl_p95_ms": 150.0},
        memory=memory,
    )
    assert relaxed is not None and relaxed.provenance is Provenance.analytical
    assert relaxed.max_qps_per_replica > 0 and relaxed.itl.p95_ms <= 150.0


def test_cpu_params_reject_efficiencies_outside_zero_to_one():
    assert CPU_ANALYTICAL_PARAMS.provenance is Provenance.analytical
    with pytest.raises(ValueError, match="bandwidth efficiency"):
        CpuParams(bandwidth_efficiency=1.5)
    with pytest.raises(ValueError, match="compute efficiency"):
        CpuParams(compute_efficiency=0.0)
