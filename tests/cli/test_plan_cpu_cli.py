"""``servewise plan --cpu/--no-cpu`` and ``catalog list cpus`` end to end, on a fresh SQLite catalog."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.cli_runner import CliResult, run_cli

SMALL = (
    "plan", "--prompt-tokens", "256", "--output-tokens", "128", "--qps", "0.05", "--ttft-p95-ms", "2000",
    "--itl-p95-ms", "150", "--model", "Llama-3.2-1B", "--precision", "int4",
)  # fmt: skip


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cpu-catalog') / 'catalog.db'}"


@pytest.fixture(autouse=True)
def _catalog_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWISE_DB_URL", db_url)
    monkeypatch.setenv("COLUMNS", "250")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    return run_cli(capsys, *args)


def test_small_load_table_marks_a_cpu_row_and_prints_the_cpu_assumption(capsys):
    code, out, _ = run(capsys, *SMALL)
    assert code == 0
    chosen = next(line for line in out.splitlines() if "★" in line)
    assert "c7i.2xlarge 8 vCPU x1" in chosen and "analytical" in chosen and "260.6" in chosen
    assert "assumption: CPU options (analytical" in out


def test_json_carries_the_cpu_fields_and_no_cpu_removes_them(capsys, tmp_path: Path):
    code, out, _ = run(capsys, *SMALL, "--format", "json")
    assert code == 0
    chosen = json.loads(out)["options"][0]
    assert chosen["candidate"]["cpu"] == "c7i.2xlarge" and chosen["candidate"]["vcpus"] == 8
    assert chosen["gpus_total"] == 0 and chosen["perf"]["provenance"] == "analytical"
    code, out, _ = run(capsys, *SMALL, "--no-cpu", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and not any("vCPU" in row["gpus"] for row in rows)


def test_too_slow_everywhere_fails_with_one_line_exit_2_and_writes_nothing(capsys, tmp_path: Path):
    target = tmp_path / "plan.json"
    code, out, err = run(capsys, *SMALL, "--cpu", "--gpu", "T4", "--itl-p95-ms", "1", "-o", str(target))
    assert code == 2 and not out and not target.exists()
    assert err.strip().count("\n") == 0 and "no option meets the SLO" in err


def test_catalog_lists_cpus_in_every_format(capsys):
    code, out, _ = run(capsys, "catalog", "list", "cpus", "--format", "csv")
    assert code == 0
    rows = {row["instance_type"]: row for row in csv.DictReader(io.StringIO(out))}
    assert set(rows) >= {"c7i.2xlarge", "c7i.4xlarge", "m7i.2xlarge"}
    assert (
        float(rows["c7i.4xlarge"]["memory_bw_gbps"]) == 51.2 and "ASSUMPTION" in rows["c7i.4xlarge"]["notes"]
    )
    code, out, _ = run(capsys, "catalog", "list", "cpus", "--format", "json")
    assert code == 0 and len(json.loads(out)) == len(rows)
