"""``servewise catalog list|show|health|import``: read and extend the catalog from the command line.

Why every command opens and closes its own catalog: commands are short, and a closed engine leaves no file
handles or connections behind (tests run with warnings as errors). ``--db-url`` on the group or on a command
overrides ``SERVEWISE_DB_URL``; the command's own option wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.catalog import Catalog, DataKind, Finding, catalog_rows, open_catalog, record_dict
from servewise.errors import ServewiseError, UnknownNameError, UsageError

from ._output import Column, OutputFormat, fail, render, stderr_console

__all__ = ["catalog_app"]

catalog_app = typer.Typer(
    name="catalog",
    help="Models, GPUs, prices, benchmarks and use cases, each with its source.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbUrlOption = Annotated[
    str | None,
    typer.Option("--db-url", help="Catalog database URL (overrides SERVEWISE_DB_URL).", show_default=False),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]

_TABLE_COLUMNS: dict[DataKind, tuple[str, ...]] = {
    DataKind.gpus: (
        "name", "vendor", "memory_gb", "memory_bw_gbps", "bf16_tflops", "fp8_tflops", "fp4_tflops",
        "intra_node_bw_gbps", "max_per_node",
    ),
    DataKind.models: (
        "name", "params_b", "active_params_b", "num_layers", "hidden_size", "num_kv_heads", "attention",
        "kv_bytes_per_token_fp16", "max_context",
    ),
    DataKind.offers: (
        "provider", "region", "instance_type", "gpu", "gpu_count", "price_per_hour_usd",
        "spot_price_per_hour_usd", "as_of",
    ),
    DataKind.api_prices: (
        "provider", "model", "input_per_1m_usd", "output_per_1m_usd", "cached_input_per_1m_usd", "as_of",
    ),
    DataKind.benchmarks: (
        "model", "backend", "system", "gpu_count", "tp", "precision", "isl", "osl", "concurrency", "ttft_ms",
        "tpot_ms",
    ),
    DataKind.use_cases: (
        "name", "prompt_tokens", "output_tokens", "ttft_p95_ms", "itl_p95_ms", "e2e_p95_ms", "min_params_b",
    ),
    DataKind.aliases: ("kind", "alias", "target", "notes"),
    DataKind.cpus: (
        "provider", "instance_type", "cpu_model", "vcpus", "physical_cores", "memory_bw_gbps", "bf16_tflops",
        "int8_tops", "as_of",
    ),
}  # fmt: skip
_NUMERIC = (int, float)
_DEFAULT_TABLE_LIMIT = 50


@contextmanager
def _reported() -> Iterator[None]:
    """Servewise errors become one line on stderr and exit code 2, also when the sub-app runs without ``main()``
    (as under ``CliRunner``)."""
    try:
        yield
    except ServewiseError as err:
        fail(str(err))


@contextmanager
def _catalog(ctx: typer.Context, db_url: str | None) -> Iterator[Catalog]:
    group_url = ctx.obj if isinstance(ctx.obj, str) else None
    catalog = open_catalog(db_url or group_url)
    try:
        yield catalog
    finally:
        catalog.close()


@catalog_app.callback()
def _group(ctx: typer.Context, db_url: DbUrlOption = None) -> None:
    """Models, GPUs, prices, benchmarks and use cases, each with its source."""
    ctx.obj = db_url


def _columns(keys: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[Column]:
    def numeric(key: str) -> bool:
        values = [row.get(key) for row in rows]
        return any(isinstance(v, _NUMERIC) and not isinstance(v, bool) for v in values)

    return [Column(key, key, numeric=numeric(key)) for key in keys]


def _parse_filters(filters: Sequence[str]) -> list[tuple[str, str]]:
    parsed = []
    for item in filters:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--filter expects key=value, got {item!r}; e.g. --filter provider=aws")
        parsed.append((key, value))
    return parsed


@catalog_app.command("list")
def list_command(
    ctx: typer.Context,
    kind: Annotated[DataKind, typer.Argument(help="What to list.", case_sensitive=False)],
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", help="key=value: case-insensitive substring match on a column (repeatable)."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=0, help="At most N rows (0 = all). Benchmarks default to 50 in table/markdown."
        ),
    ] = None,
    db_url: DbUrlOption = None,
) -> None:
    """List catalog rows: gpus, models, offers, api-prices, benchmarks, use-cases or aliases."""
    with _reported(), _catalog(ctx, db_url) as catalog:
        from servewise.catalog import valid_columns

        valid = valid_columns(kind)
        rows = catalog_rows(catalog, kind, _parse_filters(filters or []))
    human = fmt in (OutputFormat.table, OutputFormat.markdown)
    if limit is None and human and kind is DataKind.benchmarks:
        limit = _DEFAULT_TABLE_LIMIT
    total = len(rows)
    if limit:
        rows = rows[:limit]
    caption = f"showing {len(rows)} of {total} rows; --limit 0 shows all" if len(rows) < total else None
    keys = _TABLE_COLUMNS[kind] if human else valid
    render(rows, _columns(keys, rows), fmt, title=f"catalog {kind.value}", caption=caption)


def _field_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"field": key, "value": value} for key, value in record.items()]


_FIELD_COLUMNS = [Column("field", "field"), Column("value", "value")]


@catalog_app.command("show")
def show_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A GPU, model or use case; aliases and HF ids work.")],
    fmt: FormatOption = OutputFormat.table,
    db_url: DbUrlOption = None,
) -> None:
    """Every field of one GPU (with its offers), model (with its benchmark count) or use case."""
    with _reported(), _catalog(ctx, db_url) as catalog:
        lookups = (("gpu", catalog.accelerator), ("model", catalog.model), ("use case", catalog.use_case))
        misses: list[UnknownNameError] = []
        for kind, lookup in lookups:
            try:
                record = record_dict(lookup(name))
            except UnknownNameError as err:
                misses.append(err)
                continue
            document: dict[str, Any] = {"kind": kind, "record": record}
            if kind == "gpu":
                document["offers"] = [record_dict(o) for o in catalog.offers(gpu=record["name"])]
            if kind == "model":
                document["benchmark_rows"] = catalog.benchmark_count(model=record["name"])
            break
        else:
            family_hint = next((m for m in misses if "names a family" in str(m)), None)
            if family_hint is not None:
                raise family_hint
            suggestions = [s for m in misses for s in m.suggestions]
            hint = f"; did you mean {', '.join(repr(s) for s in suggestions[:5])}?" if suggestions else "."
            raise UsageError(
                f"{name!r} is not a GPU, model or use case in the catalog{hint} "
                "See `servewise catalog list gpus|models|use-cases`."
            )
    if fmt is OutputFormat.json:
        render([], _FIELD_COLUMNS, fmt, json_document=document)
        return
    render(_field_rows(record), _FIELD_COLUMNS, fmt, title=f"{kind} {record['name']}")
    if kind == "gpu":
        offers = document["offers"]
        keys = _TABLE_COLUMNS[DataKind.offers]
        render(offers, _columns(keys, offers), fmt, title=f"offers with {record['name']}")
    if kind == "model":
        render(
            [{"benchmark_rows": document["benchmark_rows"]}],
            [Column("benchmark_rows", "measured benchmark rows", numeric=True)],
            fmt,
        )


def _finding_dict(finding: Finding) -> dict[str, str]:
    return dataclasses.asdict(finding)


@catalog_app.command("health")
def health_command(
    ctx: typer.Context,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")
    ] = False,
    today: Annotated[
        str | None, typer.Option("--today", help="Age prices against this ISO date instead of today.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
    db_url: DbUrlOption = None,
) -> None:
    """Stale or undated prices, incomplete specs, offers for unknown GPUs, unresolved benchmark names."""
    with _reported():
        try:
            day = date.fromisoformat(today) if today else None
        except ValueError:
            raise UsageError(f"--today expects an ISO date (YYYY-MM-DD), got {today!r}") from None
        with _catalog(ctx, db_url) as catalog:
            report = catalog.health(day)
    rows = [_finding_dict(f) for f in report.findings]
    columns = [Column("severity", "severity"), Column("kind", "kind"), Column("subject", "subject")]
    columns.append(Column("message", "message"))
    document = {
        "today": report.today.isoformat(),
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "findings": rows,
    }
    caption = (
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) as of {report.today.isoformat()}"
    )
    render(rows, columns, fmt, title="catalog health", json_document=document, caption=caption)
    if report.errors or (strict and report.warnings):
        raise SystemExit(1)  # the report above says why; SystemExit so the code survives non-standalone mode


@catalog_app.command("import")
def import_command(
    ctx: typer.Context,
    kind: Annotated[DataKind, typer.Argument(help="What the file holds.", case_sensitive=False)],
    file: Annotated[Path, typer.Argument(help="CSV file with the same columns as the packaged file.")],
    db_url: DbUrlOption = None,
) -> None:
    """Add your own rows (origin=user); they replace rows with the same key and survive data refreshes."""
    with _reported(), _catalog(ctx, db_url) as catalog:
        count = catalog.import_csv(kind, file)
    stderr_console().print(f"imported {count} {kind.value} row(s) from {escape(str(file))}", highlight=False)
