"""``servewise deploy``: the README's "done when" sequence for every target, bad input (one line, exit 2, nothing
written), ``--check`` failures (exit 1, one line per problem) and ``--apply`` with and without a cluster. The happy
apply path talks to ``tests/deploy/kube_stub.py``, a STAND-IN API server (no real one can run on this machine)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from servewise.cli import main
from tests.deploy.kube_stub import free_port, running_stub, write_kubeconfig

PLAN_ARGS = ("plan", "-u", "chatbot_conversational", "--qps", "20", "-o", "plan.json")


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory, catalog_url: str) -> Iterator[Path]:
    """A folder holding the plan.json that `servewise plan -u chatbot_conversational --qps 20 -o plan.json` wrote."""
    folder = tmp_path_factory.mktemp("plan")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERVEWISE_DB_URL", catalog_url)
        patch.chdir(folder)
        main(list(PLAN_ARGS))
    yield folder


@pytest.fixture
def workdir(plan_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(plan_dir / "plan.json", tmp_path / "plan.json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("target", ["vllm", "kserve", "helm"])
def test_done_when_sequence(cli, workdir, target):
    """The README's "done when": `servewise plan -u chatbot_conversational --qps 20 -o plan.json` (the module
    fixture) `&& servewise deploy plan.json --target T -o out/ && servewise deploy --check out/`."""
    code, out, err = cli("deploy", "plan.json", "--target", target, "-o", "out/")
    assert code == 0, err
    assert (workdir / "out" / "README.md").is_file() and (
        workdir / "out" / "terraform" / "aws_budget.tf"
    ).is_file()
    assert "option 1 ★:" in out and "/month" in out
    code, out, err = cli("deploy", "--check", "out/")
    assert code == 0, err
    assert "Kubernetes 1.33 strict" in out and err == ""
    assert ("chart/Chart.yaml" in out) == (target == "helm")
    assert ("InferenceService/" in out) == (target == "kserve")


def test_check_json_document(cli, workdir):
    assert cli("deploy", "plan.json", "-o", "out")[0] == 0
    code, out, _ = cli("deploy", "--check", "out", "--format", "json")
    document = json.loads(out)
    assert code == 0 and document["ok"] is True and document["problems"] == []


def test_default_output_is_deploy_and_refuses_to_overwrite_without_force(cli, workdir):
    assert cli("deploy", "plan.json")[0] == 0
    readme = workdir / "deploy" / "README.md"
    readme.write_text("edited")
    code, _, err = cli("deploy", "plan.json")
    assert code == 2 and "exists and is not empty; add --force" in err
    assert readme.read_text() == "edited"
    assert cli("deploy", "plan.json", "--force", "--target", "kserve")[0] == 0
    assert readme.read_text() != "edited"
    assert (workdir / "deploy" / "kubernetes" / "inferenceservice.yaml").is_file()
    assert sorted(p.name for p in workdir.iterdir()) == ["deploy", "plan.json"]  # no staging or backup left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy", "missing.json"), "plan file missing.json does not exist"),
        (("deploy", "plan.json", "--option", "99999"), "option 99999 is out of range"),
        (("deploy", "plan.json", "--image", ""), "--image '' is not an image reference"),
        (("deploy", "plan.json", "--target", "nomad"), "Invalid value for '--target'"),
        (("deploy", "bad.json"), "is not JSON"),
        (("deploy", "plan.json", "-o", "/proc/servewise-out"), "cannot write -o /proc/servewise-out"),
        (("deploy", "plan.json", "-o", "no/such/folder"), "does not exist; create it first"),
        (("deploy", "plan.json", "--check", "out"), "give exactly one of PLAN"),
        (("deploy",), "give exactly one of PLAN"),
        (("deploy", "plan.json", "--dry-run", "server"), "--dry-run server only applies with --apply"),
        (("deploy", "--check", "nowhere"), "--check nowhere: no such folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, workdir, args, message):
    (workdir / "bad.json").write_text('{"schema_version": "1", "options": [')
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in workdir.iterdir()) == ["bad.json", "plan.json"]


def test_check_reports_an_invalid_deployment(cli, workdir):
    assert cli("deploy", "plan.json", "-o", "out")[0] == 0
    deployment = workdir / "out" / "kubernetes" / "deployment.yaml"
    text = deployment.read_text()
    assert "  replicas: 1\n" in text
    deployment.write_text(text.replace("  replicas: 1\n", '  replicas: "three"\n', 1))
    code, out, err = cli("deploy", "--check", "out")
    assert code == 1
    assert "FAIL (1)" in out
    (line,) = err.strip().splitlines()
    assert line.startswith("error: kubernetes/deployment.yaml: Deployment/")
    assert ": $.spec.replicas: 'three' is not of type 'integer', 'null'" in line


def test_check_reports_a_tampered_terraform_file(cli, workdir):
    assert cli("deploy", "plan.json", "-o", "out")[0] == 0
    aws = workdir / "out" / "terraform" / "aws_budget.tf"
    text = aws.read_text()
    assert "threshold                  = 95" in text or "= 95" in text
    aws.write_text(text.replace("= 95", "= 99", 1))
    code, _, err = cli("deploy", "--check", "out")
    assert code == 1
    assert (
        "terraform/aws_budget.tf: aws_budgets_budget." in err and "differ from google_billing_budget" in err
    )


def test_apply_without_a_cluster_fails_in_one_line_and_is_audited(cli, workdir, monkeypatch, tmp_path):
    monkeypatch.setenv("SERVEWISE_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", closed, context="dead")))
    code, _, err = cli("deploy", "plan.json", "--apply")
    assert code == 2 and err.count("\n") == 1
    assert (
        "cannot reach the Kubernetes API server" in err and "nothing was applied" in err and "audit #1" in err
    )
    assert not (workdir / "deploy").exists()  # --apply without -o writes nothing
    code, out, _ = cli("deploy", "--audit", "--format", "json")
    (entry,) = json.loads(out)
    assert entry["result"] == "failed" and entry["kube_context"] == "dead" and entry["kube_user"] == "alice"
    assert len(entry["plan_sha256"]) == 64 and entry["target"] == "vllm" and entry["option_rank"] == 1


def test_apply_with_no_kubeconfig(cli, workdir, monkeypatch, tmp_path):
    monkeypatch.setenv("SERVEWISE_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    code, _, err = cli("deploy", "plan.json", "--apply", "--dry-run", "server")
    assert code == 2 and "no usable kubeconfig" in err


def test_apply_and_audit_against_the_stand_in_server(cli, workdir, monkeypatch, tmp_path):
    """Stand-in API server (tests/deploy/kube_stub.py): the kubernetes client sends real server-side applies."""
    monkeypatch.setenv("SERVEWISE_DB_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    with running_stub() as stub:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", stub.url)))
        code, out, err = cli("deploy", "plan.json", "--apply", "--dry-run", "server")
        assert code == 0, err
        assert "server dry run" in out and stub.objects == {}
        code, out, err = cli("deploy", "plan.json", "--apply", "-o", "out", "--format", "json")
        assert code == 0, err
        document = json.loads(out)
        actions = {o["action"] for o in document["apply"]["objects"]}
        assert actions == {"created"} and len(stub.objects) == len(document["apply"]["objects"])
        assert (workdir / "out" / "README.md").is_file()
        code, out, _ = cli("deploy", "plan.json", "--apply")
        assert code == 0 and "unchanged" in out and "created" not in out
    code, out, _ = cli("deploy", "--audit")
    assert code == 0 and out.count("│ ok") == 3 and "alice@stub" in out
