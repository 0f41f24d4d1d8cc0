"""Where the simulated replica comes from: the catalog as ``predict`` sets it up, or a plan option as written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from servewise.errors import UnknownNameError, UsageError
from servewise.perf import closed_loop, simulate, uniform_lengths
from servewise.simulator import SimulatorConfig, predicted_point, simulator_config


def test_defaults_follow_predict_open_loop(l4_config: SimulatorConfig) -> None:
    assert l4_config.precision == "bf16" and l4_config.backend == "vllm"
    assert l4_config.engine.max_num_seqs == 256  # vLLM's default on a < 70 GiB GPU
    assert l4_config.engine.max_num_batched_tokens == 8192  # perf._benchpoint.engine_for
    assert l4_config.max_model_len <= l4_config.engine.kv_blocks * l4_config.engine.block_size


def test_bad_inputs_say_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(UnknownNameError):
        simulator_config(model="Llama-3.1-8B", gpu="NoSuchGPU", db_url=url)
    with pytest.raises(UsageError, match="precision"):
        simulator_config(model="Llama-3.1-8B", gpu="L4", precision="fp3", db_url=url)
    with pytest.raises(UsageError, match="--tp 3"):
        simulator_config(model="Llama-3.1-8B", gpu="L4", tp=3, db_url=url)
    with pytest.raises(UsageError, match="speed"):
        simulator_config(model="Llama-3.1-8B", gpu="L4", speed=0, db_url=url)
    with pytest.raises(UsageError, match="does not fit"):
        simulator_config(model="Llama-3.1-70B", gpu="L4", db_url=url)


def test_predicted_point_is_perf_simulate_on_the_served_engine(l4_config: SimulatorConfig) -> None:
    point = predicted_point(l4_config, prompt_tokens=500, output_tokens=50, concurrency=4, requests=12)
    result = simulate(l4_config.step, l4_config.engine, closed_loop(4, 12, uniform_lengths(500, 50)))
    assert point["ttft_p50_ms"] == pytest.approx(result.percentile("ttft", 50) * 1000)
    assert point["output_tokens_per_s"] == pytest.approx(result.output_tokens_per_s)
    assert all(math.isfinite(v) for v in point.values())
    assert point["ttft_p99_ms"] >= point["ttft_p50_ms"] > 0
    with pytest.raises(UsageError, match="max_model_len"):
        predicted_point(l4_config, prompt_tokens=10**6, output_tokens=1, concurrency=1)
