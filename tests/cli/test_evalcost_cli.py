"""``servewise evalcost`` through the real CLI: the reference case, catalog judges, every format, bad input."""

import csv
import io
import json

import pytest

REFERENCE = ("evalcost", "--input-usd-per-1m", "5", "--output-usd-per-1m", "15")


def test_reference_case_json_sampling_and_cascade(cli):
    # 1,000 in + 50 out at $5/$15 per 1M = $0.00575/call; 10M evals × 10 % = 1M judged → $5,750;
    # 80/20 escalating cascade with a $1.50/$4.50 cheap judge: 1M × 0.001725 + 200k × 0.00575 = $2,875
    code, out, err = cli(
        *REFERENCE,
        "--sampling-rate",
        "0.1",
        "--cheap-input-usd-per-1m",
        "1.5",
        "--cheap-output-usd-per-1m",
        "4.5",
        "--cheap-share",
        "0.8",
        "--format",
        "json",
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["baseline_usd_per_month"] == pytest.approx(57_500)
    assert document["usd_per_month"] == pytest.approx(2_875)
    steps = {w["step"]: w for w in document["waterfall"]}
    assert steps["sampling"]["usd_per_month_after"] == pytest.approx(5_750)
    assert steps["cascade"]["saved_pct"] == pytest.approx(50.0)
    assert steps["prompt caching"]["saved_usd_per_month"] == 0
    assert document["inputs"]["defaults_used"] == [
        "--evals-per-month",
        "--input-tokens",
        "--output-tokens",
        "--rules-share",
        "--cache-hit-rate",
        "--prompt-cache-share",
    ]
    assert [j["role"] for j in document["judges"]] == ["expensive", "cheap"]
    assert "--input-usd-per-1m" in document["judges"][0]["source"]


def test_catalog_judges_carry_price_source_and_cached_price(cli):
    # claude-opus-4-5 $5/$25 (cached $0.50): 1,000 × 5 + 50 × 25 = 6,250 micro-USD = $0.00625/call;
    # with 50 % of input cached: 1,000 × (0.5 × 5 + 0.5 × 0.5) + 1,250 = 2,750 + 1,250 = $0.004/call
    # claude-haiku-4-5 $1/$5 (cached $0.10): 1,000 × (0.5 + 0.05) + 250 = $0.0008/call
    # escalate 80/20 over 1M judged: 1M × 0.0008 + 200k × 0.004 = 800 + 800 = $1,600
    code, out, err = cli(
        "evalcost",
        "--judge",
        "claude-opus-4-5",
        "--cheap-judge",
        "Claude-Haiku-4-5",
        "--cheap-share",
        "0.8",
        "--sampling-rate",
        "0.1",
        "--prompt-cache-share",
        "0.5",
        "--format",
        "json",
    )
    assert code == 0, err
    document = json.loads(out)
    stages = {s["stage"]: s for s in document["stages"]}
    assert stages["expensive judge"]["usd_per_call"] == pytest.approx(0.004)
    assert stages["cheap judge"]["usd_per_call"] == pytest.approx(0.0008)
    assert document["usd_per_month"] == pytest.approx(1_600)
    opus = document["judges"][0]
    assert opus["model"] == "claude-opus-4-5" and opus["cached_input_usd_per_1m"] == 0.5
    assert opus["source"].startswith("pypi:litellm")


def test_table_marks_the_total_and_prints_defaults_and_prices(cli):
    code, out, _ = cli(*REFERENCE, "--evals-per-month", "1000")
    assert code == 0
    assert "total" in out and "$5.75/month" in out  # 1,000 × 0.00575
    assert "[--input-tokens] (default, an assumption)" in out
    assert "[--evals-per-month] (default" not in out
    assert "price (expensive judge): given prices, $5 in / $15 out" in out


def test_csv_and_markdown(cli):
    code, out, _ = cli(*REFERENCE, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["stage"] for r in rows][-1] == "total"
    assert float(rows[-1]["usd_per_month"]) == pytest.approx(57_500)
    code, out, _ = cli(*REFERENCE, "--format", "markdown")
    assert code == 0
    assert "| stage | judge |" in out and "| saving step |" in out and "- input:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sampling-rate", "1.5"), "--sampling-rate: must be a fraction between 0 and 1 (got 1.5)"),
        (("--cache-hit-rate", "-0.2"), "--cache-hit-rate: must be a fraction"),
        (("--evals-per-month", "-5"), "--evals-per-month: must be a finite number ≥ 0"),
        (
            ("--input-usd-per-1m", "-1", "--output-usd-per-1m", "15"),
            "--input-usd-per-1m: must be a price ≥ 0",
        ),
        (("--cheap-share", "0.5"), "--cheap-share: a cheap-judge share needs a cheap judge"),
        (("--rules-share", "0.7", "--cheap-share", "0.7"), "must not exceed 1"),
    ],
)
def test_invalid_numbers_exit_2_with_the_flag_named(cli, args, message):
    base = list(REFERENCE)
    if "--input-usd-per-1m" in args:
        base = ["evalcost"]
    if "--rules-share" in args:
        base += ["--cheap-input-usd-per-1m", "1", "--cheap-output-usd-per-1m", "1"]
    code, out, err = cli(*base, *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_judge_names_close_catalog_models(cli):
    code, _, err = cli("evalcost", "--judge", "claude-hiaku-4-5")
    assert code == 2
    assert "unknown API model 'claude-hiaku-4-5'; did you mean 'claude-haiku-4-5'" in err
    assert len(err.strip().splitlines()) == 1


def test_ambiguous_judge_lists_the_providers(cli):
    code, _, err = cli("evalcost", "--judge", "gpt-oss-120b")
    assert code == 2 and "served by several providers" in err and "groq/openai/gpt-oss-120b" in err


def test_judge_needs_a_name_or_prices_not_both(cli):
    code, _, err = cli("evalcost")
    assert code == 2 and "name the judge" in err
    code, _, err = cli("evalcost", "--judge", "gpt-4o", "--input-usd-per-1m", "1", "--output-usd-per-1m", "2")
    assert code == 2 and "not both" in err
    code, _, err = cli("evalcost", "--input-usd-per-1m", "1")
    assert code == 2 and "give both --input-usd-per-1m and --output-usd-per-1m" in err
