"""``servewise accuracy DATA.csv``: how far the predictions are from measured rows, overall and per group.

Each row of DATA.csv (the columns of the packaged ``calibration.csv``) is simulated as the benchmark that measured
it and predicted with the calibration table (the packaged fit, ``--calibration FILE``, or the analytical defaults
when neither exists). ``--cross-validate`` instead predicts each (model, system) group with a table fitted on all
the *other* groups of DATA.csv: the held-out error, the number to quote. The error of a row is the absolute
percentage error APE = |predicted − measured| / measured × 100 of its mean TTFT and mean TPOT; the summaries are the
median and the 90th percentile of the APEs. Rows that cannot be simulated (unknown model or system, pipeline
parallelism, a precision the GPU lacks, does not fit) are skipped with the reason and counted.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from servewise.catalog import BenchmarkRow
from servewise.errors import UsageError
from servewise.perf._anatomy import error_anatomy
from servewise.perf._calibrate import (
    CalibrationTable,
    RowFeatures,
    cross_validate,
    data_fingerprint,
    group_of,
    predict_rows,
)

from ._accuracy_report import TARGETS, plot_png, report_markdown
from ._calibrate import (
    catalog_facts,
    level_key_text,
    load_calibration,
    note,
    read_benchmark_csv,
    simulate_rows,
    skipped_summary,
)
from ._output import Column, OutputFormat, check_writable, progress_bar, render, write_atomically
from ._predict import Backend

__all__ = ["GroupErrors", "ScoredRow", "accuracy_command", "errors_of", "score_rows"]

HELD_OUT = "held-out"
GROUP_FIELDS = ("model", "backend", "system", "precision")
ROW_COLUMNS = (
    "source_row_id", "model", "backend", "system", "precision", "gpu", "tp", "dp", "isl", "osl", "concurrency",
    "measured_ttft_ms", "predicted_ttft_ms", "ttft_ape", "measured_tpot_ms", "predicted_tpot_ms", "tpot_ape",
    "provenance", "level", "skip_reason",
)  # fmt: skip


def ape(predicted: float, measured: float) -> float:
    """Absolute percentage error, %; NaN when either side is missing."""
    if not (math.isfinite(predicted) and math.isfinite(measured)) or measured <= 0:
        return math.nan
    return abs(predicted - measured) / measured * 100.0


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """A measured row with its prediction (ms) and what the prediction rests on."""

    features: RowFeatures
    ttft_ms: float
    tpot_ms: float
    provenance: str
    level: str
    """The calibration level whose parameters predicted it ("held-out" under cross-validation)."""

    @property
    def row(self) -> BenchmarkRow:
        return self.features.row

    @property
    def ttft_ape(self) -> float:
        return ape(self.ttft_ms, self.row.ttft_ms)

    @property
    def tpot_ape(self) -> float:
        return ape(self.tpot_ms, self.row.tpot_ms)

    @property
    def group(self) -> tuple[str, str, str, str]:
        r = self.row
        return (r.model, r.backend, r.system, r.precision)


@dataclass(frozen=True, slots=True)
class GroupErrors:
    """Median and p90 APE (%) of TTFT and TPOT over some rows; None where no row has the metric."""

    rows: int
    ttft_median_ape: float | None
    ttft_p90_ape: float | None
    tpot_median_ape: float | None
    tpot_p90_ape: float | None

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 2)

        return {
            "rows": self.rows,
            "ttft_median_ape": r(self.ttft_median_ape),
            "ttft_p90_ape": r(self.ttft_p90_ape),
            "tpot_median_ape": r(self.tpot_median_ape),
            "tpot_p90_ape": r(self.tpot_p90_ape),
        }


def _stats(values: Sequence[float]) -> tuple[float | None, float | None]:
    finite = np.array([v for v in values if math.isfinite(v)])
    if finite.size == 0:
        return None, None
    return float(np.median(finite)), float(np.percentile(finite, 90))


def errors_of(scored: Sequence[ScoredRow]) -> GroupErrors:
    ttft = _stats([s.ttft_ape for s in scored])
    tpot = _stats([s.tpot_ape for s in scored])
    return GroupErrors(len(scored), ttft[0], ttft[1], tpot[0], tpot[1])


def score_rows(
    features: Sequence[RowFeatures], table: CalibrationTable | None, *, held_out: bool
) -> list[ScoredRow]:
    """Predictions for every row: with ``table`` (analytical defaults when None), or held out (leave one (model,
    system) group out, fitted on the others; one progress tick per group)."""
    if held_out:
        groups = {group_of(f.row) for f in features}
        with progress_bar("cross-validating groups", len(groups)) as advance:
            ttft, tpot = cross_validate(features, progress=advance)
        return [
            ScoredRow(
                f, float(a), float(b), HELD_OUT, "fit on the other groups (+ model correction from them)"
            )
            for f, a, b in zip(features, ttft, tpot, strict=True)
        ]
    ttft, tpot = predict_rows(features, table)
    scored = []
    for f, a, b in zip(features, ttft, tpot, strict=True):
        gpu, backend, precision = f.key
        if table is None:
            provenance, level = "analytical", "analytical defaults"
        else:
            provenance = str(table.params_for(gpu, backend, precision).provenance)
            found = table.level_for(gpu, backend, precision)
            level = level_key_text(found.key) if found.rows else "analytical defaults"
            if table.correction_for(f.setup.model.name, backend) is not None:
                level += " + model correction"
        scored.append(ScoredRow(f, float(a), float(b), provenance, level))
    return scored


def group_rows(scored: Sequence[ScoredRow]) -> list[dict[str, Any]]:
    """Per (model, backend, system, precision): rows, median/p90 APE, and the provenance(s) of its predictions."""
    by_group: dict[tuple[str, str, str, str], list[ScoredRow]] = defaultdict(list)
    for s in scored:
        by_group[s.group].append(s)
    out = []
    for key in sorted(by_group):
        members = by_group[key]
        provenance = ", ".join(sorted({s.provenance for s in members}))
        levels = ", ".join(sorted({s.level for s in members}))
        out.append(
            dict(zip(GROUP_FIELDS, key, strict=True))
            | errors_of(members).as_dict()
            | {"provenance": provenance, "level": levels}
        )
    return out


def anatomy_of(scored: Sequence[ScoredRow]) -> dict[str, Any]:
    """TTFT's and TPOT's error split into group bias and within-group error (``perf._anatomy``), by the per-group
    table's groups; a metric no row has is left out."""
    groups = [s.group for s in scored]
    out: dict[str, Any] = {}
    for metric in ("ttft", "tpot"):
        measured = [getattr(s.row, f"{metric}_ms") for s in scored]
        predicted = [getattr(s, f"{metric}_ms") for s in scored]
        anatomy = error_anatomy(measured, predicted, groups)
        if anatomy is not None:
            out[metric] = anatomy.as_dict()
    return out


