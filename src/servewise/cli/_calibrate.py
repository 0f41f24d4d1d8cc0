"""``servewise calibrate``: fit the step model's efficiencies to measured rows and write the table as JSON.

Also the pieces ``accuracy`` and ``predict`` share with it: reading a benchmark CSV (the columns of the packaged
``calibration.csv``, validated by the catalog's own parser), simulating rows with a progress bar while skipping the
ones that cannot be simulated (with the reason), and loading a calibration table (the packaged fit, or a file).

Why the CLI owns these: ``perf`` is pure (no files, no progress output); reading, printing and writing live here.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from servewise.catalog import Accelerator, Alias, BenchmarkRow, DataKind, ModelSpec, open_catalog, parse_csv
from servewise.catalog._loader import to_record
from servewise.errors import CatalogError, UsageError
from servewise.perf._calibrate import (
    CalibrationTable,
    FittedLevel,
    RowFeatures,
    data_fingerprint,
    features_for_rows,
    fit_table,
    level_count,
    load_fitted_table,
)

from ._output import Column, OutputFormat, check_writable, progress_bar, render, stderr_console
from ._plan import write_json_atomically

__all__ = [
    "CatalogFacts",
    "calibrate_command",
    "calibrate_rows",
    "catalog_facts",
    "load_calibration",
    "read_benchmark_csv",
    "simulate_rows",
    "skipped_summary",
]

DEFAULT_OUTPUT = Path("calibration_fit.json")
_SHOWN_REASONS = 5


@dataclass(frozen=True, slots=True)
class CatalogFacts:
    """What a row needs to be simulated: the catalog's models, accelerators and name aliases."""

    models: tuple[ModelSpec, ...]
    accelerators: tuple[Accelerator, ...]
    aliases: tuple[Alias, ...]


def catalog_facts(
    db_url: str | None, *, with_benchmarks: bool = False
) -> tuple[CatalogFacts, list[BenchmarkRow]]:
    """Models, accelerators and aliases of the catalog (``--db-url`` or ``SERVEWISE_DB_URL``), and its measured
    rows when ``with_benchmarks`` (packaged plus imported ones)."""
    with open_catalog(db_url) as catalog:
        facts = CatalogFacts(tuple(catalog.models()), tuple(catalog.accelerators()), tuple(catalog.aliases()))
        rows = catalog.benchmarks() if with_benchmarks else []
    return facts, rows


