"""``servewise bench URL`` and ``servewise bench import FILE`` in-process against a real tiny SSE server: both
command shapes, the three output formats, --against, --save, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from servewise.bench import summary_keys
from servewise.catalog import open_catalog

from ..bench.tiny_server import MODEL, TinyServer, free_port, running_tiny_server

GUIDELLM = Path(__file__).resolve().parent.parent / "bench" / "data" / "guidellm_benchmarks.json"
SMALL = ("--isl", "64", "--osl", "4", "--requests", "4", "--warmup", "0")


@pytest.fixture(scope="module")
def tiny() -> Iterator[TinyServer]:
    with running_tiny_server() as server:
        yield server


@pytest.fixture
def fast(tiny: TinyServer) -> TinyServer:
    tiny.state.reset(ttft_s=0.005, itl_s=0.001, tokens_per_chunk=1)
    return tiny


def _json(cli, *args: str) -> dict:
    code, out, err = cli(*args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_bench_url_runs_each_concurrency_level(cli, fast: TinyServer):
    document = _json(cli, "bench", fast.url, "--concurrency", "1,2", *SMALL, "--range-ratio", "1")
    assert document["model"] == MODEL  # the first of GET /v1/models
    assert [level["concurrency"] for level in document["levels"]] == [1, 2]
    for level in document["levels"]:
        assert (level["requests"], level["completed"], level["failed"]) == (4, 4, 0)
        assert level["mean_output_tokens"] == 4 and level["latency_ms"]["ttft"]["p50"] >= 5.0
        assert set(level["latency_ms"]) == {"ttft", "itl", "tpot", "e2e"}
    assert fast.state.max_in_flight == 2
    assert "TPOT = (E2E - TTFT)" in document["definitions"]


def test_bench_run_url_is_the_same_command(cli, fast: TinyServer):
    document = _json(
        cli, "bench", "run", fast.url, "-c", "1", *SMALL, "--model", "other", "--endpoint", "chat"
    )
    assert document["model"] == "other" and document["endpoint"] == "chat"
    assert fast.state.bodies[-1]["model"] == "other" and "messages" in fast.state.bodies[-1]


def test_bench_help_lists_both_shapes(cli):
    code, out, _ = cli("bench", "--help")
    assert code == 0 and "run" in out and "import" in out


def test_rate_and_trace_are_open_loop(cli, fast: TinyServer, tmp_path: Path):
    document = _json(cli, "bench", fast.url, "--rate", "50", *SMALL)
    assert document["levels"][0]["mode"] == "poisson" and document["levels"][0]["completed"] == 4
    trace = tmp_path / "trace.csv"
    trace.write_text("time_s,prompt_tokens,output_tokens\n0,10,2\n0.01,20,3\n0.02,30,4\n")
    document = _json(cli, "bench", fast.url, "--trace", str(trace), "--warmup", "0")
    assert document["levels"][0]["completed"] == 3 and document["levels"][0]["mean_output_tokens"] == 3


def test_csv_has_one_row_per_level_and_table_prints_definitions(cli, fast: TinyServer):
    code, out, err = cli("bench", fast.url, "-c", "1,2", *SMALL, "--format", "csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split(",") == summary_keys() and len(lines) == 3
    code, out, err = cli("bench", fast.url, "-c", "1", *SMALL)
    assert code == 0, err
    assert "concurrency 1" in out and "TTFT" in out and "definitions:" in out and "assumption:" in out


def test_against_a_plan_prints_predicted_next_to_measured(cli, fast: TinyServer, tmp_path: Path):
    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-u", "chatbot_conversational", "--qps", "2", "--gpu", "L4", "--model",
                       "Llama-3.1-8B", "-o", str(plan))  # fmt: skip
    assert code == 0, err
    document = _json(cli, "bench", fast.url, "-c", "1", *SMALL, "--against", str(plan), "--option", "1")
    comparison = document["comparison"][0]
    assert comparison["predicted_for"].startswith("plan option 1: Llama-3.1-8B")
    # the tiny server names another model: said, as a doubt (a --served-model-name alias would look the same)
    assert document["comparison_warning"].startswith(f"the endpoint serves '{MODEL}' and plan option 1")
    rows = {row["key"]: row for row in comparison["rows"]}
    ttft = rows["ttft_p50_ms"]
    assert ttft["measured"] == document["levels"][0]["latency_ms"]["ttft"]["p50"]
    assert ttft["error_pct"] == pytest.approx(
        (ttft["predicted"] - ttft["measured"]) / ttft["measured"] * 100, abs=0.1
    )
    code, out, err = cli("bench", fast.url, "-c", "1", *SMALL, "--against", str(plan), "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0] == "label,key,predicted,measured,error_pct"


def test_against_without_lengths_sends_the_plans_workload_lengths(cli, fast: TinyServer, tmp_path: Path):
    """The replica a plan deploys refuses requests longer than its max_model_len, so --against without --isl/--osl
    measures the plan's own workload (chatbot_conversational: 512 -> 256), not the 1024 -> 128 default."""
    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-u", "chatbot_conversational", "--qps", "2", "--gpu", "L4", "--model",
                       "Llama-3.1-8B", "-o", str(plan))  # fmt: skip
    assert code == 0, err
    document = _json(cli, "bench", fast.url, "-c", "1", "--requests", "2", "--against", str(plan))
    assert (document["lengths"]["isl"], document["lengths"]["osl"]) == (512, 256)
    assert any("mean lengths of" in line for line in document["assumptions"])


