"""``Catalog``: typed reads and user imports over an open catalog database.

Why a thin class over an engine: the constructor does no I/O (``open_catalog`` connects, migrates and
imports), every method returns records from ``_records.py`` (never ORM rows, never a session), and name
resolution goes through the pure functions in ``_aliases.py`` so the planner gets the same answers from a
snapshot.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, insert, select, true
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from servewise.errors import CatalogError, UnknownNameError
from servewise.settings import Settings

from ._aliases import GPU_KIND, MODEL_KIND, fold, gpu_family, resolve_gpu, resolve_model
from ._audit import DeployAuditEntry, read_deploy_audit, record_deploy_audit
from ._db import ORIGIN_USER, TABLES, connect_engine, ensure_ready, first_line, mask_url, write_transaction
from ._health import HealthReport, check_health
from ._loader import DataKind, key_columns, natural_key, parse_csv, to_record
from ._records import (
    Accelerator,
    Alias,
    ApiPrice,
    BenchmarkRow,
    CatalogSnapshot,
    CloudOffer,
    CpuSpec,
    ModelSpec,
    UseCaseTemplate,
)

__all__ = ["Catalog", "open_catalog"]


def open_catalog(url: str | None = None) -> Catalog:
    """Connect to the catalog database (default ``Settings().db_url``), migrate and import on first use.

    Raises ``CatalogError`` with a one-line fix when the URL is bad, the driver is missing or the server does
    not answer. Close the returned catalog (or use it as a context manager) to release its connections.
    """
    engine = connect_engine(url if url is not None else Settings().db_url)
    try:
        ensure_ready(engine)
    except BaseException:
        engine.dispose()
        raise
    return Catalog(engine)


class Catalog:
    """Read and import catalog facts; every method opens and closes its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def url(self) -> str:
        """The database URL with the password masked."""
        return mask_url(self._engine.url)

    def close(self) -> None:
        """Release the connection pool; the catalog cannot be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------------------------

    def _records(self, kind: DataKind, *where: ColumnElement[bool], limit: int | None = None) -> list[Any]:
        table = TABLES[kind]
        query = select(table).where(*where).order_by(table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [to_record(kind, row) for row in connection.execute(query).mappings()]

    def accelerators(self) -> list[Accelerator]:
        return self._records(DataKind.gpus)

    def models(self) -> list[ModelSpec]:
        return self._records(DataKind.models)

    def offers(self, *, gpu: str | None = None, provider: str | None = None) -> list[CloudOffer]:
        """Cloud offers; ``gpu`` is a family or name (``"H100"`` → every H100 variant), ``provider`` exact."""
        table = TABLES[DataKind.offers]
        where: list[ColumnElement[bool]] = []
        if gpu is not None:
            where.append(table.c.gpu.in_(self.resolve_gpus(gpu)))
        if provider is not None:
            where.append(func.lower(table.c.provider) == provider.casefold())
        return self._records(DataKind.offers, *where)

    def api_prices(self, *, provider: str | None = None) -> list[ApiPrice]:
        table = TABLES[DataKind.api_prices]
        where = [func.lower(table.c.provider) == provider.casefold()] if provider is not None else []
        return self._records(DataKind.api_prices, *where)

    def cpus(self, *, provider: str | None = None) -> list[CpuSpec]:
        """CPU specs of CPU-only instance types (``provider`` exact, case-insensitive)."""
        table = TABLES[DataKind.cpus]
        where = [func.lower(table.c.provider) == provider.casefold()] if provider is not None else []
        return self._records(DataKind.cpus, *where)

    def use_cases(self) -> list[UseCaseTemplate]:
        return self._records(DataKind.use_cases)

    def aliases(self, kind: str | None = None) -> list[Alias]:
        """Aliases, all or of one ``kind`` (``gpu`` or ``model``)."""
        table = TABLES[DataKind.aliases]
        return self._records(DataKind.aliases, *([table.c.kind == kind] if kind is not None else []))

    def snapshot(self) -> CatalogSnapshot:
        """Everything the planner reads, without benchmarks (the large table), in one call."""
        return CatalogSnapshot(
            accelerators=tuple(self.accelerators()),
            models=tuple(self.models()),
            offers=tuple(self.offers()),
            api_prices=tuple(self.api_prices()),
            use_cases=tuple(self.use_cases()),
            cpus=tuple(self.cpus()),
        )

    def _benchmark_filter(
        self, model: str | None, gpu: str | None, backend: str | None, precision: str | None
    ) -> list[ColumnElement[bool]]:
        """Benchmarks name models and systems as their source does, so match on what they resolve to."""
        table = TABLES[DataKind.benchmarks]
        where: list[ColumnElement[bool]] = []
        if model is not None or gpu is not None:
            models, aliases, accelerators = self.models(), self.aliases(), self.accelerators()
            with self._engine.connect() as connection:
                pairs = connection.execute(select(table.c.model, table.c.system).distinct()).all()
            if model is not None:
                target = self.resolve_model(model)
                raw = {m for m, _ in pairs if resolve_model(m, models, aliases) == target}
                where.append(table.c.model.in_(sorted(raw)))
            if gpu is not None:
                family = set(self.resolve_gpus(gpu))
                raw = {s for _, s in pairs if resolve_gpu(s, accelerators, aliases) in family}
                where.append(table.c.system.in_(sorted(raw)))
        if backend is not None:
            where.append(func.lower(table.c.backend) == backend.casefold())
        if precision is not None:
            where.append(func.lower(table.c.precision) == precision.casefold())
        return where

    def benchmarks(
        self,
        *,
        model: str | None = None,
        gpu: str | None = None,
        backend: str | None = None,
        precision: str | None = None,
        limit: int | None = None,
    ) -> list[BenchmarkRow]:
        """Measured rows; ``model``/``gpu`` accept aliases (``gpu`` a family); the others match exactly."""
        where = self._benchmark_filter(model, gpu, backend, precision)
        return self._records(DataKind.benchmarks, *where, limit=limit)

    def benchmark_count(self, *, model: str | None = None, gpu: str | None = None) -> int:
        """How many measured rows match, without loading them."""
        table = TABLES[DataKind.benchmarks]
        where = self._benchmark_filter(model, gpu, None, None)
        with self._engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(table).where(and_(true(), *where)))
            return int(count.scalar_one())

    # -- names -----------------------------------------------------------------------------------------------

    def resolve_gpus(self, name: str) -> list[str]:
        """What a GPU constraint means: an exact name or alias, else the family ("a100" → all A100s)."""
        accelerators, aliases = self.accelerators(), self.aliases(GPU_KIND)
        found = gpu_family(name, accelerators, aliases)
        if not found:
            known = [a.name for a in accelerators] + [a.alias for a in aliases]
            raise UnknownNameError("gpu", name, known)
        return found

    def accelerator(self, name: str) -> Accelerator:
        """One accelerator by name or alias; ``UnknownNameError`` with suggestions otherwise."""
        accelerators, aliases = self.accelerators(), self.aliases(GPU_KIND)
        canonical = resolve_gpu(name, accelerators, aliases)
        if canonical is None:
            family = gpu_family(name, accelerators, aliases)
            known = family or [a.name for a in accelerators] + [a.alias for a in aliases]
            hint = f"{name!r} names a family; pick one of {', '.join(family)}." if family else ""
            raise UnknownNameError("gpu", name, known, hint=hint)
        return next(a for a in accelerators if a.name == canonical)

    def resolve_model(self, name: str) -> str:
        """Canonical model name for a name, HF id or benchmark id (``nvidia/Llama-3.1-8B-Instruct-FP8``)."""
        models, aliases = self.models(), self.aliases(MODEL_KIND)
        canonical = resolve_model(name, models, aliases)
        if canonical is None:
            known = [m.name for m in models] + [a.alias for a in aliases]
            raise UnknownNameError("model", name, known)
        return canonical

    def model(self, name: str) -> ModelSpec:
        """One model by name, HF id or alias; ``UnknownNameError`` with suggestions otherwise."""
        canonical = self.resolve_model(name)
        return next(m for m in self.models() if m.name == canonical)

    def use_case(self, name: str) -> UseCaseTemplate:
        """One use-case template; names compare case-insensitively, ignoring ``-``, ``_`` and spaces."""
        use_cases = self.use_cases()
        for use_case in use_cases:
            if fold(use_case.name) == fold(name):
                return use_case
        raise UnknownNameError(
            "use case",
            name,
            [u.name for u in use_cases],
            hint="See `servewise catalog list use-cases` for the full list.",
        )

    # -- health and imports ----------------------------------------------------------------------------------

    def health(self, today: date | None = None) -> HealthReport:
        """Stale or undated prices, incomplete specs, unknown GPUs in offers, unresolved benchmark names."""
        table = TABLES[DataKind.benchmarks]
        with self._engine.connect() as connection:
            counts = connection.execute(
                select(table.c.model, table.c.system, func.count()).group_by(table.c.model, table.c.system)
            ).all()
        names = {(model, system): int(count) for model, system, count in counts}
        return check_health(self.snapshot(), self.aliases(), names, today=today or date.today())

    def import_csv(self, kind: DataKind | str, path: str | Path) -> int:
        """Add user rows from a CSV of ``kind``; all rows or none. Returns the number of rows written.

        A user row replaces any row (packaged or user) with the same natural key and survives packaged-data
        refreshes. Errors name the file, line and column; a database error rolls the whole import back and
        becomes a one-line ``CatalogError``.
        """
        kind = _data_kind(kind)
        file = Path(path)
        try:
            content = file.read_text(encoding="utf-8-sig")
        except OSError as err:
            raise CatalogError(f"cannot read {file}: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise CatalogError(f"{file} is not UTF-8 text; save it as UTF-8 CSV") from None
        rows = parse_csv(kind, content, path=str(file))
        if not rows:
            raise CatalogError(f"{file} has a header but no rows; nothing imported")
        table = TABLES[kind]
        try:
            with write_transaction(self._engine) as connection:
                for values in rows:
                    key = natural_key(kind, values)
                    if key is not None:
                        columns = [table.c[name] for name in key_columns(kind)]
                        connection.execute(
                            delete(table).where(*(c == v for c, v in zip(columns, key, strict=True)))
                        )
                connection.execute(insert(table), [{**values, "origin": ORIGIN_USER} for values in rows])
        except (DBAPIError, SQLAlchemyError) as err:
            raise CatalogError(
                f"cannot import {file} into {self.url}: {first_line(err)}; nothing was imported (the import "
                "rolled back); fix the offending values in the file and run the import again"
            ) from None
        return len(rows)

    # -- deploy audit log ------------------------------------------------------------------------------------

    def record_deploy(self, entry: DeployAuditEntry) -> int:
        """Append one ``deploy --apply`` to the audit log (table ``deploy_audit``); returns its id."""
        return record_deploy_audit(self._engine, entry)

    def deploy_audit(self, *, limit: int = 20) -> list[DeployAuditEntry]:
        """The ``limit`` most recent applies, newest first."""
        return read_deploy_audit(self._engine, limit=limit)


def _data_kind(kind: DataKind | str) -> DataKind:
    try:
        return DataKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in DataKind)
        raise CatalogError(f"unknown catalog kind {kind!r}; valid kinds: {valid}") from None
