"""``servewise plan`` end to end, in-process, on a real SQLite catalog in a temporary folder."""

import json
from pathlib import Path

import pytest

from tests.cli_runner import CliResult, run_cli


@pytest.fixture(autouse=True)
def _catalog_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWISE_DB_URL", f"sqlite:///{tmp_path / 'catalog.db'}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    return run_cli(capsys, *args)


def test_plan_table_marks_the_chosen_row_and_explains(capsys):
    code, out, _ = run(capsys, "plan", "--use-case", "chatbot_conversational", "--qps", "20")
    assert code == 0
    chosen = next(line for line in out.splitlines() if "★" in line)
    assert "1x" in chosen and "fp8" in chosen
    assert "✓" in chosen and ("analytical" in chosen or "calibrated" in chosen)
    assert "why:" in out and "price:" in out and "source" in out


def test_plan_json_is_the_documented_document_and_o_writes_the_same(capsys, tmp_path: Path):
    target = tmp_path / "plan.json"
    code, out, _ = run(
        capsys, "plan", "-u", "chatbot_conversational", "--qps", "20", "--format", "json", "-o", str(target)
    )
    assert code == 0
    document = json.loads(out)
    assert document == json.loads(target.read_text())
    assert set(document) == {
        "schema_version",
        "workload",
        "peak_qps",
        "options",
        "chosen",
        "rejected",
        "assumptions",
        "why",
        "candidates_evaluated",
        "models_usable",
        "gpus_usable",
        "alerts",
    }
    option = document["options"][document["chosen"]]
    # no budget given: the alert thresholds are 80/95/100 % of the chosen option's monthly cost
    alerts = document["alerts"]
    assert alerts["budget_source"] == "chosen option"
    assert alerts["budget_usd_month"] == pytest.approx(option["cost"]["usd_per_month"])
    assert [level["threshold_usd"] for level in alerts["levels"]] == pytest.approx(
        [0.8 * alerts["budget_usd_month"], 0.95 * alerts["budget_usd_month"], alerts["budget_usd_month"]]
    )
    assert alerts["policy"]["anomaly_factor"] == 1.5 and alerts["policy"]["anomaly_baseline"] == "median"
    assert set(option) == {
        "rank",
        "candidate",
        "replicas",
        "gpus_total",
        "perf",
        "cost",
        "slo",
        "within_budget",
    }
    assert {"usd_per_hour", "usd_per_month", "usd_per_1m_output_tokens", "placements"} <= set(option["cost"])
    assert {"source", "as_of", "provider", "instance_type"} <= set(option["cost"]["placements"][0]["offer"])
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # a shareable document, not a private temp file
    assert {"ttft", "itl", "e2e", "provenance", "max_qps_per_replica", "memory"} <= set(option["perf"])


def test_plan_csv_and_markdown(capsys):
    code, out, _ = run(capsys, "plan", "-u", "code_completion", "--qps", "3", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("mark,rank,model,precision,gpus")
    assert out.splitlines()[1].startswith("*,1,")
    code, out, _ = run(
        capsys, "plan", "-u", "code_completion", "--qps", "3", "--format", "markdown", "--top", "2"
    )
    assert code == 0 and "| # | model |" in out.replace("|  | # |", "| # |") and "- why:" in out


def test_plan_from_a_yaml_file_with_users_and_flags_on_top(capsys, tmp_path: Path):
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "use_case: document_analysis_rag\ntraffic:\n  users: 2000\n  requests_per_user_hour: 6\n"
        "  peak_factor: 3\nconstraints:\n  gpus: [H100]\n"
    )
    code, out, _ = run(capsys, "plan", "-f", str(workload), "--format", "json", "--budget-usd-month", "50000")
    assert code == 0
    document = json.loads(out)
    assert document["peak_qps"] == pytest.approx(2000 * 6 / 3600 * 3)
    assert {o["candidate"]["gpu"] for o in document["options"]} <= {"H100-SXM", "H100-PCIe", "H100-NVL"}
    assert document["workload"]["constraints"]["gpus"] == ["H100-SXM", "H100-PCIe", "H100-NVL"]
    # the workload's budget sets the alert thresholds: 80 % of $50,000 = $40,000, 95 % = $47,500
    assert document["alerts"]["budget_source"] == "workload"
    assert [level["threshold_usd"] for level in document["alerts"]["levels"]] == [40_000, 47_500, 50_000]


