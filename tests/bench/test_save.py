"""Measured points as catalog benchmark rows: the CSV passes the catalog's own parser, lands as user rows, and is
among the rows ``servewise calibrate`` fits on."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from servewise.bench import MeasuredPoint, SystemUnderTest, benchmark_csv_rows, save_points
from servewise.catalog import DataKind, open_catalog, parse_csv
from servewise.catalog._loader import to_record
from servewise.cli._calibrate import catalog_facts
from servewise.errors import CatalogError
from servewise.perf._benchpoint import setup_for_row

from ..cli.conftest import packaged_rows

SYSTEM = SystemUnderTest("Llama-3.1-8B", "L4", 1, "bf16", "vllm")
POINTS = [
    MeasuredPoint(1024, 128, 1, 104.2, 15.6, "servewise-bench-test-c1"),
    MeasuredPoint(1024, 128, 8, 650.1, 17.2, "servewise-bench-test-c8"),
]


def _rows() -> list[dict[str, str]]:
    return benchmark_csv_rows(
        SYSTEM, POINTS, source="servewise bench http://x 2026-11-25", measured_on=date(2026, 11, 25)
    )


def test_rows_have_calibration_csv_columns_and_parse_as_benchmarks():
    header, _ = packaged_rows()
    rows = _rows()
    assert list(rows[0]) == header
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    records = [
        to_record(DataKind.benchmarks, v) for v in parse_csv(DataKind.benchmarks, buffer.getvalue(), path="x")
    ]
    first = records[0]
    assert (first.model, first.system, first.tp, first.gpu_count, first.precision) == (
        "Llama-3.1-8B",
        "L4",
        1,
        1,
        "bf16",
    )
    assert (first.isl, first.osl, first.concurrency, first.ttft_ms, first.tpot_ms) == (
        1024,
        128,
        1,
        104.2,
        15.6,
    )
    assert first.measured_date == date(2026, 11, 25) and first.attention_dp == 1 and first.batch_size is None


def test_saved_rows_are_user_rows_that_calibration_can_simulate(sqlite_url: str):
    assert save_points(_rows(), db_url=sqlite_url) == 2
    with open_catalog(sqlite_url) as catalog:
        saved = catalog.benchmarks(model="Llama-3.1-8B", gpu="L4")
    assert sorted(r.concurrency for r in saved) == [1, 8]
    assert all(r.source.startswith("servewise bench") for r in saved)
    facts, rows = catalog_facts(sqlite_url, with_benchmarks=True)
    ours = [r for r in rows if r.source_row_id.startswith("servewise-bench-test")]
    assert len(ours) == 2  # `servewise calibrate` (no --data) fits on every catalog row, these included
    setup = setup_for_row(ours[0], facts.models, facts.accelerators, facts.aliases)
    assert not isinstance(setup, str), setup


def test_an_invalid_value_writes_nothing(sqlite_url: str):
    bad = benchmark_csv_rows(SYSTEM, [MeasuredPoint(1024, 128, 1, 0.0, 15.0, "zero-ttft")], source="s",
                             measured_on=date(2026, 1, 1))  # fmt: skip
    with pytest.raises(CatalogError, match="ttft_ms"):
        save_points([*_rows(), *bad], db_url=sqlite_url)
    with open_catalog(sqlite_url) as catalog:
        assert catalog.benchmarks(model="Llama-3.1-8B", gpu="L4") == []
