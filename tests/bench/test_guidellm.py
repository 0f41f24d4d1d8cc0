"""Reading GuideLLM reports: the ≤ v0.3 layout (args.strategy, worker.backend_model) of the fixture, the v0.4+
layout (config.strategy, config.backend.model, metrics.request_totals), and files that are not reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from servewise.bench import read_guidellm_report
from servewise.errors import UsageError

FIXTURE = Path(__file__).parent / "data" / "guidellm_benchmarks.json"


def test_the_fixture_report_is_read_field_by_field():
    sync, concurrent, poisson = read_guidellm_report(FIXTURE)
    assert (sync.strategy, sync.concurrency, sync.rate_rps) == ("synchronous", 1, None)
    assert (concurrent.strategy, concurrent.concurrency) == ("concurrent", 8)
    assert (poisson.strategy, poisson.concurrency, poisson.rate_rps) == ("poisson", None, 4.0)
    assert concurrent.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert concurrent.successful == 240
    raw = json.loads(FIXTURE.read_text())["benchmarks"][1]["metrics"]
    v = concurrent.values
    assert v["ttft_mean_ms"] == raw["time_to_first_token_ms"]["successful"]["mean"]
    assert v["ttft_p99_ms"] == raw["time_to_first_token_ms"]["successful"]["percentiles"]["p99"]
    # GuideLLM's inter-token latency is TPOT: (last - first token) / (n - 1).
    assert v["tpot_mean_ms"] == raw["inter_token_latency_ms"]["successful"]["mean"]
    assert v["e2e_p50_ms"] == pytest.approx(raw["request_latency"]["successful"]["percentiles"]["p50"] * 1000)
    assert (v["mean_prompt_tokens"], v["mean_output_tokens"]) == (1024, 128)
    assert v["requests_per_s"] == raw["requests_per_second"]["successful"]["mean"]
    assert concurrent.label == "concurrent (concurrency 8)" and poisson.label == "poisson 4 req/s"


def test_the_v04_layout_is_read_too(tmp_path: Path):
    document = json.loads(FIXTURE.read_text())
    newer = copy.deepcopy(document)
    for bench in newer["benchmarks"]:
        args = bench.pop("args")
        bench.pop("worker")
        bench.pop("total_count")
        bench["config"] = {"strategy": args["strategy"], "backend": {"model": "Qwen/Qwen3-8B"}}
        bench["metrics"]["request_totals"] = {"successful": 17, "incomplete": 0, "errored": 1, "total": 18}
    path = tmp_path / "new.json"
    path.write_text(json.dumps(newer))
    benchmarks = read_guidellm_report(path)
    assert [b.concurrency for b in benchmarks] == [1, 8, None]
    assert {b.model for b in benchmarks} == {"Qwen/Qwen3-8B"}
    assert {b.successful for b in benchmarks} == {17}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"runs": []}', "no `benchmarks` list"),
        ('{"benchmarks": [{"metrics": {}}]}', r"benchmarks\[0\] has no strategy"),
    ],
)
def test_files_that_are_not_reports_are_one_line_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_guidellm_report(path)
    with pytest.raises(UsageError, match="no such file"):
        read_guidellm_report(tmp_path / "missing.json")
