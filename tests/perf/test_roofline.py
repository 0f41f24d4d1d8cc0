import dataclasses

import pytest

from servewise.perf import ANALYTICAL_PARAMS, build_step_model
from servewise.perf._params import ModelFactors
from servewise.types import Precision
from tests.factories import accelerator, model, packaged_gpu, packaged_model


def test_decode_step_by_hand_is_bandwidth_bound():
    step = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    # 10 decodes at 1,000 tokens of context:
    # FLOPs = 2 x 9.98e9 x 10 + 2 x 1e7 x 10 + 4 x 10 x 1000 x 10,000 = 2.002e11 -> 2.86 ms at 70 TFLOP/s
    # bytes = 20e9 weights - 2e7 input embedding (a lookup, not streamed) + 32,000 x (10,000 + 10) = 20.30032e9
    # -> 27.067 ms at 750 GB/s; + 1 ms step overhead
    t = step.step_time_s(tokens=10, sampled_seqs=10, attn_pairs=10_000, kv_read_tokens=10_000)
    assert t == pytest.approx(20.30032e9 / 7.5e11 + 1e-3)


def test_prefill_step_by_hand_is_compute_bound():
    step = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    # one 8,000-token prefill: FLOPs = 2 x 9.98e9 x 8000 + 2e7 + 4e4 x 8000 x 4000 = 1.6096e14 + 2e7
    flops = 2 * 9.98e9 * 8000 + 2e7 + 40_000 * 8000 * 4000
    t = step.step_time_s(tokens=8000, sampled_seqs=1, attn_pairs=8000 * 4000, kv_read_tokens=0)
    assert t == pytest.approx(flops / 7e13 + 1e-3)


def test_tensor_parallel_splits_work_and_adds_all_reduces():
    step = build_step_model(model(), accelerator(), 2, Precision.bf16, ANALYTICAL_PARAMS)
    assert step.allreduce_fixed_s == pytest.approx(20 * 20e-6)  # 2 per layer x 10 layers
    # per token: 20 x 2(2-1)/2 x 1000 x 2 bytes / (400e9 / 2 x 0.7)
    assert step.allreduce_s_per_token == pytest.approx(20 * 1000 * 2 / 1.4e11)
    assert step.dense_weight_bytes == pytest.approx((20e9 - 2e7) / 2)


def test_fp8_uses_fp8_peak_and_halves_weight_traffic():
    bf16 = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    fp8 = build_step_model(model(), accelerator(), 1, Precision.fp8, ANALYTICAL_PARAMS)
    assert fp8.flops_per_s == 2 * bf16.flops_per_s
    assert fp8.dense_weight_bytes < 0.52 * bf16.dense_weight_bytes


def test_moe_reads_only_the_experts_a_step_touches():
    qwen = packaged_model("Qwen3-30B-A3B")  # 128 experts, top-8
    step = build_step_model(qwen, packaged_gpu("H100-SXM"), 1, Precision.bf16, ANALYTICAL_PARAMS)
    assert step.expert_fraction(1) == pytest.approx(8 / 128)
    assert step.expert_fraction(16) == pytest.approx(1 - (1 - 8 / 128) ** 16)
    # routed experts from total/active params: (30.5 - 3.3) / (1 - 1/16) = 29.01B of the 30.5B
    assert step.expert_weight_bytes == pytest.approx((30.5 - 3.3) / (1 - 8 / 128) * 1e9 * 2)
    one = step.step_time_s(tokens=1, sampled_seqs=1, attn_pairs=1000, kv_read_tokens=1000)
    many = step.step_time_s(tokens=256, sampled_seqs=256, attn_pairs=256_000, kv_read_tokens=256_000)
    assert one < many


def test_analytical_step_is_near_a_measured_row_as_a_sanity_check():
    # Not a fit (issue #4 reports held-out accuracy): NVIDIA's TensorRT-LLM row for Llama-3.1-8B bf16 on one
    # H100, 1024->512 at 8 concurrent requests, measured 7.42 ms per output token (calibration.csv).
    step = build_step_model(
        packaged_model("Llama-3.1-8B"), packaged_gpu("H100-SXM"), 1, Precision.bf16, ANALYTICAL_PARAMS
    )
    t = step.step_time_s(tokens=8, sampled_seqs=8, attn_pairs=8 * 1280, kv_read_tokens=8 * 1280)
    assert 0.7 * 7.42e-3 < t < 1.3 * 7.42e-3


