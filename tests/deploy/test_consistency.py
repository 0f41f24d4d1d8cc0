"""Plan ↔ manifest: parse the rendered files back and compare every number with the plan document itself (not with
``DeploySpec``), so a slip anywhere between the plan and the YAML shows up here."""

from __future__ import annotations

import io
import math
import re

import hcl2
import pytest
import yaml

from servewise.deploy import deploy_spec, render_bundle

PLANS = ["single_gpu", "tp_multi_gpu", "fp8", "cpu", "prefix", "budget"]


def _objects(document, target, **kwargs):
    files = render_bundle(deploy_spec(document, **kwargs), target)
    kube = {
        f.path.removeprefix("kubernetes/").removesuffix(".yaml"): yaml.safe_load(f.text)
        for f in files
        if f.path.startswith("kubernetes/")
    }
    tf = {f.path: hcl2.load(io.StringIO(f.text)) for f in files if f.path.endswith(".tf")}
    return kube, tf


def _unquoted(value):
    """python-hcl2 8 keeps HCL's quotes on strings and block labels."""
    return value.strip('"') if isinstance(value, str) else value


def _resource(tf_file, kind):
    (blocks,) = [{_unquoted(k): v for k, v in r.items()} for r in tf_file["resource"]]
    (body,) = blocks[kind].values()
    return body


def _flag(args, name):
    return args[args.index(name) + 1]


def _chosen(document):
    return document["options"][document["chosen"]]


