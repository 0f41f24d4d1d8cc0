"""``servewise accuracy DATA.csv``: error summaries, skipped rows, held-out predictions, the report and the plot."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from servewise.cli import _calibrate as cli_calibrate

from .conftest import GROUP_A, GROUP_B, ROWS_PER_GROUP, group_rows, unresolvable_rows, write_csv

SUMMARY_KEYS = {
    "rows",
    "skipped",
    "ttft_median_ape",
    "tpot_median_ape",
    "ttft_p90_ape",
    "tpot_p90_ape",
    "groups",
}
GROUP_KEYS = {"model", "backend", "system", "precision", "rows", "ttft_median_ape", "ttft_p90_ape"}


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_json_summary_skips_unresolvable_rows_and_matches_the_per_row_csv(cli, subset_csv, tmp_path):
    rows_csv = tmp_path / "rows.csv"
    code, out, err = cli("accuracy", str(subset_csv), "--format", "json", "-o", str(rows_csv))
    assert code == 0, err
    document = json.loads(out)
    assert set(document) >= SUMMARY_KEYS
    assert document["rows"] == 2 * ROWS_PER_GROUP and document["skipped"] == 2
    reasons = {item["source_row_id"]: item["reason"] for item in document["skipped_rows"]}
    assert reasons == {
        "skip-unknown-model": "unknown model 'acme/NoSuchModel-7B'",
        "skip-unknown-system": "unknown system 'tpu_v9_pod'",
    }
    assert "skipped 2 row(s)" in err and "simulating rows" in err  # the summary line and the progress bar
    groups = {(g["model"], g["system"], g["backend"]): g for g in document["groups"]}
    assert set(groups) == {GROUP_A, GROUP_B}
    assert all(
        GROUP_KEYS | {"tpot_median_ape", "tpot_p90_ape", "provenance"} <= set(g) for g in groups.values()
    )
    assert all(g["rows"] == ROWS_PER_GROUP for g in groups.values())

    per_row = _read_rows(rows_csv)
    assert len(per_row) == 2 * ROWS_PER_GROUP + 2
    predicted = [r for r in per_row if not r["skip_reason"]]
    assert {r["source_row_id"] for r in per_row if r["skip_reason"]} == set(reasons)
    for r in predicted:  # APE in percent, from the row's own measured and predicted values
        expected = abs(float(r["predicted_ttft_ms"]) - float(r["measured_ttft_ms"])) / float(
            r["measured_ttft_ms"]
        )
        # the CSV holds 6 significant digits, so each side is off by up to 5e-6 relative: 100 x 2 x 5e-6 = 1e-3 %
        assert float(r["ttft_ape"]) == pytest.approx(100 * expected, abs=1e-3)
    ttft = [float(r["ttft_ape"]) for r in predicted]
    tpot = [float(r["tpot_ape"]) for r in predicted]
    assert document["ttft_median_ape"] == pytest.approx(statistics.median(ttft), abs=0.01)
    assert document["tpot_median_ape"] == pytest.approx(statistics.median(tpot), abs=0.01)
    assert document["ttft_p90_ape"] == pytest.approx(float(np.percentile(ttft, 90)), abs=0.01)
    assert document["tpot_p90_ape"] >= document["tpot_median_ape"]
    group_a = [float(r["tpot_ape"]) for r in predicted if r["system"] == GROUP_A[1]]
    assert groups[GROUP_A]["tpot_median_ape"] == pytest.approx(statistics.median(group_a), abs=0.01)
    anatomy = document["anatomy"]
    assert set(anatomy) == {"ttft", "tpot"}
    assert anatomy["ttft"]["median_ape"] == pytest.approx(document["ttft_median_ape"], abs=0.01)
    assert anatomy["tpot"]["groups"] == len(groups) and anatomy["tpot"]["rows"] == len(predicted)


def test_table_output_shows_overall_target_and_groups(cli, subset_csv):
    code, out, _ = cli("accuracy", str(subset_csv))
    assert code == 0
    assert "all rows" in out and "target (median)" in out and "<= 20" in out and "<= 10" in out
    assert "b200_sxm" in out and "b300_sxm" in out and "2 skipped" in out
    assert "where the error is" in out and "typical group bias" in out


def test_without_a_fit_the_analytical_defaults_predict(cli, subset_csv, monkeypatch):
    monkeypatch.setattr(cli_calibrate, "load_fitted_table", lambda path=None: None)
    code, out, err = cli("accuracy", str(subset_csv), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["calibration"].startswith("analytical defaults")
    assert {g["provenance"] for g in document["groups"]} == {"analytical"}


def test_cross_validation_predicts_each_group_from_a_fit_on_the_other(cli, subset_csv, tmp_path):
    """The held-out prediction of group A is what a table fitted on group B alone predicts."""
    only_b = write_csv(tmp_path / "b.csv", group_rows(GROUP_B))
    only_a = write_csv(tmp_path / "a.csv", group_rows(GROUP_A))
    fit_b = tmp_path / "fit_b.json"
    assert cli("calibrate", "--data", str(only_b), "-o", str(fit_b))[0] == 0
    assert (
        cli("accuracy", str(only_a), "--calibration", str(fit_b), "-o", str(tmp_path / "a_rows.csv"))[0] == 0
    )
    code, out, err = cli(
        "accuracy", str(subset_csv), "--cross-validate", "--format", "json", "-o", str(tmp_path / "cv.csv")
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["mode"] == "held-out" and "cross-validating groups" in err
    assert {g["provenance"] for g in document["groups"]} == {"held-out"}
    held_out = {r["source_row_id"]: r for r in _read_rows(tmp_path / "cv.csv") if not r["skip_reason"]}
    from_b = {r["source_row_id"]: r for r in _read_rows(tmp_path / "a_rows.csv")}
    assert from_b and set(from_b) <= set(held_out)
    for row_id, row in from_b.items():  # the JSON table keeps 6 significant digits per parameter
        assert float(held_out[row_id]["predicted_ttft_ms"]) == pytest.approx(
            float(row["predicted_ttft_ms"]), rel=1e-3
        )
        assert float(held_out[row_id]["predicted_tpot_ms"]) == pytest.approx(
            float(row["predicted_tpot_ms"]), rel=1e-3
        )


def test_cross_validation_needs_two_groups_and_excludes_calibration(cli, tmp_path):
    one_group = write_csv(tmp_path / "a.csv", group_rows(GROUP_A))
    code, _, err = cli("accuracy", str(one_group), "--cross-validate")
    assert code == 2 and "at least two (model, system) groups" in err
    code, _, err = cli("accuracy", str(one_group), "--cross-validate", "--calibration", str(one_group))
    assert code == 2 and "exclude each other" in err


def test_report_and_plot(cli, subset_csv, tmp_path):
    report, plot = tmp_path / "accuracy.md", tmp_path / "accuracy.png"
    code, _, err = cli("accuracy", str(subset_csv), "--report", str(report), "--plot", str(plot))
    assert code == 0, err
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Servewise prediction accuracy")
    needles = (
        "## Overall", "## Where the error is", "## Per group", "## Skipped rows", "## How to reproduce",
        "AIConfigurator", "~650 %", "BentoML llm-optimizer", "pure roofline", "≤ 20 %", "≤ 10 %", "in-sample",
    )  # fmt: skip
    for needle in needles:
        assert needle in text, needle
    assert f"servewise accuracy {subset_csv} --report {report} --plot {plot}" in text
    overall = next(line for line in text.splitlines() if line.startswith("| **Servewise"))
    assert overall.count("%") == 4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_backend_filter(cli, subset_csv):
    code, out, _ = cli("accuracy", str(subset_csv), "--backend", "vllm", "--format", "json")
    assert code == 0 and json.loads(out)["backend"] == "vllm"
    code, _, err = cli("accuracy", str(subset_csv), "--backend", "sglang")
    assert code == 2 and "has no sglang rows; its backends: vllm" in err
    code, _, err = cli("accuracy", str(subset_csv), "--backend", "tgi")
    assert code == 2 and "tgi" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model,backend\nx,vllm\n", "missing column(s)"),
        ("", "missing column(s)"),
        (None, "has no rows"),
        ("bad-cell", "column ttft_ms: expected a number, got 'fast'"),
    ],
)
def test_malformed_csv_is_one_line_exit_2(cli, tmp_path, content, message):
    path = tmp_path / "data.csv"
    if content is None:
        write_csv(path, [])
    elif content == "bad-cell":
        write_csv(path, [group_rows(GROUP_A, 1)[0] | {"ttft_ms": "fast"}])
    else:
        path.write_text(content, encoding="utf-8")
    code, out, err = cli("accuracy", str(path), "-o", str(tmp_path / "rows.csv"))
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rows.csv").exists()


def test_unreadable_inputs_and_all_rows_skipped(cli, tmp_path):
    code, _, err = cli("accuracy", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = cli("accuracy", str(tmp_path / "binary.csv"))
    assert code == 2 and "not UTF-8" in err
    skipped_only = write_csv(tmp_path / "skip.csv", unresolvable_rows())
    code, _, err = cli("accuracy", str(skipped_only))
    assert code == 2 and "none of the 2 row(s)" in err and "unknown model" in err
    code, _, err = cli("accuracy", str(skipped_only), "--plot", str(tmp_path / "no" / "plot.png"))
    assert code == 2 and "does not exist" in err and "simulating" not in err  # checked before any work


def test_bad_calibration_file(cli, subset_csv, tmp_path):
    broken = tmp_path / "fit.json"
    broken.write_text('{"levels": 3}', encoding="utf-8")
    code, _, err = cli("accuracy", str(subset_csv), "--calibration", str(broken))
    assert code == 2 and "is not a calibration table" in err and "servewise calibrate" in err
    code, _, err = cli("accuracy", str(subset_csv), "--calibration", str(tmp_path / "none.json"))
    assert code == 2 and "no such file" in err


def test_ape_is_nan_safe():
    from servewise.cli._accuracy import ape

    assert ape(110.0, 100.0) == pytest.approx(10.0)
    assert ape(90.0, 100.0) == pytest.approx(10.0)
    assert math.isnan(ape(math.nan, 100.0)) and math.isnan(ape(1.0, 0.0))
