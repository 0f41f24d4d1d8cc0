"""``servewise compare``: two workload files, or one workload and --set what-ifs, side by side with deltas."""

import json
from pathlib import Path

import pytest

FAST = ("--gpu", "L4", "--gpu", "H100-SXM", "--model", "Llama-3.1-8B", "--model", "Qwen3-8B")
BASE = ("compare", "-u", "chatbot_conversational", "--qps", "10", *FAST)


def test_a_what_if_in_json_has_both_sides_and_the_deltas(cli):
    code, out, _ = cli(*BASE, "--set", "traffic.qps=20", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["base"] == "base"
    base, doubled = doc["sides"]
    assert doubled["label"] == "traffic.qps=20" and base["feasible"] and doubled["feasible"]
    assert (base["peak_qps"], doubled["peak_qps"]) == (10, 20)
    deltas = {d["metric"]: d for d in doc["deltas"]}
    assert deltas["peak_qps"]["delta"] == 10 and deltas["peak_qps"]["delta_pct"] == 100.0  # 20 - 10, +100 %
    cost = deltas["usd_per_month"]
    assert cost["delta"] == pytest.approx(doubled["usd_per_month"] - base["usd_per_month"])
    assert set(deltas) == {
        "usd_per_month",
        "gpus_total",
        "replicas",
        "ttft_p95_ms",
        "itl_p95_ms",
        "e2e_p95_ms",
        "peak_qps",
    }


def test_several_what_ifs_and_a_table(cli):
    code, out, _ = cli(*BASE, "--set", "traffic.qps=20", "--set", "slo.ttft_p95_ms=300;constraints.gpus=[L4]")
    assert code == 0
    assert "Δ traffic.qps=20" in out and "Δ slo.ttft_p95_ms=300;constraints.gpus=[L4]" in out
    assert "$/month" in out and "TTFT p95 ms" in out and "why:" in out
    assert "(+100.0%)" in out  # peak req/s doubles


def test_two_files_side_by_side_in_csv_and_markdown(cli, tmp_path: Path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("use_case: chatbot_conversational\ntraffic: {qps: 5}\n")
    b.write_text("use_case: chatbot_conversational\ntraffic: {qps: 5, peak_factor: 3}\n")
    code, out, _ = cli("compare", str(a), str(b), *FAST, "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "side,metric,value,base,delta,delta_pct"
    peak = next(line for line in lines if line.startswith("b.yaml,peak_qps"))
    assert peak == "b.yaml,peak_qps,15.0,5.0,10.0,200.0"  # 5 x 3 = 15 at peak: +10, +200 %
    code, out, _ = cli("compare", str(a), str(b), *FAST, "--format", "markdown")
    assert code == 0 and "| a.yaml (base) | b.yaml | Δ b.yaml |" in out


def test_an_infeasible_what_if_is_shown_not_fatal(cli):
    code, out, _ = cli(*BASE, "--set", "slo.ttft_p95_ms=1")
    assert code == 0
    assert "no feasible option: no option meets the SLO" in " ".join(out.split())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "traffic.qsp=3"], "unknown key 'qsp' under traffic; did you mean 'qps'?"),
        (["--set", "traffic.qps=-3"], "--set traffic.qps=-3: traffic.qps: Input should be greater than 0"),
        (["--set", "constraints.gpus=[H300]"], "unknown gpu 'H300'"),
        ([], "nothing to compare: give a second workload file, or a what-if such as --set traffic.qps=40"),
        (["--set", "traffic.qps=3", "--address", "auto"], "--address needs --executor ray"),
        (["--set", "traffic.qps=3", "--executor", "dask"], "'dask' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    code, out, err = cli(*BASE, *args)
    assert code == 2 and out == ""
    assert message in " ".join(err.split())
    assert len(err.strip().splitlines()) <= 3  # one logical line (Rich may wrap it)