def test_efficiencies_scale_the_roof():
    slower = dataclasses.replace(ANALYTICAL_PARAMS, bandwidth_efficiency=0.375)
    a = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    b = build_step_model(model(), accelerator(), 1, Precision.bf16, slower)
    args = {"tokens": 1, "sampled_seqs": 1, "attn_pairs": 0, "kv_read_tokens": 0}
    assert b.step_time_s(**args) - 1e-3 == pytest.approx(2 * (a.step_time_s(**args) - 1e-3))


def test_frontend_overhead_grows_with_the_clients_of_a_closed_loop():
    params = dataclasses.replace(
        ANALYTICAL_PARAMS,
        request_overhead_s=0.02,
        client_overhead_s_per_client=1e-3,
        prompt_overhead_s_per_token=1e-5,
        client_prompt_overhead_s_per_token=1e-7,
    )
    alone = build_step_model(model(), accelerator(), 1, Precision.bf16, params)
    loaded = build_step_model(model(), accelerator(), 1, Precision.bf16, params, clients=64)
    assert alone.request_overhead_s == pytest.approx(0.02)  # open loop: client count unknown, no term
    assert loaded.request_overhead_s == pytest.approx(0.02 + 64 * 1e-3)  # 20 ms + 64 x 1 ms = 84 ms
    assert alone.prompt_overhead_s_per_token == pytest.approx(1e-5)
    assert loaded.prompt_overhead_s_per_token == pytest.approx(1e-5 + 64 * 1e-7)  # 10 µs + 6.4 µs per token


def test_attention_runs_at_the_16_bit_peak_whatever_the_weights():
    # fp8 weights double the GEMM peak (200 vs 100 TFLOP/s) but attention stays 16-bit: 4e4 FLOPs per pair
    # x 1e6 pairs = 4e10 FLOPs at 100 x 0.7 TFLOP/s = 0.571 ms in both
    bf16 = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    fp8 = build_step_model(model(), accelerator(), 1, Precision.fp8, ANALYTICAL_PARAMS)
    for step in (bf16, fp8):
        attention_only = step.compute_s(0, 0, 1e6)
        assert attention_only == pytest.approx(4e10 / 7e13)
    assert fp8.compute_s(1000, 1, 0) == pytest.approx(bf16.compute_s(1000, 1, 0) / 2)


def test_routed_experts_run_at_their_own_efficiency():
    qwen = packaged_model("Qwen3-30B-A3B")
    gpu = packaged_gpu("H100-SXM")
    slow = dataclasses.replace(ANALYTICAL_PARAMS, moe_compute_efficiency=0.07)
    a = build_step_model(qwen, gpu, 1, Precision.bf16, ANALYTICAL_PARAMS)
    b = build_step_model(qwen, gpu, 1, Precision.bf16, slow)
    assert a.expert_flops_per_token > 0 and a.linear_flops_per_token > 0
    # active routed experts: k/E of the routed weights, the rest of the active linear weights are dense
    routed_active = (30.5 - 3.3) / (1 - 8 / 128) * 8 / 128 * 1e9
    assert a.expert_flops_per_token == pytest.approx(2 * routed_active)
    assert gpu.bf16_tflops is not None
    assert b.compute_s(1000, 0, 0) - a.compute_s(1000, 0, 0) == pytest.approx(
        2 * routed_active * 1000 / (gpu.bf16_tflops * 1e12) * (1 / 0.07 - 1 / 0.7)
    )


def test_expert_all_to_all_only_when_tokens_move_between_gpus():
    qwen = packaged_model("Qwen3-30B-A3B")
    gpu = packaged_gpu("H100-SXM")
    tensor = build_step_model(qwen, gpu, 4, Precision.bf16, ANALYTICAL_PARAMS)
    expert = build_step_model(qwen, gpu, 4, Precision.bf16, ANALYTICAL_PARAMS, expert_parallel=True)
    attention_dp = build_step_model(qwen, gpu, 2, Precision.bf16, ANALYTICAL_PARAMS, dp=2)
    # the per-MoE-layer fixed cost (routing, permutation, launches) is paid either way ...
    assert tensor.moe_layers_split == expert.moe_layers_split == qwen.num_layers
    # ... but only expert parallelism (or attention DP) sends each token's hidden state to its experts
    assert expert.allreduce_s_per_token > tensor.allreduce_s_per_token
    assert attention_dp.comm_s_per_token_at_full_link > 0


