import pytest

from servewise.perf import default_engine_settings, kv_bytes_per_token_per_gpu, memory_plan, weight_bytes
from servewise.types import Precision
from tests.factories import accelerator, model, packaged_gpu, packaged_model


def test_weights_by_precision_keep_embeddings_16_bit():
    m = model()  # 10e9 params, of which 2 x 10,000 x 1,000 = 2e7 embedding + LM head
    assert weight_bytes(m, Precision.bf16) == pytest.approx(20e9)
    assert weight_bytes(m, Precision.fp8) == pytest.approx((10e9 - 2e7) * 1.0 + 2e7 * 2)
    assert weight_bytes(m, Precision.int4) == pytest.approx((10e9 - 2e7) * (0.5 + 2 / 128) + 2e7 * 2)
    assert weight_bytes(m, Precision.fp4) == pytest.approx((10e9 - 2e7) * 0.5625 + 2e7 * 2)


def test_moe_keeps_every_expert_resident():
    mixtral = packaged_model("Mixtral-8x7B")
    assert weight_bytes(mixtral, Precision.bf16) == pytest.approx(46.7e9 * 2, rel=1e-9)


def test_kv_shards_over_tp_up_to_the_kv_heads_and_mla_replicates():
    m = model()  # 8 KV heads, 32,000 bytes per token
    assert kv_bytes_per_token_per_gpu(m, 1) == 32_000
    assert kv_bytes_per_token_per_gpu(m, 2) == 16_000
    assert kv_bytes_per_token_per_gpu(m, 16) == 4_000  # heads replicate beyond 8-way TP
    assert kv_bytes_per_token_per_gpu(m, 1, kv_bytes_per_element=1) == 16_000
    deepseek = packaged_model("DeepSeek-V3")
    assert kv_bytes_per_token_per_gpu(deepseek, 8) == deepseek.kv_bytes_per_token_fp16 == 70272


def test_memory_plan_by_hand():
    gpu, m = accelerator(), model()
    engine = default_engine_settings(gpu)  # 100 GB >= 70 GiB and not an A100: 8192 tokens, 1024 seqs
    assert (engine.max_num_batched_tokens, engine.max_num_seqs) == (8192, 1024)
    plan = memory_plan(m, gpu, 1, Precision.bf16, engine, mean_seq_tokens=1000, max_model_len=2048)
    activation = 8192 * (2 * 4000 + 4 * 1000) * 2 + 1024 * 10_000 * 4  # 237.568 MB
    kv_cache = 90e9 - 20e9 - activation - 1e9
    assert plan.activation_gb == pytest.approx(activation / 1e9)
    assert plan.kv_cache_gb == pytest.approx(kv_cache / 1e9)
    assert plan.kv_capacity_tokens == int(kv_cache // (32_000 * 16)) * 16 == 2_148_816
    assert plan.max_concurrent_seqs == 1024  # 134,301 blocks / 63 per sequence, capped by max_num_seqs
    assert plan.fits and plan.reason == ""


def test_vllm_batch_defaults_by_device():
    assert default_engine_settings(packaged_gpu("L4")).max_num_batched_tokens == 2048
    assert default_engine_settings(packaged_gpu("A100-80GB-SXM")).max_num_seqs == 256
    assert default_engine_settings(packaged_gpu("H100-SXM")).max_num_seqs == 1024


def test_a_70b_model_does_not_fit_on_one_24gb_gpu():
    seventy, l4 = packaged_model("Llama-3.1-70B"), packaged_gpu("L4")
    for precision in (Precision.bf16, Precision.fp8, Precision.int4):
        plan = memory_plan(
            seventy, l4, 1, precision, default_engine_settings(l4), mean_seq_tokens=768, max_model_len=768
        )
        assert not plan.fits
        assert "weights need" in plan.reason and "21.6 GB is usable" in plan.reason


def test_kv_too_small_for_one_sequence_is_explained():
    gpu = accelerator(memory_gb=24.0)
    plan = memory_plan(
        model(),
        gpu,
        1,
        Precision.bf16,
        default_engine_settings(gpu),
        mean_seq_tokens=1000,
        max_model_len=100_000,
    )
    assert not plan.fits
    assert "less than one 100000-token sequence" in plan.reason


def test_sliding_window_layers_hold_only_their_window():
    gpu, engine = accelerator(), default_engine_settings(accelerator())
    plain = memory_plan(model(), gpu, 1, Precision.bf16, engine, mean_seq_tokens=8000, max_model_len=2048)
    windowed_model = model(
        sliding_window_tokens=1000, sliding_layers=5
    )  # half the layers, 1,000-token window
    windowed = memory_plan(
        windowed_model, gpu, 1, Precision.bf16, engine, mean_seq_tokens=8000, max_model_len=2048
    )
    # at 8,000 tokens a sequence holds 8,000 tokens in 5 layers and 1,000 + one 16-token block in the other 5
    factor = 0.5 + 0.5 * 1016 / 8000
    assert windowed.kv_bytes_per_token == pytest.approx(plain.kv_bytes_per_token * factor)
    assert windowed.kv_capacity_tokens == pytest.approx(plain.kv_capacity_tokens / factor, abs=16)
    short = memory_plan(
        windowed_model, gpu, 1, Precision.bf16, engine, mean_seq_tokens=900, max_model_len=900
    )
    assert (
        short.kv_capacity_tokens
        == memory_plan(
            model(), gpu, 1, Precision.bf16, engine, mean_seq_tokens=900, max_model_len=900
        ).kv_capacity_tokens
    )  # inside the window every layer holds the whole sequence