def test_save_adds_closed_loop_rows_to_the_catalog(cli, fast: TinyServer, sqlite_url: str):
    code, _, err = cli("bench", fast.url, "-c", "1,2", *SMALL, "--save", "--model-name", "llama-3.1-8b",
                       "--gpu", "l4", "--precision", "bf16", "--db-url", sqlite_url)  # fmt: skip
    assert code == 0, err
    assert "saved 2 measured row(s)" in err
    with open_catalog(sqlite_url) as catalog:
        rows = catalog.benchmarks(model="Llama-3.1-8B", gpu="L4")
    assert sorted(r.concurrency for r in rows) == [1, 2]
    assert all(
        r.source.startswith(f"servewise bench {fast.url} ") and r.isl == 64 and r.osl == 4 for r in rows
    )
    assert all(r.model == "Llama-3.1-8B" and r.system == "L4" for r in rows)  # canonical names


def test_import_guidellm_adds_its_closed_loop_benchmarks(cli, sqlite_url: str):
    code, out, err = cli("bench", "import", str(GUIDELLM), "--gpu", "H100-SXM", "--precision", "bf16",
                         "--db-url", sqlite_url, "--format", "json")  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["written"] == 2 and document["system"]["model"] == "Llama-3.1-8B"  # named by the report
    assert [b["status"] for b in document["benchmarks"]] == [
        "added",
        "added",
        "skipped: open loop (no concurrency)",
    ]
    with open_catalog(sqlite_url) as catalog:
        rows = catalog.benchmarks(model="Llama-3.1-8B", gpu="H100-SXM", backend="vllm", precision="bf16")
    imported = sorted(
        (r.concurrency, r.isl, r.osl, round(r.tpot_ms, 2)) for r in rows if r.source.startswith("guidellm")
    )
    assert imported == [(1, 1024, 128, 6.94), (8, 1024, 128, 7.91)]


def test_import_dry_run_writes_nothing(cli, sqlite_url: str):
    code, _, err = cli("bench", "import", str(GUIDELLM), "--model-name", "Llama-3.1-8B", "--gpu", "H100-SXM",
                       "--precision", "bf16", "--db-url", sqlite_url, "--dry-run")  # fmt: skip
    assert code == 0, err
    assert "would add 2 row(s)" in err
    with open_catalog(sqlite_url) as catalog:
        assert (
            catalog.benchmarks(model="Llama-3.1-8B", gpu="H100-SXM", backend="vllm", precision="bf16") == []
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-c", "1", "--rate", "2"), "give exactly one load"),
        (("-c", "0"), "--concurrency values must be >= 1"),
        (("-c", "1,x"), "whole numbers separated by commas"),
        (("--rate", "-1"), "--rate values must be positive"),
        (("-c", "1", "--save"), "--save needs --model-name, --gpu, --precision"),
        (("--rate", "2", "--save"), "--save records closed-loop points"),
        (
            (
                "-c",
                "1",
                "--save",
                "--range-ratio",
                "1",
                "--model-name",
                "x",
                "--gpu",
                "L4",
                "--precision",
                "bf16",
            ),
            "--range-ratio 0.8",
        ),
        (
            ("-c", "1", "--save", "--model-name", "Llama-3.1-8B", "--gpu", "L5", "--precision", "bf16"),
            "unknown gpu 'L5'",
        ),
        (("--rate", "2", "--against", "plan.json"), "--against compares closed-loop levels"),
        (("-c", "1", "--option", "2"), "give --against too"),
        (("-c", "1", "--isl", "10", "--workload", "w.yaml"), "either --isl/--osl or --workload"),
        (("-c", "1", "--range-ratio", "0"), "--range-ratio must be in (0, 1]"),
    ],
)
def test_bad_flags_are_one_line_errors_before_any_request(cli, fast: TinyServer, args, message):
    code, out, err = cli("bench", fast.url, *args)
    assert code == 2 and message in err and "Traceback" not in err and out == ""
    assert len(err.strip().splitlines()) == 1
    assert fast.state.bodies == []


def test_an_unreachable_endpoint_is_one_line(cli):
    code, _, err = cli("bench", f"http://127.0.0.1:{free_port()}", "-c", "1", *SMALL)
    assert code == 2 and "cannot reach" in err and "Traceback" not in err


def test_a_server_that_fails_every_request_is_an_error_not_a_report(cli, fast: TinyServer):
    code, out, err = cli("bench", fast.url, "-c", "1", *SMALL, "--model", "broken")
    assert code == 2 and "no request to" in err and "HTTP 500" in err and out == ""


def test_workload_lengths_come_from_its_distributions(cli, fast: TinyServer, tmp_path: Path):
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "traffic:\n  qps: 1\n  prompt_tokens: 40\n  output_tokens: {mean: 3, kind: exponential}\n"
    )
    document = _json(cli, "bench", fast.url, "-c", "2", "--workload", str(workload), "--requests", "8")
    assert document["lengths"]["source"] == f"workload {workload}"
    sent = [body["max_tokens"] for body in fast.state.bodies]
    assert len(set(sent)) > 1 and all(n >= 1 for n in sent)  # drawn from the exponential, not fixed


def test_one_missing_length_is_defaulted_and_said(cli, fast: TinyServer):
    document = _json(cli, "bench", fast.url, "-c", "1", "--isl", "32", "--requests", "2", "--warmup", "0")
    assert (document["lengths"]["isl"], document["lengths"]["osl"]) == (32, 128)
    assert any(a.startswith("--osl not given: 32 -> 128 tokens") for a in document["assumptions"])