def test_a_model_correction_is_folded_into_every_coefficient():
    factors = ModelFactors(model().name, 1.5, 2.0, 40, "40 rows")
    params = dataclasses.replace(ANALYTICAL_PARAMS, request_overhead_s=0.02, model_corrections=(factors,))
    plain = build_step_model(model(), accelerator(), 2, Precision.bf16, ANALYTICAL_PARAMS)
    fixed = build_step_model(model(), accelerator(), 2, Precision.bf16, params)
    decode = {"tokens": 8, "sampled_seqs": 8, "attn_pairs": 8000, "kv_read_tokens": 8000}
    prefill = {"tokens": 2000, "sampled_seqs": 1, "attn_pairs": 2000 * 1000, "kv_read_tokens": 0}
    assert fixed.step_time_s(**decode) == pytest.approx(1.5 * plain.step_time_s(**decode))
    assert fixed.step_time_s(**prefill) == pytest.approx(1.5 * 2.0 * plain.step_time_s(**prefill))
    assert fixed.decode_run_s(8, 8000, 50) == pytest.approx(1.5 * plain.decode_run_s(8, 8000, 50))
    assert fixed.request_overhead_s == pytest.approx(2.0 * 0.02)
    assert "x1.5 step time" in fixed.correction and "40 rows" in fixed.correction
    other = build_step_model(
        dataclasses.replace(model(), name="another"), accelerator(), 2, Precision.bf16, params
    )
    assert other.correction == "" and other.step_time_factor == 1.0


# -- sliding-window layers -----------------------------------------------------------------------------------

WINDOWED = model(sliding_window_tokens=1000, sliding_layers=4)  # 4 of 10 layers attend to 1,000 keys at most


def test_a_sliding_window_caps_what_its_layers_read():
    step = build_step_model(WINDOWED, accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    assert (step.window_tokens, step.window_share) == (1000.0, 0.4)
    assert step.context_tokens(800) == 800  # inside the window every layer reads the whole context
    # at 5,000 tokens: 6 global layers read 5,000, 4 windowed ones 1,000 -> 0.6 x 5000 + 0.4 x 1000 all-layer tokens
    assert step.context_tokens(5000) == pytest.approx(3400)
    # a 2,000-token chunk after 3,000 cached: global layers 2000 x 4000 pairs, windowed ones 2000 x 1000
    assert step.chunk_pairs(3000, 2000) == pytest.approx(0.6 * 2000 * 4000 + 0.4 * 2000 * 1000)
    # a chunk from 0 to 1,500: windowed layers 1000²/2 inside the window, then 500 x 1000
    assert step.chunk_pairs(0, 1500) == pytest.approx(0.6 * 1500**2 / 2 + 0.4 * (1000**2 / 2 + 500 * 1000))
    # pairs add up over consecutive chunks, as the integral they are
    assert step.chunk_pairs(0, 700) + step.chunk_pairs(700, 2300) == pytest.approx(step.chunk_pairs(0, 3000))


def test_without_window_facts_every_layer_attends_to_the_whole_context():
    step = build_step_model(model(), accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    assert step.window_share == 0.0
    assert step.context_tokens(50_000) == 50_000
    assert step.chunk_pairs(3000, 2000) == 2000 * (3000 + 2000 / 2)


def test_the_packaged_gpt_oss_reads_half_its_kv_at_long_context():
    step = build_step_model(
        packaged_model("gpt-oss-120b"), packaged_gpu("H100-SXM"), 1, Precision.fp8, ANALYTICAL_PARAMS
    )
    assert (step.window_tokens, step.window_share) == (128.0, 0.5)
    assert step.context_tokens(9000) == pytest.approx(9000 / 2 + 128 / 2)


def test_a_decode_run_grows_by_the_given_growth():
    step = build_step_model(WINDOWED, accelerator(), 1, Precision.bf16, ANALYTICAL_PARAMS)
    run = step.decode_run_s(10, 30_000, 50, growth=6.0)
    each = sum(
        step.step_time_s(tokens=10, sampled_seqs=10, attn_pairs=30_000 + 6 * i, kv_read_tokens=30_000 + 6 * i)
        for i in range(50)
    )
    assert run == pytest.approx(each, rel=1e-12)
    assert step.decode_run_s(10, 30_000, 50) > run  # the default growth is one token per decode
