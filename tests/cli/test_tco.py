"""``servewise tco`` end to end through the console-script entry point, on the shared session catalog."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from servewise.cli import main

# A small, fast workload: one model on L4s (AWS has L4 spot prices), 20 req/s -> several replicas.
WORKLOAD = ("tco", "-u", "chatbot_conversational", "--qps", "20", "--gpu", "L4", "--model", "Llama-3.2-3B")
WORKLOAD += ("--min-params-b", "0")


@pytest.fixture(scope="module")
def document(catalog_url: str) -> dict:
    """One JSON run shared by the read-only checks (planning costs a few seconds)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("SERVEWISE_DB_URL", catalog_url)
        main([*WORKLOAD, "--vs", "gpt-4o-mini", "--purchase-price-usd", "3000", "--format", "json"])
    return json.loads(out.getvalue())


def test_json_prices_every_mode_and_the_relations_hold(document):
    assert document["schema"] == "servewise.tco/1"
    months = {o["name"]: o["usd_per_month"] for o in document["options"]}
    assert set(months) == {"on-demand", "spot", "reserved-1y", "reserved-3y", "owned"}
    # Same instances, discounted: 1 - 0.37 and 1 - 0.55 of on-demand
    assert months["reserved-1y"] == pytest.approx(0.63 * months["on-demand"])
    assert months["reserved-3y"] == pytest.approx(0.45 * months["on-demand"])
    assert months["spot"] < months["on-demand"]
    deployment = document["deployment"]
    # owned with --purchase-price-usd 3000 on L4 (72 W TDP), per GPU-hour:
    # 3000 / 26,280 = 0.114155 x 1.4 = 0.159817 + 0.072 x 0.7 x 1.58 x 0.12 = 0.0095558 -> 0.1693729
    assert months["owned"] == pytest.approx(deployment["gpus_total"] * 0.1693729 * 730, rel=1e-5)
    assert document["owned_price_is_guess"] is False


def test_json_has_the_api_the_break_even_and_chart_data(document):
    api = document["apis"][0]
    assert api["model"] == "gpt-4o-mini" and api["source"]
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M; chatbot 512 -> 256 tokens: 512 x 0.15 + 256 x 0.6 = 230.4 $/1M requests
    assert api["usd_per_request"] == pytest.approx(230.4e-6)
    assert api["usd_per_month"] == pytest.approx(230.4e-6 * 20 * 3600 * 730)
    assert {b["option"] for b in document["break_evens"]} >= {"on-demand", "reserved-3y"}
    chart = document["chart"]
    assert set(chart["series"]) == {
        "on-demand",
        "spot",
        "reserved-1y",
        "reserved-3y",
        "owned",
        "API gpt-4o-mini",
    }
    assert all(len(v) == len(chart["volumes"]) for v in chart["series"].values())
    recommendation = document["recommendation"]
    cheapest = min(o["usd_per_month"] for o in document["options"])
    assert recommendation["usd_per_month"] <= min(cheapest, api["usd_per_month"]) + 1e-6
    assert {d["flag"] for d in document["defaults"]} >= {
        "--amortize-months",
        "--pue",
        "--usd-per-kwh",
        "--spot-overhead",
    }


def test_table_marks_the_recommendation_and_prints_every_default(cli):
    code, out, err = cli(*WORKLOAD, "--vs", "gpt-4o-mini")
    assert code == 0, err
    marked = [line for line in out.splitlines() if "★" in line]
    assert len(marked) == 1
    assert "recommendation:" in out and "break-even" in out
    for flag in ("--amortize-months 36", "--pue 1.58", "--usd-per-kwh 0.12", "--reserved-1y-discount 0.37"):
        assert f"default: {flag}" in out
    assert "GUESS" in out or "no purchase price" in out  # L4 has no list price in the catalog


def test_flags_override_defaults_and_csv_and_markdown_render(cli, tmp_path: Path):
    chart, plot = tmp_path / "chart.csv", tmp_path / "tco.png"
    code, out, err = cli(
        *WORKLOAD,
        "--reserved-1y-discount",
        "0.5",
        "--format",
        "csv",
        "--chart",
        str(chart),
        "--plot",
        str(plot),
    )
    assert code == 0, err
    rows = {r["option"]: r for r in csv.DictReader(io.StringIO(out))}
    assert float(rows["reserved-1y"]["usd_per_month"]) == pytest.approx(
        0.5 * float(rows["on-demand"]["usd_per_month"]), abs=0.02
    )
    header = chart.read_text().splitlines()[0].split(",")
    assert header[0] == "monthly_requests" and "reserved-3y" in header
    assert plot.read_bytes().startswith(b"\x89PNG")
    code, out, _ = cli(*WORKLOAD, "--format", "markdown")
    assert code == 0 and out.startswith("**TCO of") and "| option |" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--vs", "gpt-4o-mni"), "did you mean 'gpt-4o-mini'"),
        (("--pue", "0"), "--pue"),
        (("--amortize-months", "-3"), "--amortize-months"),
        (("--spot-overhead", "-0.5"), "--spot-overhead"),
        (("--on-demand-floor", "1.5"), "--on-demand-floor"),
        (("--usd-per-kwh", "-1"), "--usd-per-kwh"),
        (("--api-cached-share", "2"), "--api-cached-share"),
        (("--purchase-price-usd", "0"), "--purchase-price-usd"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, flags, message):
    code, out, err = cli(*WORKLOAD, *flags)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


# A light, latency-tolerant load that a CPU instance serves (c7i.2xlarge ~$261/month, the T4 ~$384/month).
TINY = ("tco", "--prompt-tokens", "256", "--output-tokens", "128", "--qps", "0.05", "--itl-p95-ms", "150")
TINY += ("--ttft-p95-ms", "2000", "--model", "Llama-3.2-1B", "--precision", "int4")


def test_a_plan_led_by_a_cpu_instance_is_priced_on_its_best_gpu_option(cli):
    code, out, err = cli(*TINY, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["deployment"]["gpu"] == "T4"


def test_only_cpu_options_left_is_one_line_and_exit_2(cli):
    code, out, err = cli(*TINY, "--budget-usd-month", "300")  # under the cheapest GPU, over the CPU instance
    assert code == 2 and out == ""
    assert "tco prices GPU deployments" in err and len(err.strip().splitlines()) == 1


def test_unwritable_plot_path_fails_before_planning_and_leaves_no_file(cli, tmp_path: Path):
    missing = tmp_path / "no-such-folder" / "tco.png"
    code, _, err = cli(*WORKLOAD, "--plot", str(missing))
    assert code == 2 and "does not exist" in err
    assert not missing.parent.exists()
    code, _, err = cli(*WORKLOAD, "--plot", str(tmp_path))
    assert code == 2 and "is a folder" in err
    assert list(tmp_path.iterdir()) == []
