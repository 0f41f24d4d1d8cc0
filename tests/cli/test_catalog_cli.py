"""``servewise catalog …`` run in-process against a temporary SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from servewise.cli._catalog import catalog_app


@pytest.fixture
def runner(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SERVEWISE_DB_URL", sqlite_url)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_list_gpus_table(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["list", "gpus"])
    assert result.exit_code == 0, result.output
    assert "H100-SXM" in result.output and "B300" in result.output


def test_list_offers_filter_json(runner: CliRunner) -> None:
    result = runner.invoke(
        catalog_app, ["list", "offers", "--filter", "gpu=h100", "--filter", "provider=AWS", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    offers = json.loads(result.stdout)
    assert offers and all(o["provider"] == "aws" and "H100" in o["gpu"] for o in offers)
    assert set(offers[0]) >= {"price_per_hour_usd", "source", "as_of", "notes"}


def test_list_api_prices_csv_has_every_column(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["list", "api-prices", "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert header.startswith("provider,model,input_per_1m_usd") and header.endswith("source,as_of,notes")


def test_list_benchmarks_limits_tables_not_json(runner: CliRunner) -> None:
    table = runner.invoke(catalog_app, ["list", "benchmarks", "-f", "markdown"])
    assert table.exit_code == 0, table.output
    assert "showing 50 of 2632 rows" in table.stdout
    document = runner.invoke(catalog_app, ["list", "benchmarks", "-f", "json", "--filter", "system=gb200"])
    rows = json.loads(document.stdout)
    assert (len(rows) == 77 and rows[0]["measured_date"] is None) or isinstance(rows[0]["measured_date"], str)


def test_unknown_filter_key_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["list", "gpus", "--filter", "colour=red"])
    assert result.exit_code == 2
    assert "unknown filter key 'colour'" in result.stderr and "memory_gb" in result.stderr


def test_show_gpu_model_use_case(runner: CliRunner) -> None:
    gpu = runner.invoke(catalog_app, ["show", "h100_sxm", "-f", "json"])
    assert gpu.exit_code == 0, gpu.output
    document = json.loads(gpu.stdout)
    assert document["kind"] == "gpu" and document["record"]["name"] == "H100-SXM"
    assert document["offers"] and "source" in document["record"]
    model = json.loads(
        runner.invoke(catalog_app, ["show", "nvidia/Llama-3.1-8B-Instruct-FP8", "-f", "json"]).stdout
    )
    assert model["record"]["name"] == "Llama-3.1-8B" and model["benchmark_rows"] == 244
    use_case = runner.invoke(catalog_app, ["show", "chatbot_conversational"])
    assert use_case.exit_code == 0 and "ttft_p95_ms" in use_case.stdout


def test_show_unknown_suggests(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["show", "chatbot"])
    assert result.exit_code == 2
    assert "did you mean 'chatbot_conversational'" in result.stderr


def test_health_strict_and_json(runner: CliRunner) -> None:
    plain = runner.invoke(catalog_app, ["health", "--today", "2026-11-25", "-f", "json"])
    assert plain.exit_code == 0, plain.output
    document = json.loads(plain.stdout)
    assert document["errors"] == 0 and document["warnings"] > 0
    strict = runner.invoke(catalog_app, ["health", "--strict"])
    assert strict.exit_code == 1


def test_import_then_list(runner: CliRunner, tmp_path: Path) -> None:
    csv_file = tmp_path / "aliases.csv"
    csv_file.write_text("kind,alias,target,source\ngpu,hopper,H100-SXM,team wiki\n", encoding="utf-8")
    imported = runner.invoke(catalog_app, ["import", "aliases", str(csv_file)])
    assert imported.exit_code == 0, imported.output
    assert "imported 1 aliases row(s)" in imported.stderr
    shown = json.loads(runner.invoke(catalog_app, ["show", "hopper", "-f", "json"]).stdout)
    assert shown["record"]["name"] == "H100-SXM"


def test_db_url_option_overrides_environment(runner: CliRunner, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = runner.invoke(catalog_app, ["--db-url", other, "list", "use-cases", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "other.db").is_file()
    bad = runner.invoke(catalog_app, ["list", "gpus", "--db-url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"])
    assert bad.exit_code == 2 and "pw@" not in bad.stderr and "cannot connect" in bad.stderr


def test_through_main(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from servewise.cli import main

    monkeypatch.setenv("SERVEWISE_DB_URL", sqlite_url)
    try:
        main(["catalog", "list", "models", "--filter", "name=llama-3.1", "-f", "json"])
    except SystemExit as exited:  # main() may or may not exit on success
        assert exited.code in (0, None)
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert names == ["Llama-3.1-8B", "Llama-3.1-70B", "Llama-3.1-405B"]
    with pytest.raises(SystemExit) as failed:
        main(["catalog", "list", "gpus", "--filter", "nope=1"])
    assert failed.value.code == 2


def test_negative_limit_is_rejected(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["list", "use-cases", "--limit", "-1", "-f", "json"])
    assert result.exit_code == 2
    assert "--limit" in result.output
    every = runner.invoke(catalog_app, ["list", "use-cases", "--limit", "0", "-f", "json"])
    assert every.exit_code == 0 and len(json.loads(every.stdout)) == 9


def test_show_unknown_without_suggestions_reads_as_sentences(runner: CliRunner) -> None:
    result = runner.invoke(catalog_app, ["show", "qqqqqqqq"])
    assert result.exit_code == 2
    assert "'qqqqqqqq' is not a GPU, model or use case in the catalog. See" in " ".join(result.stderr.split())


def test_import_errors_are_one_line_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    csv_file = tmp_path / "gpus.csv"
    header = "name,vendor,memory_gb,memory_bw_gbps,fp16_tflops,bf16_tflops,fp8_tflops,int8_tops,fp4_tflops,"
    header += "interconnect,intra_node_bw_gbps,max_per_node,tdp_w,launch_year,list_price_usd,source\n"
    csv_file.write_text(header + "X1,acme,80,0,,1000,,,,nvlink,900,8,,,,me\n", encoding="utf-8")
    result = runner.invoke(catalog_app, ["import", "gpus", str(csv_file)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "gpus.csv:2: column memory_bw_gbps: got '0', must be > 0" in " ".join(result.stderr.split())