@pytest.mark.parametrize("name", PLANS)
@pytest.mark.parametrize("target", ["vllm", "helm"])
def test_deployment_matches_the_plan(plan, name, target):
    document = plan(name)
    option = _chosen(document)
    candidate, engine = option["candidate"], option["candidate"]["engine"]
    kube, _ = _objects(document, target)
    deployment = kube["deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert deployment["spec"]["replicas"] == option["replicas"]
    assert args[0] == candidate["hf_id"]
    assert int(_flag(args, "--tensor-parallel-size")) == candidate["tp"]
    assert int(_flag(args, "--max-model-len")) == option["perf"]["memory"]["max_model_len"]
    assert int(_flag(args, "--max-num-seqs")) == engine["max_num_seqs"]
    assert int(_flag(args, "--max-num-batched-tokens")) == engine["max_num_batched_tokens"]
    limits = container["resources"]["limits"]
    if candidate["cpu"] is None:
        assert float(_flag(args, "--gpu-memory-utilization")) == engine["gpu_memory_utilization"]
        # vLLM picks the block itself when the flag is absent (16 on CUDA standard attention, what the plan assumed)
        block_size_tokens = int(_flag(args, "--block-size")) if "--block-size" in args else 16
        assert block_size_tokens == engine["block_size_tokens"]
        assert limits["nvidia.com/gpu"] == candidate["tp"] == option["gpus_total"] // option["replicas"]
    else:
        assert "nvidia.com/gpu" not in limits and option["gpus_total"] == 0
        env = {e["name"]: e.get("value") for e in container["env"]}
        kv_gib = math.floor(option["perf"]["memory"]["kv_cache_gb"] * 1e9 / 2**30)
        assert env["VLLM_CPU_KVCACHE_SPACE"] == str(kv_gib)
    assert ("--enable-prefix-caching" in args) == (document["workload"]["traffic"]["prefix_share"] > 0)
    assert ("--quantization" in args) == (candidate["precision"] == "fp8")
    annotations = deployment["metadata"]["annotations"]
    assert annotations["servewise.dev/plan-option"] == str(document["chosen"] + 1)
    assert float(annotations["servewise.dev/usd-per-month"]) == round(option["cost"]["usd_per_month"], 2)


@pytest.mark.parametrize("name", PLANS)
def test_autoscaling_and_quota_match_the_plan(plan, name):
    document = plan(name)
    option = _chosen(document)
    tp = option["candidate"]["tp"] if option["candidate"]["cpu"] is None else 0
    kube, _ = _objects(document, "vllm")
    scaled = kube["scaledobject"]["spec"]
    assert scaled["maxReplicaCount"] == option["replicas"]
    assert 1 <= scaled["minReplicaCount"] <= option["replicas"]
    assert scaled["scaleTargetRef"]["name"] == kube["deployment"]["metadata"]["name"]
    assert "vllm:num_requests_waiting" in scaled["triggers"][0]["metadata"]["query"]
    assert float(scaled["triggers"][0]["metadata"]["threshold"]) >= 1
    hard = kube["resourcequota"]["spec"]["hard"]
    if tp:
        assert hard["requests.nvidia.com/gpu"] == (option["replicas"] + 1) * tp
    else:
        assert "requests.nvidia.com/gpu" not in hard
    pod_memory = kube["deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][
        "memory"
    ]
    assert hard["requests.memory"] == f"{int(pod_memory.removesuffix('Mi')) * (option['replicas'] + 1)}Mi"


@pytest.mark.parametrize(
    ("name", "target"),
    # KServe's Hugging Face runtime has no CPU vLLM backend: that pair is refused (test_render)
    [(n, t) for n in PLANS for t in ("vllm", "kserve", "helm") if (n, t) != ("cpu", "kserve")],
)
def test_alert_thresholds_are_the_plans_numbers(plan, name, target):
    document = plan(name)
    option = _chosen(document)
    kube, tf = _objects(document, target)
    rules = [r for g in kube["prometheusrule"]["spec"]["groups"] for r in g["rules"]]
    slo = {s["name"]: s["target_ms"] for s in option["slo"]}
    alerts = {r.get("alert") or r["record"]: r["expr"] for r in rules}
    for alert, metric, key in (
        ("ServewiseTTFTp95AboveSLO", "vllm:time_to_first_token_seconds_bucket", "ttft_p95_ms"),
        ("ServewiseITLp95AboveSLO", "vllm:inter_token_latency_seconds_bucket", "itl_p95_ms"),
        ("ServewiseE2Ep95AboveSLO", "vllm:e2e_request_latency_seconds_bucket", "e2e_p95_ms"),
    ):
        if key in slo:
            assert metric in alerts[alert]
            assert float(alerts[alert].rsplit(">", 1)[1]) == slo[key] / 1000
        else:
            assert alert not in alerts
    levels = document["alerts"]["levels"]
    month_to_date = sorted(float(e.rsplit(">", 1)[1]) for a, e in alerts.items() if "MonthToDateSpend" in a)
    assert month_to_date == sorted(level["threshold_usd"] for level in levels)
    # the replica guard: the most replicas the budget pays for, never below the plan's own replica count
    affordable = int(alerts["ServewiseReplicasAboveBudget"].rsplit(">", 1)[1])
    per_replica_month = option["cost"]["usd_per_month"] / option["replicas"]
    assert affordable >= option["replicas"]
    assert affordable * per_replica_month <= document["alerts"]["budget_usd_month"] * (1 + 1e-9)
    assert (affordable + 1) * per_replica_month > document["alerts"]["budget_usd_month"]
    record = alerts["servewise:deployment_cost_usd_per_hour"]
    per_replica = float(re.search(r"\* ([0-9.e+-]+)$", record).group(1))
    assert per_replica == pytest.approx(option["cost"]["usd_per_hour"] / option["replicas"], rel=1e-12)
    # cloud budgets: the plan's budget and its alert percentages
    budget = _resource(tf["terraform/aws_budget.tf"], "aws_budgets_budget")
    assert float(_unquoted(budget["limit_amount"])) == document["alerts"]["budget_usd_month"]
    assert _unquoted(budget["time_unit"]) == "MONTHLY"
    assert budget["notification"][0]["subscriber_email_addresses"] == ("${var.budget_notification_emails}")
    assert sorted(n["threshold"] for n in budget["notification"]) == sorted(
        lv["threshold_pct"] for lv in levels
    )
    gbudget = _resource(tf["terraform/gcp_budget.tf"], "google_billing_budget")
    amount = gbudget["amount"][0]["specified_amount"][0]
    dollars = int(_unquoted(amount["units"])) + amount["nanos"] / 1e9
    assert dollars == pytest.approx(document["alerts"]["budget_usd_month"], abs=1e-6)
    assert sorted(r["threshold_percent"] for r in gbudget["threshold_rules"]) == sorted(
        lv["threshold_pct"] / 100 for lv in levels
    )


@pytest.mark.parametrize("name", ["single_gpu", "tp_multi_gpu", "prefix"])
def test_inference_service_matches_the_plan(plan, name):
    document = plan(name)
    option = _chosen(document)
    kube, _ = _objects(document, "kserve")
    predictor = kube["inferenceservice"]["spec"]["predictor"]
    args = predictor["model"]["args"]
    assert f"--model_id={option['candidate']['hf_id']}" in args and "--backend=vllm" in args
    assert int(_flag(args, "--tensor-parallel-size")) == option["candidate"]["tp"]
    assert int(_flag(args, "--max-model-len")) == option["perf"]["memory"]["max_model_len"]
    assert predictor["maxReplicas"] == option["replicas"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == option["candidate"]["tp"]
    assert predictor["model"]["modelFormat"]["name"] == "huggingface"


def test_budget_plan_alerts_use_the_workload_budget_not_the_option_cost(plan):
    document = plan("budget")
    assert document["alerts"]["budget_source"] == "workload"
    kube, _ = _objects(document, "vllm")
    text = yaml.safe_dump(kube["prometheusrule"])
    assert "> 4800" in text and "> 5700" in text and "> 6000" in text