def read_benchmark_csv(path: Path) -> list[BenchmarkRow]:
    """Rows of a CSV with ``calibration.csv``'s columns; a one-line ``UsageError`` when the file cannot be read
    or a cell is invalid (the catalog's parser names the line, the column and the value)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a folder; give a CSV file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV") from None
    hint = "expected the columns of calibration.csv (`servewise catalog list benchmarks --format csv` shows them)"
    try:
        values = parse_csv(DataKind.benchmarks, text, path=str(path))
    except CatalogError as err:
        raise UsageError(f"{err}; {hint}") from None
    except csv.Error as err:
        raise UsageError(f"{path}: not a CSV file ({err}); {hint}") from None
    if not values:
        raise UsageError(f"{path} has no rows; {hint}")
    return [to_record(DataKind.benchmarks, v) for v in values]


def simulate_rows(
    rows: Sequence[BenchmarkRow], facts: CatalogFacts, *, description: str = "simulating rows"
) -> tuple[list[RowFeatures], list[tuple[BenchmarkRow, str]]]:
    """Each row simulated once (progress bar on stderr); rows that cannot be simulated come back with the reason.

    Row by row, so that one row the simulation rejects (a value error deep in the model) is skipped with its
    reason instead of ending the run."""
    features: list[RowFeatures] = []
    skipped: list[tuple[BenchmarkRow, str]] = []
    with progress_bar(description, len(rows)) as advance:
        for row in rows:
            try:
                done, rejected = features_for_rows([row], facts.models, facts.accelerators, facts.aliases)
            except (ArithmeticError, ValueError, RuntimeError) as err:
                done, rejected = [], [(row, f"cannot be simulated: {err}")]
            features.extend(done)
            skipped.extend(rejected)
            advance(1)
    return features, skipped


def skipped_summary(skipped: Sequence[tuple[BenchmarkRow, str]]) -> str | None:
    """One line counting skipped rows by reason, the commonest first; None when nothing was skipped."""
    if not skipped:
        return None
    counts = Counter(reason for _, reason in skipped)
    shown = "; ".join(f"{n} x {reason}" for reason, n in counts.most_common(_SHOWN_REASONS))
    more = f"; and {len(counts) - _SHOWN_REASONS} more reason(s)" if len(counts) > _SHOWN_REASONS else ""
    return f"skipped {len(skipped)} row(s) that cannot be simulated: {shown}{more}"


def note(message: str) -> None:
    stderr_console().print(escape(message), style="dim", highlight=False)


def load_calibration(path: Path | None) -> tuple[CalibrationTable | None, str]:
    """The calibration table at ``path`` (or the packaged fit) and a label saying which; ``None`` with the label
    "analytical defaults" when there is no packaged fit."""
    if path is None:
        table = load_fitted_table()
        if table is None:
            return None, "analytical defaults (no packaged calibration fit)"
        return table, f"packaged calibration fit ({table.fitted_on}, {table.rows} rows)"
    try:
        table = load_fitted_table(path)
    except FileNotFoundError:
        raise UsageError(f"cannot read calibration {path}: no such file") from None
    except OSError as err:
        raise UsageError(f"cannot read calibration {path}: {err.strerror or err}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(
            f"{path} is not a calibration table ({type(err).__name__}: {err}); write one with `servewise calibrate`"
        ) from None
    if table is None:  # pragma: no cover - load_fitted_table(path) always returns a table or raises
        raise UsageError(f"cannot read calibration {path}")
    return table, f"calibration table {path} ({table.fitted_on}, {table.rows} rows)"


def calibrate_rows(
    rows: Sequence[BenchmarkRow], facts: CatalogFacts, *, fitted_on: str | None = None
) -> tuple[CalibrationTable, list[tuple[BenchmarkRow, str]]]:
    """Simulate and fit ``rows`` (two progress bars); the table records the fingerprint of every row given."""
    features, skipped = simulate_rows(rows, facts)
    if not features:
        raise UsageError(
            f"none of the {len(rows)} row(s) can be simulated, so there is nothing to fit: "
            f"{skipped_summary(skipped)}"
        )
    with progress_bar("fitting levels", level_count(features)) as advance:
        table = fit_table(
            features,
            fitted_on=fitted_on,
            data_sha256=data_fingerprint(rows),
            skipped=len(skipped),
            progress=advance,
        )
    return table, skipped


_LEVEL_COLUMNS = (
    Column("key", "level"),
    Column("rows", "rows", numeric=True),
    Column("status", "fitted"),
    Column("compute_efficiency", "compute eff", numeric=True),
    Column("bandwidth_efficiency", "bandwidth eff", numeric=True),
    Column("step_overhead_ms", "step overhead ms", numeric=True),
    Column("request_overhead_ms", "request overhead ms", numeric=True),
    Column("client_overhead_ms", "per-client overhead ms", numeric=True),
)


def level_key_text(key: Sequence[str]) -> str:
    return "/".join(key) if key else "global"


def _level_row(level: FittedLevel) -> dict[str, object]:
    p = level.params
    return {
        "key": level_key_text(level.key),
        "rows": level.rows,
        "status": "fitted" if level.fitted else "inherited",
        "compute_efficiency": round(p["compute_efficiency"], 4),
        "bandwidth_efficiency": round(p["bandwidth_efficiency"], 4),
        "step_overhead_ms": round(p["step_overhead_s"] * 1000.0, 4),
        "request_overhead_ms": round(p["request_overhead_s"] * 1000.0, 4),
        "client_overhead_ms": round(p.get("client_overhead_s_per_client", 0.0) * 1000.0, 4),
    }


def _fitted_on(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"--fitted-on expects an ISO date (YYYY-MM-DD), got {value!r}") from None


def calibrate_command(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="measured rows (calibration.csv's columns); default: the catalog's benchmarks"
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="where to write the calibration table (JSON)")
    ] = DEFAULT_OUTPUT,
    fitted_on: Annotated[
        str | None, typer.Option("--fitted-on", help="date recorded in the table (default: today)")
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
    include_observed: Annotated[
        bool,
        typer.Option(
            "--include-observed",
            help="also fit on the catalog's rows measured by `servewise watch` (source watch:...; left out "
            "otherwise) and print the accuracy on them before and after",
        ),
    ] = False,
) -> None:
    """Fit efficiencies per (GPU, backend, precision) to measured rows and write the table as JSON."""
    from ._calibrate_observed import select_rows

    day = _fitted_on(fitted_on)
    check_writable(output, DEFAULT_OUTPUT.name)
    data_rows = read_benchmark_csv(data) if data is not None else None
    facts, catalog_rows = catalog_facts(db_url, with_benchmarks=data is None or include_observed)
    rows, observed = select_rows(catalog_rows, data_rows, include_observed=include_observed)
    table, skipped = calibrate_rows(rows, facts, fitted_on=day)
    write_json_atomically(output, table.to_json(), example=DEFAULT_OUTPUT.name)
    summary = skipped_summary(skipped)
    if summary:
        note(summary)
    levels = sorted(table.levels.values(), key=lambda lv: (len(lv.key), lv.key))
    shown = [_level_row(level) for level in levels]
    fitted = sum(1 for level in levels if level.fitted)
    document = {
        "output": str(output),
        "fitted_on": table.fitted_on,
        "data_sha256": table.data_sha256,
        "rows": table.rows,
        "skipped": table.skipped,
        "levels": shown,
        "model_corrections": table.to_json()["model_corrections"],
    }
    models = len({key[0] for key in table.model_corrections})
    caption = (
        f"{fitted} of {len(levels)} levels fitted on {table.rows} rows ({table.skipped} skipped); "
        f"step-time and prefill correction factors for {models} model(s) in the JSON"
    )
    if fitted < len(levels):
        caption += "; an inherited level has too few rows to fit and uses its parent's values"
    accuracy = _observed_accuracy(observed, facts, table) if include_observed else None
    if accuracy is not None:
        document["observed_accuracy"] = accuracy
    render(shown, _LEVEL_COLUMNS, fmt, title="calibration levels", json_document=document, caption=caption)
    if accuracy is not None:
        _print_observed_accuracy(accuracy, fmt)
    note(
        f"wrote {output}: use it with --calibration {output} in `servewise predict` and `servewise accuracy`"
    )


def _observed_accuracy(
    observed: Sequence[BenchmarkRow], facts: CatalogFacts, table: CalibrationTable
) -> dict[str, object]:
    from ._calibrate_observed import observed_accuracy

    return observed_accuracy(observed, facts, table)


def _print_observed_accuracy(accuracy: dict[str, object], fmt: OutputFormat) -> None:
    """The before/after table after the levels (a note on stderr for csv and json, whose stdout is one document)."""
    from ._calibrate_observed import ACCURACY_COLUMNS

    rows = [accuracy["before"], accuracy["after"]]
    if fmt in (OutputFormat.table, OutputFormat.markdown):
        title = f"accuracy on {accuracy['rows']} observed row(s)"
        render(rows, ACCURACY_COLUMNS, fmt, title=title, caption=str(accuracy["note"]))  # type: ignore[arg-type]
    else:
        note(str(accuracy["note"]))
