"""Name resolution over the packaged records (pure functions)."""

from __future__ import annotations

import pytest

from servewise.catalog import gpu_family, load_packaged, model_name_forms, resolve_gpu, resolve_model

DATA = load_packaged(benchmarks=False)

MODEL_ID_EXAMPLES = [
    ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
    ("nvidia/Llama-3.1-8B-Instruct-FP8", "Llama-3.1-8B"),
    ("Qwen/Qwen3-235B-A22B-FP8", "Qwen3-235B-A22B"),
    ("nvidia/Qwen3-32B-NVFP4", "Qwen3-32B"),
    ("nvidia/DeepSeek-R1-NVFP4", "DeepSeek-R1"),
    ("zhipuai/GLM-5", "GLM-5"),
    ("meta-llama/Llama-3.1-70B", "Llama-3.1-70B"),
    ("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "Llama-3.1-8B"),
]
"""Benchmark and hosted-API model ids that must resolve to catalog models (also checked through the database)."""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        *MODEL_ID_EXAMPLES,
        ("nvidia/DeepSeek-V3.1-NVFP4", "DeepSeek-V3"),
        ("llama 3.1 8b", "Llama-3.1-8B"),
        ("google/gemma-2-9b-it", "Gemma-2-9B"),
        ("openai/gpt-oss-120b", "gpt-oss-120b"),
    ],
)
def test_model_ids_resolve(name: str, expected: str) -> None:
    assert resolve_model(name, DATA.models, DATA.aliases) == expected


def test_unknown_model_is_none() -> None:
    assert resolve_model("acme/Nonexistent-7B-Instruct", DATA.models, DATA.aliases) is None


def test_name_forms_strip_repeatedly() -> None:
    forms = model_name_forms("org/Meta-Llama-3.1-8B-Instruct-Turbo")
    assert forms[:2] == ["org/Meta-Llama-3.1-8B-Instruct-Turbo", "Meta-Llama-3.1-8B-Instruct-Turbo"]
    assert "Llama-3.1-8B" in forms


@pytest.mark.parametrize(
    ("system", "gpu"),
    [("h100_sxm", "H100-SXM"), ("h200_sxm", "H200"), ("b200_sxm", "B200"), ("b300_sxm", "B300"),
     ("gb200", "GB200"), ("a100_sxm", "A100-80GB-SXM"), ("H200-SXM", "H200")],
)  # fmt: skip
def test_benchmark_systems_resolve(system: str, gpu: str) -> None:
    assert resolve_gpu(system, DATA.accelerators, DATA.aliases) == gpu


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("H100", ["H100-SXM", "H100-PCIe", "H100-NVL"]),
        ("a100", ["A100-40GB-SXM", "A100-80GB-SXM", "A100-80GB-PCIe"]),
        ("A100 80GB", ["A100-80GB-SXM", "A100-80GB-PCIe"]),
        ("A10", ["A10"]),
        ("h100_sxm", ["H100-SXM"]),
        ("H10", []),
    ],
)
def test_gpu_family(query: str, expected: list[str]) -> None:
    assert gpu_family(query, DATA.accelerators, DATA.aliases) == expected
