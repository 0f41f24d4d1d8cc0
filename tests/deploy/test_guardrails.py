"""The generated pods are admissible under the generated guardrails: every container within the LimitRange, and
maxReplicas + the rolling-update surge within the ResourceQuota. Also the PromQL is well formed and the budget
alerts stay quiet at the planned steady state."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import yaml

from servewise.deploy import deploy_spec, render_bundle

PLANS = ["single_gpu", "tp_multi_gpu", "fp8", "cpu", "prefix", "budget"]
CASES = [(n, t) for n in PLANS for t in ("vllm", "kserve", "helm") if (n, t) != ("cpu", "kserve")]
_SUFFIX = {
    "m": Decimal("0.001"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "": Decimal(1),
}


def _quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (the suffixes the bundle uses) as a number of base units."""
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|)", str(value))
    assert match, f"unexpected quantity {value!r}"
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def _kube(name: str, target: str, plan: Any) -> dict[str, Any]:
    files = render_bundle(deploy_spec(plan(name)), target)
    return {
        f.path.removeprefix("kubernetes/").removesuffix(".yaml"): yaml.safe_load(f.text)
        for f in files
        if f.path.startswith("kubernetes/")
    }


def _pod(kube: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    """(containers, max replicas, surge replicas) of the inference workload."""
    if "inferenceservice" in kube:
        predictor = kube["inferenceservice"]["spec"]["predictor"]
        return [predictor["model"]], predictor["maxReplicas"], 1
    deployment = kube["deployment"]
    scaler = kube.get("scaledobject") or kube["horizontalpodautoscaler"]
    max_replicas = scaler["spec"].get("maxReplicaCount") or scaler["spec"]["maxReplicas"]
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert deployment["spec"]["replicas"] <= max_replicas
    return deployment["spec"]["template"]["spec"]["containers"], max_replicas, surge


@pytest.mark.parametrize(("name", "target"), CASES)
def test_every_container_fits_the_limit_range(plan, name, target):
    kube = _kube(name, target, plan)
    containers, _, _ = _pod(kube)
    (item,) = kube["limitrange"]["spec"]["limits"]
    assert item["type"] == "Container"
    for container in containers:
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        for resource, bound in item["max"].items():
            assert _quantity(limits[resource]) <= _quantity(bound), (resource, limits[resource], bound)
            assert _quantity(requests[resource]) <= _quantity(limits[resource])
    # a container that names no resources gets these: they must be admissible and must not take a GPU
    assert "nvidia.com/gpu" not in item["default"] and "nvidia.com/gpu" not in item["max"]
    for resource, default in item["default"].items():
        assert (
            _quantity(item["defaultRequest"][resource])
            <= _quantity(default)
            <= _quantity(item["max"][resource])
        )


@pytest.mark.parametrize(("name", "target"), CASES)
def test_max_replicas_plus_surge_fit_the_quota(plan, name, target):
    kube = _kube(name, target, plan)
    containers, max_replicas, surge = _pod(kube)
    hard = kube["resourcequota"]["spec"]["hard"]
    pods = max_replicas + surge
    for key, bound in hard.items():
        kind, resource = key.split(".", 1)
        per_pod = sum(_quantity(c["resources"][kind].get(resource, 0)) for c in containers)
        assert per_pod * pods <= _quantity(bound), (key, per_pod, pods, bound)
        # one more replica would not fit: the quota is the plan's ceiling, not a loose bound
        assert per_pod * (pods + 1) > _quantity(bound)
    gpu_option = "nvidia.com/gpu" in containers[0]["resources"]["limits"]
    assert ("requests.nvidia.com/gpu" in hard) == gpu_option


def _balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@pytest.mark.parametrize(("name", "target"), CASES)
def test_every_promql_expression_is_balanced_and_scoped(plan, name, target):
    kube = _kube(name, target, plan)
    namespace = kube["deployment" if target != "kserve" else "inferenceservice"]["metadata"]["namespace"]
    rules = [r for g in kube["prometheusrule"]["spec"]["groups"] for r in g["rules"]]
    for rule in rules:
        assert _balanced(rule["expr"]), rule["expr"]
        for selector in re.findall(r"\{([^}]*)\}", rule["expr"]):
            assert f'namespace="{namespace}"' in selector, rule["expr"]
    month_to_date = [r["expr"] for r in rules if r.get("alert", "").startswith("ServewiseMonthToDateSpend")]
    assert month_to_date and all("@ end()" in e and "[31d:1h]" in e for e in month_to_date)


def test_no_budget_alert_compares_the_planned_rate_with_a_level_below_the_plan(plan):
    """The old ``rate × 730 > 80 % level`` alert fired all month at the planned replica count; every cost alert
    now either accumulates this month's spend or counts replicas above what the budget pays for."""
    kube = _kube("single_gpu", "vllm", plan)
    (cost,) = [g for g in kube["prometheusrule"]["spec"]["groups"] if g["name"].endswith("-cost")]
    for rule in cost["rules"]:
        if "alert" in rule:
            assert "sum_over_time(" in rule["expr"] or rule["alert"] == "ServewiseReplicasAboveBudget"
            assert "* 730" not in rule["expr"]
