"""``build_report`` runs every analysis on a window (the real efficiency, right-sizing and drift on the packaged
catalog); its JSON document reads back to the same report; a drifted window is stored when asked."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from servewise.catalog import open_catalog
from servewise.errors import UsageError
from servewise.watch._gates import GateSpec
from servewise.watch._observation import WatchTarget
from servewise.watch._report import build_report, report_document, report_from_document

from .scrape_support import make_observation


def test_the_report_runs_every_analysis_and_round_trips_through_json(
    watch_target: WatchTarget, watch_catalog_url: str
) -> None:
    report = build_report(watch_target, make_observation(), db_url=watch_catalog_url)
    assert report.passed and [c.metric for c in report.compliance] == ["ttft", "itl", "e2e"]
    assert report.efficiency is not None and 0 <= report.efficiency.score <= 100
    assert report.drift is not None and report.drift.stored_rows == 0
    assert report.recommendations  # two replicas for ~1.7 req/s: the planner finds a cheaper size
    document = json.loads(json.dumps(report_document(report)))
    assert document["schema_version"] == "1" and document["passed"] is True
    assert document["observation"]["ttft_s"] == {"p50": 0.25, "p90": 0.5, "p95": 0.75, "p99": 1.0}
    assert document["observation"]["histograms"]["ttft"][-1] == ["+Inf", 100.0]
    assert report_from_document(document) == report


def test_a_failed_gate_fails_the_report_and_a_skipped_required_one_too(watch_target: WatchTarget) -> None:
    strict = GateSpec("ttft_p95", "ttft_p95_s", "max", 0.5, "tight")
    required = GateSpec("schema_valid", "schema_valid_ratio", "min", 0.995, "validated", required=True)
    assert not build_report(watch_target, make_observation(), gates=[strict]).passed
    skipped = build_report(watch_target, make_observation(), gates=[required])
    assert skipped.gates[0].passed is None and not skipped.passed
    assert build_report(watch_target, make_observation(), gates=[]).passed


def test_an_analysis_that_cannot_run_is_a_warning_not_a_failure(watch_target: WatchTarget) -> None:
    unknown = dataclasses.replace(watch_target, model="NoSuchModel-1B")
    report = build_report(unknown, make_observation())
    assert report.efficiency is None and report.drift is None and report.recommendations == ()
    assert any(w.startswith("efficiency not computed: unknown model") for w in report.observation.warnings)
    assert report.passed and report.compliance  # the metrics still decide


def test_a_drifted_window_is_stored_as_measured_rows(watch_target: WatchTarget, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    report = build_report(
        watch_target, make_observation(), drift_threshold_pct=1e-6, store_drift_rows=True, db_url=db_url
    )
    assert report.drift is not None and report.drift.drifted and report.drift.stored_rows == 1
    with open_catalog(db_url) as catalog:
        rows = [b for b in catalog.benchmarks(model=watch_target.model) if b.source == report.drift.source]
    assert len(rows) == 1 and rows[0].source.startswith("watch:http://a:8000/metrics")


def test_documents_that_are_not_reports_are_one_line_errors(watch_target: WatchTarget) -> None:
    good = report_document(build_report(watch_target, make_observation(), gates=[]))
    with pytest.raises(UsageError, match="not a watch report"):
        report_from_document({"hello": 1})
    with pytest.raises(UsageError, match="schema_version '9'"):
        report_from_document({**good, "schema_version": "9"})
    broken = json.loads(json.dumps(good))
    del broken["observation"]["requests"]
    with pytest.raises(UsageError, match="observation lacks 'requests'"):
        report_from_document(broken)
    broken = json.loads(json.dumps(good))
    broken["observation"]["ttft_s"] = {"median": 1.0}
    with pytest.raises(UsageError, match="keys must look like p95"):
        report_from_document(broken)


def test_non_finite_numbers_become_null(watch_target: WatchTarget) -> None:
    report = build_report(watch_target, make_observation(qps_peak=math.inf), gates=[])
    assert report_document(report)["observation"]["qps_peak"] is None


def test_the_package_exports_its_public_names_sorted() -> None:
    import servewise.watch as watch

    assert watch.__all__ == sorted(watch.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for name in watch.__all__:
        assert getattr(watch, name) is not None, name
