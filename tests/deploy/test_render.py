"""Every target renders for every kind of plan; every file parses; no secret is written; the chart's values are
what the ``kubernetes/`` objects were rendered from."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import jsonschema
import pytest
import yaml

from servewise.deploy import TARGETS, deploy_spec, render_bundle
from servewise.deploy._values import values
from servewise.errors import UsageError
from tests.deploy.conftest import WORKLOADS


def _bundle(document, target, **kwargs):
    return {f.path: f.text for f in render_bundle(deploy_spec(document, **kwargs), target)}


def _cases():
    for name in WORKLOADS:
        for target in TARGETS:
            if not (name == "cpu" and target == "kserve"):
                yield name, target


@pytest.mark.parametrize(("name", "target"), list(_cases()))
def test_every_file_parses_and_each_yaml_holds_one_object_named_by_its_kind(plan, name, target):
    files = _bundle(plan(name), target)
    assert "README.md" in files
    assert {"terraform/aws_budget.tf", "terraform/gcp_budget.tf"} <= set(files)
    kube = {p: t for p, t in files.items() if p.startswith("kubernetes/")}
    assert kube
    for path, text in kube.items():
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
        assert len(documents) == 1, path
        assert path == f"kubernetes/{documents[0]['kind'].lower()}.yaml"
        assert documents[0]["metadata"]["namespace"] == "servewise"
    for path in ("terraform/aws_budget.tf", "terraform/gcp_budget.tf"):
        assert hcl2.load(io.StringIO(files[path]))["resource"]
    kinds = {p.removeprefix("kubernetes/").removesuffix(".yaml") for p in kube}
    common = {"poddisruptionbudget", "resourcequota", "limitrange", "servicemonitor", "prometheusrule"}
    assert common | {"networkpolicy"} <= kinds
    assert ("inferenceservice" in kinds) == (target == "kserve")
    assert ("deployment" in kinds) == (target != "kserve")


def test_the_readme_says_what_and_how(plan):
    document = plan("tp_multi_gpu")
    option = document["options"][document["chosen"]]
    readme = _bundle(document, "vllm")["README.md"]
    assert "Llama-3.1-70B on H100-SXM (TP 8)" in readme
    assert f"${option['cost']['usd_per_month']:,.2f}/month" in readme
    assert "provenance **" + option["perf"]["provenance"] in readme
    assert "kubectl apply -f kubernetes/" in readme and "terraform apply" in readme
    assert option["cost"]["placements"][0]["offer"]["source"] in readme
    helm_readme = _bundle(document, "helm")["README.md"]
    assert "helm install" in helm_readme and "helm template" in helm_readme


def test_unknown_target_and_kserve_on_cpu_are_refused(plan):
    spec = deploy_spec(plan("single_gpu"))
    with pytest.raises(UsageError, match="unknown deploy target 'docker'; choose one of vllm, kserve, helm"):
        render_bundle(spec, "docker")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="use --target vllm or --target helm"):
        render_bundle(deploy_spec(plan("cpu")), "kserve")


@pytest.mark.parametrize("target", TARGETS)
def test_no_secret_is_written_only_a_secret_reference(plan, target, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_thisMustNeverAppearAnywhere123")
    files = _bundle(plan("fp8"), target)
    everything = "\n".join(files.values())
    assert "hf_thisMustNeverAppear" not in everything
    assert not re.search(r"\bhf_[A-Za-z0-9]{20,}", everything)
    for path, text in files.items():
        if not path.startswith("kubernetes/"):
            continue
        for env in _containers_env(yaml.safe_load(text)):
            if env["name"] == "HF_TOKEN":
                assert "value" not in env
                assert env["valueFrom"]["secretKeyRef"] == {
                    "name": "hf-token",
                    "key": "HF_TOKEN",
                    "optional": True,
                }


def _containers_env(obj):
    if obj["kind"] == "Deployment":
        return [e for c in obj["spec"]["template"]["spec"]["containers"] for e in c["env"]]
    if obj["kind"] == "InferenceService":
        return obj["spec"]["predictor"]["model"]["env"]
    return []


def test_pods_run_restricted_with_home_on_the_cache_volume(plan):
    files = _bundle(plan("single_gpu"), "vllm")
    pod = yaml.safe_load(files["kubernetes/deployment.yaml"])["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["HOME"] == mounts["model-cache"] and env["HF_HOME"].startswith(mounts["model-cache"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"


def test_network_policy_admits_namespace_gateway_and_monitoring(plan):
    policy = yaml.safe_load(_bundle(plan("single_gpu"), "vllm")["kubernetes/networkpolicy.yaml"])
    sources = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in sources
    assert any(
        s.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "servewise-gateway"}
        for s in sources
    )
    assert any(
        s.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
        for s in sources
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_hpa_instead_of_keda(plan):
    files = _bundle(plan("single_gpu"), "vllm", autoscaler="hpa")
    assert "kubernetes/scaledobject.yaml" not in files
    hpa = yaml.safe_load(files["kubernetes/horizontalpodautoscaler.yaml"])
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    kserve = _bundle(plan("single_gpu"), "kserve", autoscaler="hpa")
    isvc = yaml.safe_load(kserve["kubernetes/inferenceservice.yaml"])
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    target = yaml.safe_load(kserve["kubernetes/horizontalpodautoscaler.yaml"])["spec"]["scaleTargetRef"]
    assert target["name"] == f"{isvc['metadata']['name']}-predictor"


@pytest.mark.parametrize("name", ["single_gpu", "cpu"])
def test_the_chart_values_are_what_kubernetes_was_rendered_from(plan, name):
    document = plan(name)
    spec = deploy_spec(document)
    files = _bundle(document, "helm")
    chart_values = yaml.safe_load(files["chart/values.yaml"])
    assert chart_values == json.loads(json.dumps(values(spec, "helm")))
    assert chart_values["profile"] == ("cpu" if name == "cpu" else "gpu")
    jsonschema.validate(chart_values, json.loads(files["chart/values.schema.json"]))
    broken = {**chart_values, "replicas": 0}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(files["chart/values.schema.json"]))
    chart = yaml.safe_load(files["chart/Chart.yaml"])
    assert chart["apiVersion"] == "v2" and chart["appVersion"] == spec.image.rsplit(":", 1)[1]
    templates = {
        p.removeprefix("chart/templates/").removesuffix(".yaml")
        for p in files
        if p.startswith("chart/templates/")
    }
    kube = {p.removeprefix("kubernetes/").removesuffix(".yaml") for p in files if p.startswith("kubernetes/")}
    assert kube <= templates


def test_helm_template_yields_the_same_objects(plan, tmp_path: Path):
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip(
            "no `helm` binary on PATH (not installable here: no apt/PyPI package); the chart and the "
            "kubernetes/ objects read the same values, see test_the_chart_values_are_what_..."
        )
    files = _bundle(plan("prefix"), "helm")
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    out = subprocess.run(
        [helm, "template", "x", str(tmp_path / "chart")], check=True, capture_output=True, text=True
    ).stdout
    rendered = {d["kind"].lower(): d for d in yaml.safe_load_all(out) if d}
    ours = {
        p.removeprefix("kubernetes/").removesuffix(".yaml"): yaml.safe_load(t)
        for p, t in files.items()
        if p.startswith("kubernetes/")
    }
    assert rendered == ours


_CORE_KINDS = {
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
}


@pytest.mark.parametrize("name", ["tp_multi_gpu", "cpu"])
@pytest.mark.parametrize("autoscaler", ["keda", "hpa"])
def test_core_objects_pass_the_kubernetes_schema(plan, name, autoscaler):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    checked = 0
    for path, text in _bundle(plan(name), "vllm", autoscaler=autoscaler).items():
        if path.startswith("kubernetes/"):
            obj = yaml.safe_load(text)
            if obj["kind"] in _CORE_KINDS:
                kubernetes_validate.validate(obj, "1.31", strict=True)
                checked += 1
    assert checked == 7 if autoscaler == "hpa" else checked == 6
