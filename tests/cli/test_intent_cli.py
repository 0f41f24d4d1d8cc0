"""``servewise intent``: the parsed workload, assumptions and ignored phrases in a table or JSON, the workload file
written with ``-o``, and one-line errors for text that describes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from servewise.workload import load_workload_file

from .conftest import CliResult

TEXT = "a support chatbot for 5,000 employees, answers within half a second, under $8k a month, on Kubernetes"


def test_table_shows_fields_assumptions_and_ignored(cli: Callable[..., CliResult]) -> None:
    code, out, err = cli("intent", TEXT)
    assert code == 0, err
    assert "chatbot_conversational" in out
    assert "traffic.users" in out and "5000" in out
    assert "slo.ttft_p95_ms" in out and "500" in out
    assert "assumption: assumed 20 requests per employee per working day" in out
    assert "ignored: on Kubernetes" in out


def test_json_is_the_intent_document(cli: Callable[..., CliResult]) -> None:
    code, out, err = cli("intent", TEXT, "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["method"] == "rules"
    assert document["workload"]["traffic"]["users"] == 5000
    assert document["data"]["budget_usd_month"] == 8000
    assert any("business-hours peak factor 3" in line for line in document["assumptions"])
    assert document["ignored"] == ["on Kubernetes"]


def test_output_writes_a_workload_file_plan_reads(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    path = tmp_path / "workload.yaml"
    code, out, err = cli("intent", TEXT, "-o", str(path), "--format", "json")
    assert code == 0, err
    assert path.read_text(encoding="utf-8").startswith("# servewise intent (rules): a support chatbot")
    assert load_workload_file(path) == json.loads(out)["data"]


def test_text_that_describes_nothing_is_one_line_with_an_example(cli: Callable[..., CliResult]) -> None:
    code, out, err = cli("intent", "hello world")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "describe the traffic, e.g." in err and "5,000 employees" in err
