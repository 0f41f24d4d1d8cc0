"""``servewise calibrate --include-observed``: rows stored by ``watch`` (a real SQLite catalog) join the fit, and the
before/after accuracy on them is printed, marked in-sample."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

from servewise.catalog import BenchmarkRow, open_catalog
from servewise.cli._calibrate import catalog_facts, load_calibration
from servewise.cli._calibrate_observed import is_observed, observed_accuracy, select_rows
from servewise.perf._calibrate import CalibrationTable, features_for_rows, predict_rows
from servewise.watch._drift import store_observed_rows
from tests.watch.analysis_support import observation, target

from .conftest import ROWS_PER_GROUP

OBSERVED_WINDOWS = 8
"""As many as ``perf._calibrate.MIN_ROWS``, so the observed rows' own level (L4/vllm/fp8) is fitted."""


def _store_windows(db_url: str, n: int = OBSERVED_WINDOWS) -> None:
    """``n`` windows of the 4xL4 fp8 deployment at rising load, each a drifted row (slower than predicted)."""
    t = target()
    for i in range(n):
        in_flight = 2.0 * (i + 1)
        o = dataclasses.replace(
            observation(
                qps=2.0, replicas=2, running_mean=2 * in_flight, means=(0.3 + 0.02 * i, 0.03 + 0.002 * i, 9.0)
            ),
            ended_at=f"2026-11-25T10:{i:02d}:00Z",
        )
        assert store_observed_rows(t, o, db_url=db_url) == 1


@pytest.fixture
def observed_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'observed.db'}"
    _store_windows(url)
    return url


