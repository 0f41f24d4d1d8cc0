"""Test data: synthetic records with round numbers (for hand-computed expectations) and the packaged catalog."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from servewise.catalog import Accelerator, CatalogSnapshot, CloudOffer, ModelSpec, load_packaged


def accelerator(**overrides: object) -> Accelerator:
    """A made-up GPU with round numbers: 100 GB, 1000 GB/s, 100 TFLOP/s bf16, 200 fp8, link 400 GB/s."""
    base = Accelerator(
        name="TestGPU",
        vendor="NVIDIA",
        memory_gb=100.0,
        memory_bw_gbps=1000.0,
        fp16_tflops=100.0,
        bf16_tflops=100.0,
        fp8_tflops=200.0,
        int8_tops=200.0,
        fp4_tflops=None,
        interconnect="test link",
        intra_node_bw_gbps=400.0,
        max_per_node=8,
        tdp_w=500.0,
        launch_year=2024,
        list_price_usd=None,
        source="test",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def model(**overrides: object) -> ModelSpec:
    """A made-up dense model: 10B params, 10 layers, hidden 1000, 8 KV heads x 100 dims, vocab 10,000."""
    base = ModelSpec(
        name="TestModel-10B",
        hf_id="test/TestModel-10B",
        params_b=10.0,
        active_params_b=10.0,
        num_layers=10,
        hidden_size=1000,
        intermediate_size=4000,
        num_attention_heads=10,
        num_kv_heads=8,
        head_dim=100,
        vocab_size=10_000,
        max_context=32_768,
        moe_num_experts=None,
        moe_top_k=None,
        moe_intermediate_size=None,
        attention="gqa",
        kv_bytes_per_token_fp16=2 * 10 * 8 * 100 * 2,
        license="test",
        source="test",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def offer(**overrides: object) -> CloudOffer:
    base = CloudOffer(
        provider="testcloud",
        region="r1",
        instance_type="t.1x",
        gpu="TestGPU",
        gpu_count=1,
        vcpus=8,
        memory_gb=64.0,
        price_per_hour_usd=2.0,
        spot_price_per_hour_usd=0.8,
        source="test",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def packaged_snapshot() -> CatalogSnapshot:
    """The catalog that ships in the package, without a database."""
    return load_packaged(benchmarks=False).snapshot()


def packaged_model(name: str) -> ModelSpec:
    return next(m for m in packaged_snapshot().models if m.name == name)


def packaged_gpu(name: str) -> Accelerator:
    return next(g for g in packaged_snapshot().accelerators if g.name == name)
