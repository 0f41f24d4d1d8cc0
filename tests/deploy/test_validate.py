"""The offline bundle validator: each test takes a valid hand-written bundle, breaks one thing, and expects exactly
that problem, named by file, object and JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servewise.deploy._checks import BudgetExpectation
from servewise.deploy._schemas import CRD_SCHEMAS, K8S_NEWEST_CHECKED, SCHEMA_DIR, schema_for
from servewise.deploy._validate import check_directory, check_files, load_objects
from servewise.errors import UsageError

from .bundle_fixtures import (
    DEPLOYMENT,
    INFERENCE_SERVICE,
    SCALED_OBJECT,
    SERVICE_MONITOR,
    THRESHOLDS_PCT,
    as_files,
    aws_budget,
    gcp_budget,
    helm_bundle,
    kserve_bundle,
    vllm_bundle,
    write_bundle,
)


def _lines(bundle: dict[str, str], **kwargs: object) -> list[str]:
    return [p.line() for p in check_files(as_files(bundle), **kwargs).problems]  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [vllm_bundle, kserve_bundle, helm_bundle])
@pytest.mark.parametrize("version", ["1.33", K8S_NEWEST_CHECKED])
def test_valid_bundles_pass_on_the_pinned_and_the_newest_version(make, version):
    report = check_files(
        as_files(make()), expected_budget=BudgetExpectation(THRESHOLDS_PCT), k8s_version=version
    )
    assert report.ok, [p.line() for p in report.problems]
    checked = {r.object: r.schema for r in report.results}
    assert any(s.startswith(f"Kubernetes {version} strict") for s in checked.values())
    assert any(s.startswith("CRD ") for s in checked.values())


def test_deployment_with_string_replicas_fails_with_file_object_and_path():
    bundle = vllm_bundle() | {
        "kubernetes/deployment.yaml": DEPLOYMENT.replace("replicas: 2", 'replicas: "three"')
    }
    assert _lines(bundle) == [
        "kubernetes/deployment.yaml: Deployment/vllm: $.spec.replicas: 'three' is not of type 'integer', 'null'"
    ]


def test_unknown_field_is_rejected_like_strict_field_validation():
    bundle = vllm_bundle() | {"kubernetes/deployment.yaml": DEPLOYMENT.replace("replicas: 2", "replica: 2")}
    (line,) = _lines(bundle)
    assert line.startswith("kubernetes/deployment.yaml: Deployment/vllm: $.spec:") and "'replica'" in line


def test_unknown_kind_is_an_error_not_a_pass():
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n"
    (line,) = _lines(vllm_bundle() | {"kubernetes/widget.yaml": widget})
    assert line.startswith("kubernetes/widget.yaml: Widget/w: $.kind: no schema for Widget example.com/v1")


def test_object_without_kind_or_name_is_an_error():
    lines = _lines(vllm_bundle() | {"kubernetes/x.yaml": "apiVersion: v1\nmetadata: {}\n"})
    assert lines == [
        "kubernetes/x.yaml: ?/?: $.kind: required",
        "kubernetes/x.yaml: ?/?: $.metadata.name: required",
    ]


def test_yaml_syntax_error_names_the_line():
    (line,) = _lines(vllm_bundle() | {"kubernetes/service.yaml": "apiVersion: v1\nkind: [Service\n"})
    assert line.startswith("kubernetes/service.yaml: -: $: YAML does not parse at line 3")


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "kubernetes/scaledobject.yaml",
            SCALED_OBJECT.replace("  minReplicaCount: 1", "  minReplicaCount: one"),
            "kubernetes/scaledobject.yaml: ScaledObject/vllm: $.spec.minReplicaCount: 'one' is not of type 'integer'",
        ),
        (
            "kubernetes/scaledobject.yaml",
            SCALED_OBJECT.replace("    - type: prometheus\n", "    - kind: prometheus\n"),
            "kubernetes/scaledobject.yaml: ScaledObject/vllm: $.spec.triggers[0]: 'type' is a required property",
        ),
        (
            "kubernetes/servicemonitor.yaml",
            SERVICE_MONITOR.replace("interval: 15s", "interval: 15 seconds"),
            "kubernetes/servicemonitor.yaml: ServiceMonitor/vllm: $.spec.endpoints[0].interval: '15 seconds' does not",
        ),
        (
            "kubernetes/inferenceservice.yaml",
            INFERENCE_SERVICE.replace("minReplicas: 1", "minReplica: 1"),
            "kubernetes/inferenceservice.yaml: InferenceService/qwen: $.spec.predictor: Additional properties",
        ),
        (
            "kubernetes/inferenceservice.yaml",
            INFERENCE_SERVICE.replace("modelFormat: {name: huggingface}", "modelFormat: {}"),
            "kubernetes/inferenceservice.yaml: InferenceService/qwen: $.spec.predictor.model.modelFormat: 'name' is",
        ),
        (
            "kubernetes/inferenceservice.yaml",
            INFERENCE_SERVICE.replace("annotations: {", "labels: {version: 2}\n  annotations: {"),
            "kubernetes/inferenceservice.yaml: InferenceService/qwen: $.metadata.labels.version: 2 is not of type",
        ),
    ],
)
def test_crd_objects_are_validated_against_their_schemas(path, text, expected):
    lines = _lines(kserve_bundle() | vllm_bundle() | {path: text})
    assert lines and all(line.startswith(expected.split(": $")[0]) for line in lines), lines
    assert any(line.startswith(expected) for line in lines), lines


def test_every_shipped_crd_schema_is_listed_in_sources():
    sources = (SCHEMA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for crd in CRD_SCHEMAS.values():
        assert crd.file in sources
        assert schema_for(crd.api_version, crd.kind) is not None
        json.loads((SCHEMA_DIR / crd.file).read_text(encoding="utf-8"))


def test_secret_with_data_and_literal_token_env_fail():
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: hf}\nstringData: {token: hf_abc}\n"
    leaked = DEPLOYMENT.replace(
        "              valueFrom:\n                secretKeyRef: {name: hf-token, key: token, optional: true}\n",
        "              value: hf_live_abc\n",
    )
    lines = _lines(vllm_bundle() | {"kubernetes/secret.yaml": secret, "kubernetes/deployment.yaml": leaked})
    assert lines == [
        "kubernetes/deployment.yaml: Deployment/vllm: $.spec.template.spec.containers[0].env[0].value: env var "
        "HF_TOKEN has a literal value that looks like a credential; use valueFrom.secretKeyRef instead",
        "kubernetes/secret.yaml: Secret/hf: $.stringData: a Secret with literal data must not be in a deploy bundle; "
        "create it out of band (kubectl create secret) and reference it",
    ]


def test_harmless_literal_env_values_pass():
    assert _lines(vllm_bundle()) == []  # VLLM_LOGGING_LEVEL=INFO is a literal value with a harmless name


def test_tampered_aws_threshold_disagrees_with_gcp():
    bundle = vllm_bundle() | {"terraform/aws_budget.tf": aws_budget((80.0, 95.0, 150.0))}
    (line,) = _lines(bundle)
    assert line == (
        "terraform/aws_budget.tf: aws_budgets_budget.servewise: $.notification: thresholds 80%, 95%, 150% differ "
        "from google_billing_budget.servewise's 80%, 95%, 100%"
    )


def test_thresholds_must_match_the_plan_when_known():
    lines = _lines(vllm_bundle(), expected_budget=BudgetExpectation((50.0, 100.0)))
    assert len(lines) == 2 and all("differ from the plan's 50%, 100%" in line for line in lines)


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "terraform/aws_budget.tf",
            'resource "aws_budgets_budget" "x" {',
            "terraform/aws_budget.tf: -: $: Terraform does not parse",
        ),
        ("terraform/gcp_budget.tf", 'variable "x" {}\n', "terraform/gcp_budget.tf: -: $: no resource blocks"),
        (
            "terraform/aws_budget.tf",
            aws_budget().replace('"MONTHLY"', '"ANNUALLY"'),
            "terraform/aws_budget.tf: aws_budgets_budget.servewise: $.time_unit: must be 'MONTHLY'",
        ),
        (
            "terraform/aws_budget.tf",
            aws_budget().replace('"PERCENTAGE"', '"ABSOLUTE_VALUE"', 1),
            "terraform/aws_budget.tf: aws_budgets_budget.servewise: $.notification[0].threshold_type: must be",
        ),
    ],
)
def test_tampered_terraform_fails(path, text, expected):
    lines = _lines(vllm_bundle() | {path: text})
    assert any(line.startswith(expected) for line in lines), lines


def test_missing_budget_resource_fails():
    bundle = vllm_bundle()
    bundle["terraform/gcp_budget.tf"] = gcp_budget().replace("google_billing_budget", "google_storage_bucket")
    assert "terraform/: -: $: no google_billing_budget resource in the Terraform files" in _lines(bundle)


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "chart/Chart.yaml",
            "apiVersion: v1\nname: x\nversion: 0.1.0\n",
            "chart/Chart.yaml: Chart/x: $.apiVersion: must be 'v2'",
        ),
        (
            "chart/Chart.yaml",
            "apiVersion: v2\nname: x\nversion: '1.0'\n",
            "chart/Chart.yaml: Chart/x: $.version: must be a SemVer 2",
        ),
        ("chart/Chart.yaml", "apiVersion: v2\nversion: 0.1.0\n", "chart/Chart.yaml: Chart: $.name: required"),
        (
            "chart/values.yaml",
            "replicas: -1\nimage: {repository: r, tag: t}\n",
            "chart/values.yaml: values: $.replicas: -1 is less",
        ),
        (
            "chart/values.yaml",
            "replicas: 1\n",
            "chart/values.yaml: values: $: 'image' is a required property",
        ),
        (
            "chart/values.yaml",
            "replicas: 1\nimage: {repository: r, tag: t}\nenv: [{name: OPENAI_API_KEY, value: sk-1}]\n",
            "chart/values.yaml: values: $.env[0].value: env var OPENAI_API_KEY has a literal value",
        ),
        (
            "chart/values.schema.json",
            '{"type": 5}',
            "chart/values.schema.json: -: $: not a valid JSON Schema",
        ),
    ],
)
def test_helm_chart_checks(path, text, expected):
    lines = _lines(helm_bundle() | {path: text})
    assert any(line.startswith(expected) for line in lines), lines


def test_helm_lint_is_skipped_and_said_so_without_helm(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    report = check_files(as_files(helm_bundle()))
    assert report.ok and any("helm lint` skipped" in note for note in report.notes)


def test_stray_file_and_missing_manifests_fail():
    lines = sorted(_lines({"notes.bin": "x", "README.md": "# x\n"}))
    assert len(lines) == 2
    assert lines[0].startswith("kubernetes/: -: $: no kubernetes/*.yaml")
    assert lines[1].startswith("notes.bin: -: $: unexpected file in a deploy bundle")


def test_check_directory_reads_a_bundle_on_disk(tmp_path):
    root = write_bundle(tmp_path / "out", helm_bundle())
    (root / ".DS_Store").write_text("ignored")
    report = check_directory(root)
    assert report.ok
    assert {r.file for r in report.results} >= {
        "kubernetes/deployment.yaml",
        "chart/Chart.yaml",
        "chart/.helmignore",
    }


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_check_directory_bad_folder_is_a_usage_error(tmp_path, kind):
    target = tmp_path / "x"
    if kind == "file":
        target.write_text("x")
    elif kind == "empty":
        target.mkdir()
    with pytest.raises(UsageError, match=r"--check .*x: (no such folder|not a folder|the folder is empty)"):
        check_directory(target)


def test_load_objects_returns_every_manifest_object():
    kinds = [o["kind"] for o in load_objects(as_files(vllm_bundle()))]
    assert sorted(kinds) == ["Deployment", "PrometheusRule", "ScaledObject", "Service", "ServiceMonitor"]


def test_report_document_lists_problems(tmp_path: Path):
    bundle = vllm_bundle() | {
        "kubernetes/deployment.yaml": DEPLOYMENT.replace("replicas: 2", 'replicas: "three"')
    }
    document = check_files(as_files(bundle)).document()
    assert document["ok"] is False and len(document["problems"]) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("workload", ["single_gpu", "tp_multi_gpu", "fp8", "cpu", "prefix", "budget"])
@pytest.mark.parametrize("target", ["vllm", "kserve", "helm"])
@pytest.mark.parametrize("autoscaler", ["keda", "hpa"])
def test_real_rendered_bundles_pass(plans, workload, target, autoscaler):
    """What `render_bundle` writes for real plans passes every check, on the pinned and on the newest version."""
    from servewise.deploy import deploy_spec, render_bundle

    spec = deploy_spec(plans[workload], autoscaler=autoscaler)
    if workload == "cpu" and target == "kserve":
        with pytest.raises(UsageError, match="use --target vllm or --target helm"):
            render_bundle(spec, target)  # the renderer refuses it: nothing to validate
        return
    files = render_bundle(spec, target)
    expected = BudgetExpectation(tuple(level.threshold_pct for level in spec.budget_levels))
    for version in ("1.33", K8S_NEWEST_CHECKED):
        report = check_files(files, expected_budget=expected, k8s_version=version)
        assert report.ok, [p.line() for p in report.problems]
        assert all(r.schema != "none" for r in report.results)
