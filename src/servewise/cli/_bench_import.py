"""``servewise bench import FILE``, and the flags that name what served a measurement (shared with
``servewise bench URL --save``): a catalog benchmark row must say which model, GPU, TP, precision and engine it
measured, in the catalog's own names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from servewise.bench import (
    SystemUnderTest,
    benchmark_csv_rows,
    guidellm_points,
    read_guidellm_report,
    save_points,
)
from servewise.catalog import open_catalog
from servewise.errors import ServewiseError, UsageError
from servewise.types import Precision

from ._output import Column, OutputFormat, fail, render, stderr_console
from ._predict import Backend

__all__ = [
    "BackendOption",
    "DbUrlOption",
    "FormatOption",
    "GpuOption",
    "ModelNameOption",
    "PrecisionOption",
    "TpOption",
    "bench_import_command",
    "note",
    "reported",
    "system_from_flags",
]


@contextmanager
def reported() -> Iterator[None]:
    """One line on stderr and exit code 2 also when the sub-app runs without ``main()``."""
    try:
        yield
    except ServewiseError as err:
        fail(str(err), 2)


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table, json, csv or markdown")]
DbUrlOption = Annotated[
    str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
]
ModelNameOption = Annotated[
    str | None, typer.Option("--model-name", help="catalog model that served it (with --save / import)")
]
GpuOption = Annotated[
    str | None, typer.Option("--gpu", help="catalog GPU that served it (with --save / import)")
]
TpOption = Annotated[int, typer.Option("--tp", min=1, help="tensor-parallel GPUs per replica")]
PrecisionOption = Annotated[
    Precision | None, typer.Option("--precision", help="weight precision served (with --save / import)")
]
BackendOption = Annotated[Backend, typer.Option("--backend", help="serving engine")]


def note(message: str) -> None:
    stderr_console().print(escape(message), style="dim", highlight=False)


def system_from_flags(
    why: str,
    model_name: str | None,
    gpu: str | None,
    tp: int,
    precision: Precision | None,
    backend: Backend,
    db_url: str | None,
) -> SystemUnderTest:
    """The catalog's names for what served the measurements; every flag is required (a row names them)."""
    if model_name is None or gpu is None or precision is None:
        missing = [flag for flag, value in (("--model-name", model_name), ("--gpu", gpu),
                                            ("--precision", precision)) if value is None]  # fmt: skip
        raise UsageError(
            f"{why} needs {', '.join(missing)} (and --tp/--backend when not 1/vllm): a catalog row names the "
            "model, GPU and precision that served it"
        )
    with open_catalog(db_url) as catalog:
        return SystemUnderTest(
            catalog.resolve_model(model_name), catalog.accelerator(gpu).name, tp, str(precision), str(backend)
        )


_IMPORT_COLUMNS = (
    Column("label", "benchmark"),
    Column("concurrency", "concurrency", numeric=True),
    Column("successful", "ok requests", numeric=True),
    Column("isl", "isl", numeric=True),
    Column("osl", "osl", numeric=True),
    Column("ttft_ms", "TTFT mean ms", numeric=True),
    Column("tpot_ms", "TPOT mean ms", numeric=True),
    Column("measured_on", "measured"),
    Column("status", "row"),
)


def bench_import_command(
    file: Annotated[Path, typer.Argument(help="GuideLLM report (benchmarks.json)")],
    model_name: ModelNameOption = None,
    gpu: GpuOption = None,
    tp: TpOption = 1,
    precision: PrecisionOption = None,
    backend: BackendOption = Backend.vllm,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the rows; write nothing")] = False,
    fmt: FormatOption = OutputFormat.table,
    db_url: DbUrlOption = None,
) -> None:
    """Add a GuideLLM report's closed-loop benchmarks (synchronous, concurrent) to the catalog's benchmarks."""
    with reported():
        benchmarks = read_guidellm_report(file)
        named = model_name or next((b.model for b in benchmarks if b.model), None)
        system = system_from_flags("bench import", named, gpu, tp, precision, backend, db_url)
        shown, points = guidellm_points(benchmarks, stamp=datetime.now(UTC))
        for row in shown:
            if row["status"] == "ok":
                row["status"] = "would add" if dry_run else "added"
        if not points:
            raise UsageError(
                f"{file} has no closed-loop benchmark to import (GuideLLM's synchronous or concurrent strategies); "
                "rate-based ones have no concurrency for the benchmark table"
            )
        rows = benchmark_csv_rows(
            system, points, source=f"guidellm report {file.name} (imported {date.today().isoformat()})"
        )
        written = 0 if dry_run else save_points(rows, db_url=db_url)
        render(
            shown,
            _IMPORT_COLUMNS,
            fmt,
            title=f"{file}: {system.model} {system.precision} on {system.tp}x{system.gpu} ({system.backend})",
            json_document={
                "file": str(file),
                "system": dataclasses.asdict(system),
                "benchmarks": shown,
                "written": written,
                "dry_run": dry_run,
            },
            caption="TPOT = GuideLLM's inter_token_latency_ms (mean); lengths = mean prompt/output tokens",
        )
        note(
            f"{'would add' if dry_run else 'added'} {len(points)} row(s) to the catalog's benchmarks; "
            "`servewise calibrate` fits on them"
        )