def test_show_rejected_lists_reasons(capsys):
    code, out, _ = run(
        capsys,
        "plan",
        "-u",
        "chatbot_conversational",
        "--qps",
        "5",
        "--model",
        "Llama-3.1-70B",
        "--show-rejected",
    )
    assert code == 0
    assert "[memory] Llama-3.1-70B bf16 on 1xL4: weights need 141.2 GB per GPU" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--qps", "-5"], "--qps: Input should be greater than 0 (got -5.0)"),
        (["--qps", "0"], "--qps: Input should be greater than 0"),
        (["--qps", "3", "--budget-usd-month", "-1"], "--budget-usd-month: Input should be greater than 0"),
        (["--qps", "3", "--gpu", "H300"], "unknown gpu 'H300'; did you mean"),
        (["--qps", "3", "--model", "llama-3.1-8c"], "did you mean 'Llama-3.1-8B'"),
        (["--qps", "3", "--provider", "awz"], "did you mean 'aws'"),
        (["--qps", "20", "--ttft-p95-ms", "1"], "no option meets the SLO; ttft_p95_ms binds"),
        (["--qps", "20", "--budget-usd-month", "100"], "no option fits the budget of $100/month"),
        (
            ["--qps", "5", "--model", "Llama-3.1-70B", "--gpu", "L4", "--max-gpus", "1"],
            "no configuration fits",
        ),
        ([], "no request rate"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path: Path, args, message):
    target = tmp_path / "plan.json"
    code, out, err = run(capsys, "plan", "-u", "chatbot_conversational", *args, "-o", str(target))
    assert code == 2
    assert message in " ".join(err.split())
    assert len(err.strip().splitlines()) <= 3  # one logical line (Rich may wrap it on a narrow terminal)
    assert not target.exists()
    assert out == ""


def test_unknown_use_case_and_malformed_yaml(capsys, tmp_path: Path):
    code, _, err = run(capsys, "plan", "-u", "chatbot_convo", "--qps", "1")
    assert code == 2 and "did you mean 'chatbot_conversational'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("traffic: {qps: 1\n")
    code, _, err = run(capsys, "plan", "-f", str(bad))
    assert code == 2 and "malformed" in err
    code, _, err = run(capsys, "plan")
    assert code == 2 and "describe the workload" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--qps", "inf"], "--qps: Input should be a finite number"),
        (["--qps", "abc"], "Invalid value for '--qps'"),
        (["--qpz", "3"], "No such option: --qpz"),
        (["--qps", "3", "--format", "yaml"], "'yaml' is not one of"),
        (["--qps", "3", "--top", "0"], "Invalid value for '--top'"),
    ],
)
def test_usage_errors_are_one_line_too(capsys, args, message):
    code, out, err = run(capsys, "plan", "-u", "chatbot_conversational", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in " ".join(err.split())
    assert "Traceback" not in err and "╭" not in err
    assert (
        "`servewise --help`" not in err
    )  # Typer's errors point at `servewise plan --help`, where the flags are


def test_a_usage_error_outside_a_subcommand_points_at_the_top_help(capsys):
    code, _, err = run(capsys, "plan", "--qpz", "3")
    assert code == 2 and err.rstrip().endswith("(see `servewise plan --help`)")
    code, _, err = run(capsys, "--nope")
    assert code == 2 and err.rstrip().endswith("(see `servewise --help`)")
    code, _, err = run(capsys, "catalog", "list", "gpu")
    assert code == 2 and err.rstrip().endswith("(see `servewise catalog list --help`)")


def test_output_to_a_folder_or_an_unwritable_place_is_a_one_line_error(capsys, tmp_path: Path):
    code, out, err = run(capsys, "plan", "-u", "chatbot_conversational", "--qps", "3", "-o", str(tmp_path))
    assert code == 2 and "it is a folder" in err and out == ""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, out, err = run(
            capsys, "plan", "-u", "chatbot_conversational", "--qps", "3", "-o", str(locked / "p.json")
        )
    finally:
        locked.chmod(0o700)
    import os

    if os.geteuid() != 0:  # root writes anywhere; the folder case above still covers the error path
        assert code == 2 and "cannot write" in err
    assert list(locked.iterdir()) in ([], [locked / "p.json"])


def test_a_flag_rate_replaces_the_files_rate(capsys):
    code, out, _ = run(capsys, "plan", "-f", "examples/support-bot.yaml", "--qps", "10", "--format", "json")
    assert code == 0
    traffic = json.loads(out)["workload"]["traffic"]
    assert traffic["qps"] == 10 and traffic["users"] is None


def test_show_rejected_lists_reasons_even_when_nothing_is_feasible(capsys):
    code, _, err = run(capsys, "plan", "-u", "chatbot_conversational", "--qps", "3", "--model", "Llama-3.2-1B",
                       "--show-rejected")  # fmt: skip
    assert code == 2
    assert "[quality] Llama-3.2-1B" in err
    assert "every allowed model is below the quality floor" in " ".join(err.split())


def test_a_misspelled_key_is_reported_before_what_it_causes(capsys, tmp_path: Path):
    workload = tmp_path / "w.yaml"
    workload.write_text("use_case: translation\ntrafic:\n  qps: 3\n")
    code, _, err = run(capsys, "plan", "-f", str(workload))
    assert code == 2 and "trafic: Extra inputs are not permitted" in err