def _row_csv(scored: Sequence[ScoredRow], skipped: Sequence[tuple[BenchmarkRow, str]]) -> str:
    def num(x: float) -> str:
        return f"{x:.6g}" if math.isfinite(x) else ""

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    for s in scored:
        r, setup = s.row, s.features.setup
        writer.writerow([
            r.source_row_id, r.model, r.backend, r.system, r.precision, setup.gpu.name, setup.tp, setup.dp,
            r.isl, r.osl, r.concurrency, num(r.ttft_ms), num(s.ttft_ms), num(s.ttft_ape), num(r.tpot_ms),
            num(s.tpot_ms), num(s.tpot_ape), s.provenance, s.level, "",
        ])  # fmt: skip
    for r, reason in skipped:
        writer.writerow([
            r.source_row_id, r.model, r.backend, r.system, r.precision, "", r.tp, r.attention_dp, r.isl, r.osl,
            r.concurrency, num(r.ttft_ms), "", "", num(r.tpot_ms), "", "", "", "", reason,
        ])  # fmt: skip
    return buffer.getvalue()


_OVERALL_COLUMNS = (
    Column("scope", "scope"),
    Column("rows", "rows", numeric=True),
    Column("ttft_median_ape", "TTFT median APE %", numeric=True),
    Column("ttft_p90_ape", "TTFT p90 APE %", numeric=True),
    Column("tpot_median_ape", "TPOT median APE %", numeric=True),
    Column("tpot_p90_ape", "TPOT p90 APE %", numeric=True),
)
_ANATOMY_COLUMNS = (
    Column("metric", "metric"),
    Column("median_ape", "median APE %", numeric=True),
    Column("group_bias_median_pct", "typical group bias %", numeric=True),
    Column("within_group_median_ape", "median APE % without group bias (oracle)", numeric=True),
)
_GROUP_COLUMNS = (
    Column("model", "model"),
    Column("backend", "backend"),
    Column("system", "system"),
    Column("precision", "prec"),
    *_OVERALL_COLUMNS[1:],
    Column("provenance", "provenance"),
)


def _print(document: dict[str, Any], fmt: OutputFormat) -> None:
    groups: list[dict[str, Any]] = document["groups"]
    if fmt is OutputFormat.json:
        render([], _GROUP_COLUMNS, fmt, json_document=document)
        return
    overall = {
        "scope": "all rows",
        **{k: document[k] for k in ("rows", *(c.key for c in _OVERALL_COLUMNS[2:]))},
    }
    if fmt is OutputFormat.csv:
        everything = {"model": "*", "backend": "*", "system": "*", "precision": "*", **overall}
        render([everything, *groups], _GROUP_COLUMNS, fmt)
        return
    target = {
        "scope": "target (median)",
        "ttft_median_ape": f"<= {TARGETS['ttft_median_ape']:g}",
        "tpot_median_ape": f"<= {TARGETS['tpot_median_ape']:g}",
    }
    mode = "held-out (leave one (model, system) group out)" if document["mode"] == HELD_OUT else "in-sample"
    title = f"prediction error vs {document['data']}: {mode}"
    caption = (
        f"{document['rows']} rows predicted, {document['skipped']} skipped; "
        f"calibration: {document['calibration']}"
    )
    render([overall, target], _OVERALL_COLUMNS, fmt, title=title, caption=caption, marked_row=0)
    anatomy = [{"metric": k.upper(), **v} for k, v in document["anatomy"].items()]
    render(
        anatomy,
        _ANATOMY_COLUMNS,
        fmt,
        title="where the error is: whole-group bias vs within-group shape",
        caption="the last column divides each group by its own median bias (an oracle floor, not a prediction)",
    )
    render(groups, _GROUP_COLUMNS, fmt, title="per group (model, backend, system, precision)")


