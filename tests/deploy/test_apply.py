"""``--apply`` through the real ``kubernetes`` client. The happy path talks to ``kube_stub``, a STAND-IN API server
(no real Kubernetes API server can run on this machine); the no-kubeconfig and unreachable-cluster paths are real."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from servewise.deploy._apply import FIELD_MANAGER, apply_objects, kube_target, resource_path
from servewise.deploy._validate import load_objects
from servewise.errors import UsageError

from .bundle_fixtures import as_files, vllm_bundle
from .kube_stub import free_port, running_stub, write_kubeconfig


@pytest.fixture
def objects() -> list[dict[str, object]]:
    return load_objects(as_files(vllm_bundle()))


def test_apply_creates_then_leaves_unchanged_then_configures(tmp_path, monkeypatch, objects):
    """Stand-in server (see kube_stub): server-side apply PATCHes with the apply-patch content type."""
    with running_stub() as stub:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", stub.url)))
        first = apply_objects(objects)
        assert (
            first.target.context == "stub"
            and first.target.user == "alice"
            and first.target.server == stub.url
        )
        assert [o.action for o in first.objects] == ["created"] * 5
        assert [o.kind for o in first.objects][:2] == ["Service", "Deployment"]  # APPLY_ORDER
        patches = [r for r in stub.requests if r["method"] == "PATCH"]
        assert len(patches) == 5
        assert {r["content_type"] for r in patches} == {"application/apply-patch+yaml"}
        assert {r["query"]["fieldManager"] for r in patches} == {FIELD_MANAGER}
        assert {r["query"]["fieldValidation"] for r in patches} == {"Strict"}
        assert {r["authorization"] for r in patches} == {"Bearer stub-token"}
        assert "/apis/keda.sh/v1alpha1/namespaces/servewise/scaledobjects/vllm" in stub.objects

        again = apply_objects(objects)
        assert [o.action for o in again.objects] == ["unchanged"] * 5

        objects[0]["metadata"]["labels"] = {"changed": "yes"}  # type: ignore[index]
        third = apply_objects(objects)
        assert sorted(o.action for o in third.objects) == ["configured"] + ["unchanged"] * 4


def test_server_dry_run_stores_nothing(tmp_path, monkeypatch, objects):
    """Stand-in server (see kube_stub)."""
    with running_stub() as stub:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", stub.url)))
        result = apply_objects(objects, dry_run=True)
        assert result.dry_run and [o.action for o in result.objects] == ["created"] * 5
        assert stub.objects == {}
        assert {r["query"].get("dryRun") for r in stub.requests if r["method"] == "PATCH"} == {"All"}


def test_missing_crd_and_forbidden_are_one_line_errors(tmp_path, monkeypatch, objects):
    """Stand-in server (see kube_stub)."""
    with running_stub() as stub:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", stub.url)))
        stub.unserved_groups.add("keda.sh")
        with pytest.raises(UsageError, match=r"apply of ScaledObject/vllm failed: HTTP 404: .* is the CRD"):
            apply_objects(objects)
        stub.unserved_groups.clear()
        stub.forbidden_names.add("vllm-slo")
        with pytest.raises(UsageError, match=r"HTTP 403: forbidden: .* lacks RBAC") as err:
            apply_objects(objects)
        assert "\n" not in str(err.value)


def test_no_kubeconfig_is_one_line(tmp_path, monkeypatch, objects):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UsageError, match=r"^no usable kubeconfig .*set KUBECONFIG") as err:
        apply_objects(objects)
    assert "\n" not in str(err.value)


def test_unreachable_cluster_fails_fast_and_applies_nothing(tmp_path, monkeypatch, objects):
    closed = f"http://127.0.0.1:{free_port()}"  # bound and released: nothing listens there
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", closed)))
    with pytest.raises(UsageError, match=r"cannot reach the Kubernetes API server .*nothing was applied"):
        apply_objects(objects)


def test_unknown_context_lists_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")))
    with pytest.raises(UsageError, match=r"--context 'prod' is not in the kubeconfig \(contexts: stub\)"):
        kube_target("prod")


def test_unknown_kind_is_refused_before_anything_is_sent():
    with pytest.raises(UsageError, match=r"--apply does not know Widget example\.com/v1"):
        apply_objects([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])


def test_missing_kubernetes_package_says_install_the_extra(monkeypatch):
    monkeypatch.setitem(
        sys.modules, "kubernetes", None
    )  # what `import kubernetes` sees when it is not installed
    with pytest.raises(UsageError, match=r"install servewise\[kube\]"):
        kube_target()


def test_resource_paths():
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    assert resource_path(deployment) == "/apis/apps/v1/namespaces/n/deployments/d"
    assert resource_path(namespace) == "/api/v1/namespaces/n"
    assert resource_path(service, "ns") == "/api/v1/namespaces/ns/services/s"


def test_stub_kubeconfig_is_valid_json(tmp_path: Path):
    assert write_kubeconfig(tmp_path / "kc", "http://x").read_text().startswith("{")
