"""Measured closed-loop points as rows of the catalog's benchmark table (the columns of ``calibration.csv``).

Why through ``Catalog.import_csv``: a saved row must pass exactly the checks a user's imported CSV passes (column
types, value ranges, the database's integer range) and land with ``origin = user``, so it survives refreshes of
the packaged data and ``servewise calibrate`` (which fits on every catalog row unless given ``--data``) uses it.
The rows are written to a CSV in a temporary folder and imported in one transaction: all rows or none.

What a row holds (the meaning of the packaged rows, data/benchmarks/README.md): ``ttft_ms`` and ``tpot_ms`` are
*means* over the level's successful requests (TPOT per request = (E2E − TTFT)/(n − 1)); ``isl``/``osl`` the
nominal lengths asked for (each request drew from [range_ratio × len, len]); ``concurrency`` the clients;
``mode`` ``agg``; ``gpu_count = tp``; ``moe_tp = tp``, ``moe_ep = 1`` (plain tensor parallelism);
``batch_size`` empty (the server's setting is not visible to a client).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from servewise.catalog import DataKind, open_catalog, valid_columns

from ._run import LevelResult

__all__ = ["MeasuredPoint", "SystemUnderTest", "benchmark_csv_rows", "level_points", "save_points"]


@dataclass(frozen=True, slots=True)
class SystemUnderTest:
    """What served the benchmark; names are the catalog's canonical ones."""

    model: str
    gpu: str
    tp: int
    precision: str
    backend: str


@dataclass(frozen=True, slots=True)
class MeasuredPoint:
    """One closed-loop level reduced to what the benchmark table keeps."""

    isl: int
    osl: int
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    row_id: str
    measured_on: date | None = None
    """When it was measured, if known; else the ``measured_on`` given to ``benchmark_csv_rows``."""


def level_points(
    results: Sequence[LevelResult], *, isl: int, osl: int, stamp: datetime
) -> list[MeasuredPoint]:
    """The closed-loop levels that have a mean TTFT and TPOT, as points (ids from ``stamp`` and C)."""
    points = []
    for result in results:
        ttft, tpot, concurrency = (
            result.stats.ttft.mean_ms,
            result.stats.tpot.mean_ms,
            result.level.concurrency,
        )
        if ttft is None or tpot is None or concurrency is None:
            continue
        row_id = f"servewise-bench-{stamp.strftime('%Y%m%dT%H%M%S')}-c{concurrency}"
        points.append(MeasuredPoint(isl, osl, concurrency, ttft, tpot, row_id, stamp.date()))
    return points


def _columns() -> list[str]:
    """``calibration.csv``'s columns (the record's fields less ``as_of``, which that file does not carry)."""
    return [c for c in valid_columns(DataKind.benchmarks) if c != "as_of"]


def benchmark_csv_rows(
    system: SystemUnderTest, points: Sequence[MeasuredPoint], *, source: str, measured_on: date | None = None
) -> list[dict[str, str]]:
    """The CSV cells of each point, in ``calibration.csv``'s columns; ``measured_date`` is the point's own date,
    else ``measured_on``, else empty (unknown)."""
    rows = []
    for point in points:
        day = point.measured_on or measured_on
        values: dict[str, object] = {
            "model": system.model,
            "backend": system.backend,
            "mode": "agg",
            "system": system.gpu,
            "gpu_count": system.tp,
            "tp": system.tp,
            "precision": system.precision,
            "isl": point.isl,
            "osl": point.osl,
            "concurrency": point.concurrency,
            "ttft_ms": repr(point.ttft_ms),
            "tpot_ms": repr(point.tpot_ms),
            "pp": 1,
            "attention_dp": 1,
            "moe_tp": system.tp,
            "moe_ep": 1,
            "batch_size": "",
            "backend_version": "",
            "gemm_quant_mode": "",
            "moe_quant_mode": "",
            "precision_inferred": False,
            "concurrency_from_source": True,
            "measured_date": day.isoformat() if day else "",
            "container_image": "",
            "id_tp": "",
            "id_ep": "",
            "parallelism_suspect": False,
            "source_row_id": point.row_id,
            "source": source,
        }
        rows.append({column: str(values[column]) for column in _columns()})
    return rows


def save_points(rows: Sequence[dict[str, str]], *, db_url: str | None) -> int:
    """Import the rows into the catalog (``db_url`` or ``SERVEWISE_DB_URL``) in one transaction; returns how
    many were written. Raises ``CatalogError`` (nothing written) when a value is out of range."""
    with tempfile.TemporaryDirectory(prefix="servewise-bench-") as folder:
        path = Path(folder) / "measured.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=_columns(), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        with open_catalog(db_url) as catalog:
            return catalog.import_csv(DataKind.benchmarks, path)