def accuracy_command(
    data: Annotated[Path, typer.Argument(help="measured rows: a CSV with calibration.csv's columns")],
    backend: Annotated[
        Backend | None, typer.Option("--backend", help="only rows of this serving engine")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="calibration table JSON (default: the packaged fit)"),
    ] = None,
    cross_validated: Annotated[
        bool,
        typer.Option(
            "--cross-validate", help="held-out: predict each (model, system) group with a fit on the others"
        ),
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write per-row predictions as CSV")
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="write a Markdown report")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write a predicted-vs-measured scatter (PNG)")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
) -> None:
    """Median and p90 absolute % error of predicted TTFT and TPOT against measured rows, overall and per group."""
    if cross_validated and calibration is not None:
        raise UsageError(
            "--calibration and --cross-validate exclude each other: cross-validation fits its own tables on "
            "the rows of DATA.csv; drop one of them"
        )
    for path, example in ((output, "rows.csv"), (report, "accuracy.md"), (plot, "accuracy.png")):
        if path is not None:
            check_writable(path, example)
    table, label = (
        (None, f"leave-one-group-out fits on {data}") if cross_validated else load_calibration(calibration)
    )
    rows = read_benchmark_csv(data)
    if backend is not None:
        present = sorted({r.backend for r in rows})
        rows = [r for r in rows if r.backend == backend]
        if not rows:
            raise UsageError(f"{data} has no {backend} rows; its backends: {', '.join(present)}")
    facts, _ = catalog_facts(db_url)
    features, skipped = simulate_rows(rows, facts)
    if not features:
        raise UsageError(
            f"none of the {len(rows)} row(s) of {data} can be simulated: {skipped_summary(skipped)}"
        )
    if cross_validated and len({group_of(f.row) for f in features}) < 2:
        raise UsageError(
            f"--cross-validate needs rows of at least two (model, system) groups; {data} has one "
            f"({features[0].row.model} on {features[0].row.system})"
        )
    scored = score_rows(features, table, held_out=cross_validated)
    overall = errors_of(scored)
    document: dict[str, Any] = {
        "data": str(data),
        "data_sha256": data_fingerprint(rows),
        "mode": HELD_OUT if cross_validated else "calibrated",
        "calibration": label,
        "backend": None if backend is None else str(backend),
        **overall.as_dict(),
        "skipped": len(skipped),
        "targets": dict(TARGETS),
        "anatomy": anatomy_of(scored),
        "groups": group_rows(scored),
        "skipped_rows": [
            {"source_row_id": r.source_row_id, "model": r.model, "system": r.system, "reason": reason}
            for r, reason in skipped
        ],
    }
    summary = skipped_summary(skipped)
    if summary:
        note(summary)
    if output is not None:
        write_atomically(output, _row_csv(scored, skipped), flag="-o", example="rows.csv")
    if report is not None:
        command = _command_line(data, backend, calibration, cross_validated, report, plot)
        write_atomically(report, report_markdown(document, command), flag="--report", example="accuracy.md")
    if plot is not None:
        write_atomically(plot, _plot(scored, document), flag="--plot", example="accuracy.png")
    _print(document, fmt)


def _plot(scored: Sequence[ScoredRow], document: dict[str, Any]) -> bytes:
    def arrays(measured: list[float], predicted: list[float]) -> tuple[np.ndarray, np.ndarray]:
        return np.array(measured, dtype=float), np.array(predicted, dtype=float)

    ttft = arrays([s.row.ttft_ms for s in scored], [s.ttft_ms for s in scored])
    tpot = arrays([s.row.tpot_ms for s in scored], [s.tpot_ms for s in scored])
    mode = "held-out" if document["mode"] == HELD_OUT else "in-sample"
    title = f"Servewise predicted vs measured, {mode}: {document['data']}"
    return plot_png(ttft, tpot, [s.row.backend for s in scored], title=title)


def _command_line(
    data: Path,
    backend: Backend | None,
    calibration: Path | None,
    cross_validated: bool,
    report: Path,
    plot: Path | None,
) -> str:
    parts = ["servewise", "accuracy", str(data)]
    if backend is not None:
        parts += ["--backend", str(backend)]
    if calibration is not None:
        parts += ["--calibration", str(calibration)]
    if cross_validated:
        parts.append("--cross-validate")
    parts += ["--report", str(report)]
    if plot is not None:
        parts += ["--plot", str(plot)]
    return " ".join(parts)