def test_observed_rows_join_the_fit_and_the_accuracy_is_shown_before_and_after(
    cli, subset_csv, observed_url, tmp_path
):
    output = tmp_path / "fit.json"
    code, out, err = cli(
        "calibrate", "--data", str(subset_csv), "--include-observed", "--db-url", observed_url,
        "-o", str(output), "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    table = CalibrationTable.from_json(json.loads(output.read_text(encoding="utf-8")))
    assert (
        table.rows == 2 * ROWS_PER_GROUP + OBSERVED_WINDOWS
    )  # the 2 unresolvable rows of the CSV are skipped
    assert (
        table.levels[("L4", "vllm", "fp8")].rows == OBSERVED_WINDOWS
        and table.levels[("L4", "vllm", "fp8")].fitted
    )
    accuracy = document["observed_accuracy"]
    assert accuracy["rows"] == OBSERVED_WINDOWS and accuracy["in_sample"] is True
    assert "in-sample" in accuracy["note"] and "in-sample" in err
    before, after = accuracy["before"], accuracy["after"]
    assert before["calibration"].startswith("before: packaged calibration fit")
    assert after["calibration"] == "after: this refit"
    # the numbers are those of the two tables on the observed rows
    facts, catalog_rows = catalog_facts(observed_url, with_benchmarks=True)
    rows = [r for r in catalog_rows if is_observed(r)]
    features, _ = features_for_rows(rows, facts.models, facts.accelerators, facts.aliases)
    packaged, _ = load_calibration(None)
    for table_used, summary in ((packaged, before), (table, after)):
        ttft, tpot = predict_rows(features, table_used)
        measured_ttft = [f.row.ttft_ms for f in features]
        measured_tpot = [f.row.tpot_ms for f in features]
        ttft_ape = sorted(abs(p - m) / m * 100 for p, m in zip(ttft, measured_ttft, strict=True))
        tpot_ape = sorted(abs(p - m) / m * 100 for p, m in zip(tpot, measured_tpot, strict=True))
        median = (OBSERVED_WINDOWS - 1) / 2
        assert summary["ttft_median_ape"] == pytest.approx(
            (ttft_ape[int(median)] + ttft_ape[int(median) + 1]) / 2, abs=0.01
        )
        assert summary["tpot_median_ape"] == pytest.approx(
            (tpot_ape[int(median)] + tpot_ape[int(median) + 1]) / 2, abs=0.01
        )
    # fitted on them with few other rows (the CSV's 20), the refit is closer to them (in-sample, as the output says)
    assert after["ttft_median_ape"] < before["ttft_median_ape"]
    assert after["tpot_median_ape"] < before["tpot_median_ape"]


def test_the_table_output_prints_the_accuracy_table_with_the_in_sample_caption(
    cli, subset_csv, observed_url, tmp_path
):
    code, out, err = cli(
        "calibrate", "--data", str(subset_csv), "--include-observed", "--db-url", observed_url,
        "-o", str(tmp_path / "fit.json"), "--format", "markdown",
    )  # fmt: skip
    assert code == 0, err
    assert f"accuracy on {OBSERVED_WINDOWS} observed row(s)" in out
    assert (
        "before: packaged calibration fit" in out
        and "after: this refit" in out
        and "TTFT median APE %" in out
    )
    assert "in-sample: the observed rows are part of this refit" in out


def test_without_observed_rows_the_flag_is_a_one_line_error(cli, subset_csv, sqlite_url, tmp_path):
    output = tmp_path / "fit.json"
    code, _, err = cli(
        "calibrate",
        "--data",
        str(subset_csv),
        "--include-observed",
        "--db-url",
        sqlite_url,
        "-o",
        str(output),
    )
    assert code == 2 and "the catalog has no rows measured by `servewise watch`" in err
    assert "simulating rows" not in err and not output.exists()


def _row(source: str, row_id: str) -> BenchmarkRow:
    return BenchmarkRow(
        model="Llama-3.1-8B", backend="vllm", mode="agg", system="L4", gpu_count=4, tp=4, precision="fp8",
        isl=569, osl=284, concurrency=4, ttft_ms=110.0, tpot_ms=15.5, pp=1, attention_dp=1, moe_tp=4, moe_ep=1,
        batch_size=None, backend_version="", gemm_quant_mode="", moe_quant_mode="", precision_inferred=False,
        concurrency_from_source=True, measured_date=date(2026, 11, 25), container_image="", id_tp=None, id_ep=None,
        parallelism_suspect=False, source_row_id=row_id, source=source,
    )  # fmt: skip


def test_row_selection():
    packaged = _row("InferenceX", "a")
    benched = _row("servewise bench http://x", "b")
    watched = _row("watch:http://10.0.0.5:8000/metrics 2026-11-25T10:00:00Z", "c")
    data = _row("my.csv", "d")
    catalog = [packaged, benched, watched]
    # default: every catalog row but the observed ones (bench-saved rows stay, as before)
    assert select_rows(catalog, None, include_observed=False) == ([packaged, benched], [])
    assert select_rows(catalog, None, include_observed=True) == ([packaged, benched, watched], [watched])
    assert select_rows(catalog, [data], include_observed=True) == ([data, watched], [watched])
    assert select_rows(catalog, [data], include_observed=False) == ([data], [])


def test_observed_accuracy_counts_rows_that_cannot_be_simulated(observed_url):
    facts, rows = catalog_facts(observed_url, with_benchmarks=True)
    observed = [r for r in rows if is_observed(r)]
    unknown = dataclasses.replace(observed[0], system="tpu_v9_pod", source_row_id="skip")
    packaged, _ = load_calibration(None)
    assert packaged is not None
    accuracy = observed_accuracy([*observed, unknown], facts, packaged)
    assert accuracy["rows"] == OBSERVED_WINDOWS and accuracy["skipped"] == 1
    assert (
        accuracy["before"]["ttft_median_ape"] == accuracy["after"]["ttft_median_ape"]
    )  # the same table twice


def test_the_catalog_keeps_observed_rows_apart_by_source(observed_url):
    with open_catalog(observed_url) as catalog:
        sources = [r.source for r in catalog.benchmarks(model="Llama-3.1-8B") if is_observed(r)]
    assert len(sources) == OBSERVED_WINDOWS and all(
        s.startswith("watch:http://10.0.0.5:8000/metrics") for s in sources
    )
