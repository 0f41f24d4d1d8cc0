import itertools
import math

import pytest

from servewise.perf import (
    ANALYTICAL_PARAMS,
    RequestShape,
    build_step_model,
    default_engine_settings,
    max_qps_under_slo,
    saturation_qps,
    steady_state,
)
from servewise.perf._capacity import _mean_step_s, _per_request
from servewise.types import Precision
from tests.factories import accelerator, model, packaged_gpu, packaged_model

SHAPE = RequestShape(512, 256, (512,) * 4, (256,) * 4)  # type: ignore[arg-type]
KV = 2_000_000


def _setup(m=None, gpu=None, tp=1):
    gpu = gpu or accelerator()
    step = build_step_model(m or model(), gpu, tp, Precision.bf16, ANALYTICAL_PARAMS)
    return step, default_engine_settings(gpu)


@pytest.mark.parametrize("qps", [0.5, 5.0, 20.0])
def test_closed_form_step_time_is_the_fixed_point_of_the_step_model(qps):
    step, _ = _setup(tp=2)
    t = _mean_step_s(step, SHAPE, qps)
    tokens, sampled, pairs, kv_read, _, _ = _per_request(step, SHAPE)
    n = qps * t  # requests' worth of work in one step
    assert step.step_time_s(
        tokens=n * tokens, sampled_seqs=n * sampled, attn_pairs=n * pairs, kv_read_tokens=n * kv_read
    ) == pytest.approx(t, rel=1e-9)


def test_moe_fixed_point_converges():
    step, _ = _setup(packaged_model("Qwen3-30B-A3B"), packaged_gpu("H100-SXM"))
    t = _mean_step_s(step, SHAPE, 10.0)
    tokens, sampled, pairs, kv_read, _, _ = _per_request(step, SHAPE)
    n = 10.0 * t
    again = step.step_time_s(
        tokens=n * tokens, sampled_seqs=n * sampled, attn_pairs=n * pairs, kv_read_tokens=n * kv_read
    )
    assert again == pytest.approx(t, rel=1e-4)


def test_step_time_diverges_at_saturation():
    step, engine = _setup()
    limit = saturation_qps(step, SHAPE)
    assert math.isfinite(_mean_step_s(step, SHAPE, 0.99 * limit))
    assert math.isinf(_mean_step_s(step, SHAPE, 1.01 * limit))
    assert steady_state(step, SHAPE, engine, 1.01 * limit, kv_capacity_tokens=KV).overload == "throughput"


def test_latency_grows_with_load():
    step, engine = _setup()
    limit = saturation_qps(step, SHAPE)
    points = [
        steady_state(step, SHAPE, engine, f * limit, kv_capacity_tokens=KV) for f in (0.01, 0.3, 0.6, 0.9)
    ]
    for low, high in itertools.pairwise(points):
        assert high.ttft.p95_ms > low.ttft.p95_ms
        assert high.itl.p50_ms >= low.itl.p50_ms
        assert high.e2e.p95_ms > low.e2e.p95_ms
    for p in points:
        assert p.ttft.p50_ms <= p.ttft.p90_ms <= p.ttft.p95_ms <= p.ttft.p99_ms


def test_max_qps_meets_the_slo_and_a_little_more_does_not():
    step, engine = _setup()
    targets = {"ttft_p95_ms": 500.0, "itl_p95_ms": 60.0}
    qps, binding, point = max_qps_under_slo(step, SHAPE, engine, targets, kv_capacity_tokens=KV)
    assert qps > 0
    assert point.ttft.p95_ms <= 500 and point.itl.p95_ms <= 60
    over = steady_state(step, SHAPE, engine, qps * 1.01, kv_capacity_tokens=KV)
    assert over.ttft.p95_ms > 500 or over.itl.p95_ms > 60 or over.overload
    assert set(binding) <= {"ttft_p95_ms", "itl_p95_ms", "throughput", "kv_cache", "max_num_seqs"}


def test_kv_capacity_limits_the_rate():
    step, engine = _setup()
    roomy, _, _ = max_qps_under_slo(step, SHAPE, engine, {}, kv_capacity_tokens=KV)
    tight, binding, _ = max_qps_under_slo(step, SHAPE, engine, {}, kv_capacity_tokens=20_000)
    assert tight < roomy
    assert binding == ["kv_cache"]


def test_an_slo_missed_at_zero_load_gives_zero_capacity_and_the_idle_point():
    step, engine = _setup()
    qps, binding, idle = max_qps_under_slo(step, SHAPE, engine, {"itl_p95_ms": 1.0}, kv_capacity_tokens=KV)
    assert qps == 0.0
    assert binding == ["itl_p95_ms"]
    assert idle.itl.p95_ms > 1.0


def test_prefix_cache_hits_shorten_ttft():
    step, engine = _setup()
    cached = RequestShape(512, 256, (512,) * 4, (256,) * 4, prefix_share=0.75)  # type: ignore[arg-type]
    cold = steady_state(step, SHAPE, engine, 1.0, kv_capacity_tokens=KV)
    warm = steady_state(step, cached, engine, 1.0, kv_capacity_tokens=KV)
    assert warm.ttft.p95_ms < cold.ttft.p95_ms
