"""Plan file loading and ``deploy_spec``: one-line errors for bad input, and the derived settings (engine flags,
autoscaling bounds, placement, pod resources) computed from the plan's own numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from servewise.catalog import load_packaged
from servewise.cost import shape_multipliers
from servewise.deploy import (
    NATIVE_CHECKPOINT_PRECISION,
    VLLM_CPU_IMAGE,
    VLLM_IMAGE,
    PlanFileError,
    deploy_spec,
    load_plan_document,
)
from servewise.deploy._nodes import GFD_PRODUCT
from servewise.errors import UsageError


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_load_reads_a_plan_written_as_json(tmp_path, plan):
    document = plan("fp8")
    assert load_plan_document(_write(tmp_path, json.dumps(document))) == document


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; write one with `servewise plan"),
        ("{not json", "is not JSON (line 1"),
        ('{"hello": 1}', "is not a Servewise plan (no schema_version/options)"),
        ("[1, 2]", "is not a Servewise plan"),
        ('{"schema_version": "99", "options": []}', "schema_version '99', this Servewise reads '1'"),
        (
            '{"schema_version": "1", "options": [], "workload": {}, "peak_qps": 1, "alerts": {}}',
            "the plan has no options: relax",
        ),
    ],
)
def test_bad_plan_files_fail_with_one_actionable_line(tmp_path, content, message):
    path = tmp_path / "missing.json" if content is None else _write(tmp_path, content)
    with pytest.raises(PlanFileError) as raised:
        load_plan_document(path)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert isinstance(raised.value, UsageError)


def test_a_folder_is_not_a_plan_file(tmp_path):
    with pytest.raises(PlanFileError, match="is a folder"):
        load_plan_document(tmp_path)


def test_option_is_the_rank_shown_by_plan_and_defaults_to_the_chosen_one(plan):
    document = plan("fp8")
    assert len(document["options"]) == 3
    assert deploy_spec(document).option_rank == document["chosen"] + 1
    second = deploy_spec(document, option=2)
    assert second.option_rank == 2 and second.model == document["options"][1]["candidate"]["model"]
    assert not second.chosen
    assert deploy_spec(document).why == document["why"]  # the plan's reason is the chosen option's ...
    assert document["why"] not in second.why.split("; the plan says of that one: ")[0]  # ... not option 2's
    assert second.why.startswith(
        "option 2 as ranked by the planner (`--option 2`), not the plan's chosen option 1"
    )
    with pytest.raises(UsageError) as raised:
        deploy_spec(document, option=7)
    assert str(raised.value) == "option 7 is out of range: the plan has 3 options (1-3)"
    with pytest.raises(UsageError, match="option 0 is out of range"):
        deploy_spec(document, option=0)


@pytest.mark.parametrize("namespace", ["Servewise", "-bad", "a_b", "x" * 64, ""])
def test_bad_namespaces_are_refused(plan, namespace):
    with pytest.raises(UsageError, match="is not a valid Kubernetes name"):
        deploy_spec(plan("fp8"), namespace=namespace)


def test_bad_autoscaler_and_min_replicas_are_refused(plan):
    document = plan("single_gpu")
    with pytest.raises(UsageError, match="unknown autoscaler 'knative'"):
        deploy_spec(document, autoscaler="knative")  # type: ignore[arg-type]
    replicas = document["options"][document["chosen"]]["replicas"]
    above = replicas + 5
    with pytest.raises(UsageError, match=f"--min-replicas {above} is above the plan's {replicas} replica"):
        deploy_spec(document, min_replicas=above)
    with pytest.raises(UsageError, match="must be >= 1"):
        deploy_spec(document, min_replicas=0)


def test_engine_flags_come_from_the_option(plan):
    document = plan("single_gpu")
    option = document["options"][document["chosen"]]
    spec = deploy_spec(document)
    engine = option["candidate"]["engine"]
    flags = list(spec.engine_flags)
    assert spec.model_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert flags[flags.index("--max-model-len") + 1] == str(option["perf"]["memory"]["max_model_len"])
    assert flags[flags.index("--max-num-seqs") + 1] == str(engine["max_num_seqs"])
    assert flags[flags.index("--max-num-batched-tokens") + 1] == str(engine["max_num_batched_tokens"])
    assert flags[flags.index("--gpu-memory-utilization") + 1] == f"{engine['gpu_memory_utilization']:g}"
    assert flags[flags.index("--dtype") + 1] == "bfloat16"
    assert "--quantization" not in flags and "--kv-cache-dtype" not in flags
    assert "--enable-prefix-caching" not in flags
    assert spec.image == VLLM_IMAGE


def test_the_default_block_size_is_left_to_vllm_and_another_one_is_forced(plan):
    # an explicit 16 would override the 64/128-token blocks vLLM picks for MLA models (FlashMLA, CUTLASS MLA)
    document = plan("single_gpu")
    assert document["options"][document["chosen"]]["candidate"]["engine"]["block_size_tokens"] == 16
    assert "--block-size" not in deploy_spec(document).engine_flags
    document["options"][document["chosen"]]["candidate"]["engine"]["block_size_tokens"] = 32
    flags = deploy_spec(document).engine_flags
    assert flags[flags.index("--block-size") + 1] == "32"


def test_max_model_len_follows_the_workload_not_a_constant(plan):
    long_prompts = plan("prefix")
    short = deploy_spec(plan("single_gpu"))
    assert deploy_spec(long_prompts).max_model_len == 2304 and short.max_model_len == 768


def test_fp8_on_a_16_bit_checkpoint_is_quantised_at_load(plan):
    spec = deploy_spec(plan("fp8"))
    assert spec.quantization == "fp8"
    assert spec.engine_flags[spec.engine_flags.index("--quantization") + 1] == "fp8"


def test_fp8_on_an_fp8_checkpoint_needs_no_flag(plan):
    document = plan("fp8")
    option = document["options"][document["chosen"]]
    option["candidate"]["hf_id"] = "deepseek-ai/DeepSeek-V3"
    assert NATIVE_CHECKPOINT_PRECISION["deepseek-ai/DeepSeek-V3"] == "fp8"
    spec = deploy_spec(document)
    assert spec.quantization is None and "--quantization" not in spec.engine_flags


def test_an_fp8_kv_cache_and_prefix_sharing_become_flags(plan):
    document = plan("prefix")
    document["options"][document["chosen"]]["candidate"]["engine"]["kv_cache_bytes_per_element"] = 1
    spec = deploy_spec(document)
    assert spec.kv_cache_dtype == "fp8"
    assert spec.engine_flags[spec.engine_flags.index("--kv-cache-dtype") + 1] == "fp8"
    assert "--enable-prefix-caching" in spec.engine_flags and spec.prefix_caching


def test_int4_without_a_quantised_checkpoint_says_what_to_do(plan):
    document = plan("cpu")
    document["options"][document["chosen"]]["candidate"]["precision"] = "int4"
    with pytest.raises(UsageError) as raised:
        deploy_spec(document)
    message = str(raised.value)
    assert "W4A16 (AWQ/GPTQ) export" in message and "--model-id" in message and "--option N" in message
    spec = deploy_spec(document, model_id="acme/Llama-3.2-1B-Instruct-AWQ")
    assert spec.model_id == "acme/Llama-3.2-1B-Instruct-AWQ" and "--quantization" not in spec.engine_flags


def test_a_non_nvidia_gpu_is_refused(plan):
    document = plan("single_gpu")
    document["options"][document["chosen"]]["candidate"]["gpu"] = "MI300X"
    with pytest.raises(UsageError, match="NVIDIA GPU and CPU replicas; MI300X"):
        deploy_spec(document)


def test_every_nvidia_gpu_of_the_catalog_has_a_feature_discovery_name():
    nvidia = {g.name for g in load_packaged(benchmarks=False).snapshot().accelerators if g.vendor == "NVIDIA"}
    assert nvidia <= set(GFD_PRODUCT), sorted(nvidia - set(GFD_PRODUCT))


def test_min_replicas_is_the_quietest_hour_and_max_the_plan(plan):
    document = plan("prefix")
    option = document["options"][document["chosen"]]
    spec = deploy_spec(document)
    capacity = option["perf"]["max_qps_per_replica"]
    average = document["peak_qps"] / document["workload"]["traffic"]["peak_factor"]
    quietest = min(shape_multipliers("weekly")) * average
    assert spec.scaling.max_replicas == option["replicas"] == spec.replicas
    assert spec.scaling.min_replicas == max(1, math.ceil(quietest / capacity))
    assert 1 < spec.scaling.min_replicas < spec.scaling.max_replicas
    flat = deploy_spec(document, shape="flat")
    assert flat.scaling.min_replicas == math.ceil(average / capacity)
    assert deploy_spec(document, min_replicas=20).scaling.min_replicas == 20


def test_keda_threshold_is_the_ttft_headroom_times_capacity(plan):
    document = plan("fp8")
    option = document["options"][document["chosen"]]
    ttft = next(s for s in option["slo"] if s["name"] == "ttft_p95_ms")
    expected = option["perf"]["max_qps_per_replica"] * (ttft["target_ms"] - ttft["predicted_ms"]) / 1000
    spec = deploy_spec(document)
    assert expected > 1
    assert spec.scaling.waiting_per_replica == math.floor(expected * 100) / 100


def _first_option_on(document: dict[str, Any], provider: str, gpu: str) -> int:
    """The 0-based index of the first option placed on ``provider`` with ``gpu`` (which one ranks first moves with
    every refit of the performance model; the placement rules are what this file tests)."""
    return next(
        i
        for i, option in enumerate(document["options"])
        if option["cost"]["placements"]
        and option["cost"]["placements"][0]["offer"]["provider"] == provider
        and option["candidate"]["gpu"] == gpu
    )


def test_placement_follows_the_provider(plan):
    aws = deploy_spec(plan("tp_multi_gpu")).placement
    assert [(t.key, t.values) for t in aws.required] == [
        ("node.kubernetes.io/instance-type", ("p5.48xlarge",))
    ]
    document = plan("prefix")
    gcp = deploy_spec(document, option=_first_option_on(document, "gcp", "L4") + 1).placement
    assert [(t.key, t.values) for t in gcp.required] == [("cloud.google.com/gke-accelerator", ("nvidia-l4",))]
    runpod = deploy_spec(plan("single_gpu")).placement
    assert [(t.key, t.values) for t in runpod.required] == [("nvidia.com/gpu.product", ("NVIDIA-L40S",))]
    azure = deploy_spec(plan("budget")).placement
    assert {t.key for t in azure.tolerations} == {"nvidia.com/gpu", "sku"}


def test_pod_resources_of_a_tp8_replica(plan):
    document = plan("tp_multi_gpu")
    memory = document["options"][document["chosen"]]["perf"]["memory"]
    spec = deploy_spec(document)
    assert spec.tp == 8 and spec.pod.gpus == 8 and spec.pod.cpu_millicores == 10_000
    expected_gb = memory["weights_gb"] * 8 + 2.0 * 10
    assert spec.pod.memory_mib == math.ceil((expected_gb * 1e9 + 2 * 2**30) / 2**20)
    assert spec.quota.gpus == (spec.scaling.max_replicas + 1) * 8


def test_a_cpu_option_uses_the_cpu_image_and_the_plans_kv_memory(plan):
    document = plan("cpu")
    option = document["options"][document["chosen"]]
    spec = deploy_spec(document)
    assert spec.is_cpu and spec.cpu_instance == "c7i.2xlarge" and spec.image == VLLM_CPU_IMAGE
    assert spec.pod.gpus == 0 and spec.quota.gpus == 0
    assert spec.pod.kv_cache_space_gib == math.floor(option["perf"]["memory"]["kv_cache_gb"] * 1e9 / 2**30)
    assert spec.pod.cpu_millicores == (option["candidate"]["vcpus"] - 1) * 1000
    assert "--gpu-memory-utilization" not in spec.engine_flags
    assert deploy_spec(document, image="registry.local/vllm-cpu:1").image == "registry.local/vllm-cpu:1"
