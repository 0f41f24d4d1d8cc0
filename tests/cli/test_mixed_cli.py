"""``servewise mixed`` end to end through the real CLI and a real catalog database."""

import json
from pathlib import Path

import pytest

SMALL = ("--gpu", "L4", "--model", "Qwen2.5-7B")
"""One GPU and one model keep each plan of the comparison to about a second."""


@pytest.fixture
def rag_file(tmp_path: Path) -> Path:
    path = tmp_path / "rag.yaml"
    path.write_text(
        "name: rag\n"
        "traffic:\n"
        "  qps: 10\n"
        "  prompt_tokens: {mean: 1500, kind: lognormal, cv: 1.2}\n"
        "  output_tokens: 300\n"
        "slo: {ttft_p95_ms: 3000, itl_p95_ms: 60}\n"
        "routing:\n"
        "  threshold_tokens: 4096\n"
        "  overflow_api: gpt-4o-mini\n"
    )
    return path


def test_table_compares_pure_and_mixed_and_marks_the_cheapest(cli, rag_file):
    code, out, err = cli("mixed", "-f", str(rag_file), *SMALL)
    assert code == 0, err
    for name in ("pure", "bulk + long-context pool", "bulk + API overflow", "API only"):
        assert name in out
    assert "★" in out and "93.8%" in out and "split at 4,096 prompt tokens" in out
    assert "assumption: routing: prompts over 4,096 tokens" in out and "gpt-4o-mini" in out


def test_json_document_and_o_file_agree(cli, rag_file, tmp_path):
    target = tmp_path / "mixed.json"
    code, out, err = cli("mixed", "-f", str(rag_file), *SMALL, "--format", "json", "-o", str(target))
    assert code == 0, err
    document = json.loads(out)
    assert document == json.loads(target.read_text())
    assert set(document) == {"workload", "routing", "split", "options", "chosen", "assumptions"}
    assert document["routing"] == {
        "threshold_tokens": 4096,
        "local_ratio_target": None,
        "overflow_api": "gpt-4o-mini",
    }
    # Φ((ln 4096 − μ)/σ) = 0.937713 for mean 1500, cv 1.2 (worked in tests/planner/test_mixed.py)
    assert document["split"]["share_below"] == pytest.approx(0.937713, abs=1e-6)
    options = {o["name"]: o for o in document["options"]}
    overflow = options["bulk + API overflow"]
    assert overflow["share_local"] == pytest.approx(0.937713, abs=1e-6)
    assert overflow["pools"][0]["chosen"]["model"] == "Qwen2.5-7B"
    # 0.062287 · 10 req/s · 730 h · 3600 s = 1,636,913 requests to the API per month
    assert overflow["api"]["requests_per_month"] == pytest.approx(1_636_913, rel=1e-5)
    assert options["pure"]["delta_vs_pure_usd_per_month"] == 0
    chosen = document["options"][document["chosen"]]
    assert chosen["usd_per_month"] == min(o["usd_per_month"] for o in document["options"])


def test_local_ratio_flag_overrides_the_files_threshold(cli, rag_file):
    code, out, err = cli("mixed", "-f", str(rag_file), *SMALL, "--local-ratio", "0.98", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    # the p98 of the prompt length is 6680.16 tokens → 6681
    assert document["routing"]["threshold_tokens"] == 6681
    assert document["split"]["share_below"] >= 0.98


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_other_formats(cli, rag_file, fmt):
    code, out, _ = cli("mixed", "-f", str(rag_file), *SMALL, "--format", fmt)
    assert code == 0
    assert out.splitlines()[0].startswith("mark,option" if fmt == "csv" else "**rag")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--threshold-tokens", "0"), "--threshold-tokens must be > 0"),
        (("--local-ratio", "1.5"), "--local-ratio must be in (0, 1]"),
        (("--local-ratio", "0"), "--local-ratio must be in (0, 1]"),
        (("--threshold-tokens", "2048", "--local-ratio", "0.9"), "not both"),
        (("--overflow-api", "gpt-4o-mnii"), "did you mean 'gpt-4o-mini'"),
    ],
)
def test_bad_routing_is_one_line_and_exit_2(cli, rag_file, tmp_path, args, message):
    target = tmp_path / "never.json"
    code, out, err = cli("mixed", "-f", str(rag_file), *SMALL, *args, "-o", str(target))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert out == "" and not target.exists()


def test_routing_section_is_validated_in_the_file(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("traffic: {qps: 1, prompt_tokens: 500, output_tokens: 100}\nrouting: {local_ratio: 2}\n")
    code, _, err = cli("mixed", "-f", str(path))
    assert code == 2 and "routing.local_ratio" in err


def test_plan_accepts_a_file_with_routing_and_its_document_does_not_change(cli, rag_file):
    code, out, err = cli("plan", "-f", str(rag_file), *SMALL, "--format", "json")
    assert code == 0, err
    assert "routing" not in json.loads(out)["workload"]


def test_infeasible_pools_are_explained_and_the_api_can_still_win(cli, rag_file):
    # at 300 ms TTFT p95 no L4 configuration serves the whole mix or the long tail (the closest misses it even at
    # zero load, ~320 ms), but the bulk pool fits
    code, out, err = cli("mixed", "-f", str(rag_file), *SMALL, "--ttft-p95-ms", "300")
    assert code == 0, err
    assert "infeasible: pure: all pool: no option meets the SLO" in out
    assert "long 6.2%: infeasible" in out
    assert "latency is not modelled" in out


def test_no_feasible_option_at_all_is_exit_2(cli, tmp_path):
    path = tmp_path / "tight.yaml"
    path.write_text(
        "traffic: {qps: 10, prompt_tokens: {mean: 1500, kind: lognormal, cv: 1.2}, output_tokens: 300}\n"
        "slo: {ttft_p95_ms: 5}\n"
    )
    code, out, err = cli("mixed", "-f", str(path), *SMALL)
    assert code == 2 and "no option is feasible" in err and out == ""
