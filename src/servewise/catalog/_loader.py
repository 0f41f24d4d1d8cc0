"""CSV files → typed values → records, with no database involved.

Why two steps (``parse_csv`` gives dicts of typed cells, ``to_record`` makes the record): the database keeps
the cells exactly as the file had them (an empty ``attention_dp`` stays NULL), while the records apply the few
documented defaults the math relies on. The planner and tests can use ``load_packaged()`` without a database.

Cell rules: an empty cell is ``None`` (or ``""`` for a text column); ``as_of`` is a date when the cell is an
ISO date, otherwise ``None`` and the text moves to ``notes`` (api_prices.csv records a PyPI version there);
booleans are ``True``/``False``; whole numbers must fit a 32-bit SQL ``INTEGER`` and numbers be finite; the
value ranges of ``_rules.py`` hold for packaged and user rows alike. Every error names the file, the line, the
column and the value.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from servewise.errors import CatalogError

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
from ._rules import INT_MAX, INT_MIN, range_problems

__all__ = [
    "DataKind",
    "PackagedData",
    "apply_patch",
    "key_columns",
    "load_packaged",
    "natural_key",
    "packaged_fingerprint",
    "parse_csv",
    "read_packaged_rows",
    "to_record",
    "valid_columns",
]

Values = dict[str, Any]

_IMPORT_FORMAT = "3"
"""Bumped when parsing changes, so databases re-import the packaged rows even if the files did not change."""

_MAX_REPORTED = 10


class DataKind(StrEnum):
    """What a CSV file holds; the values are the CLI's ``KIND`` words."""

    gpus = "gpus"
    models = "models"
    offers = "offers"
    api_prices = "api-prices"
    benchmarks = "benchmarks"
    use_cases = "use-cases"
    aliases = "aliases"
    cpus = "cpus"


@dataclass(frozen=True, slots=True)
class _KindSpec:
    record: type[Any]
    packaged: tuple[str, ...]
    """Packaged files, relative to ``catalog/data``, merged in order (later files win on the natural key)."""
    key: tuple[str, ...]
    """Natural key (also: cells that must not be empty); empty for benchmarks, which repeat configurations."""
    ignored: frozenset[str] = frozenset()
    """Columns a file may carry that are derived and not stored."""
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Record-side values for empty cells in non-optional fields."""
    patches: tuple[str, ...] = ()
    """Packaged files that set columns the shared file lacks on rows it has, by natural key (``_apply_patches``)."""


_SPECS: dict[DataKind, _KindSpec] = {
    DataKind.gpus: _KindSpec(Accelerator, ("catalog/gpus.csv", "additions/gpus.csv"), ("name",)),
    DataKind.models: _KindSpec(
        ModelSpec,
        ("catalog/models.csv", "additions/models.csv"),
        ("name",),
        patches=("additions/models_patch.csv",),
    ),
    DataKind.offers: _KindSpec(
        CloudOffer,
        ("catalog/cloud_prices.csv", "additions/cloud_prices.csv"),
        ("provider", "region", "instance_type"),
        ignored=frozenset({"price_per_gpu_hour_usd"}),
    ),
    DataKind.api_prices: _KindSpec(
        ApiPrice, ("catalog/api_prices.csv", "additions/api_prices.csv"), ("provider", "model")
    ),
    DataKind.benchmarks: _KindSpec(
        BenchmarkRow,
        ("benchmarks/calibration.csv", "additions/calibration.csv"),
        (),
        # Blank in the source for engines without attention data parallelism: every such row satisfies
        # gpu_count = max(tp*pp, moe_tp*moe_ep*pp), i.e. attention_dp = 1 (checked on all 463 blank rows).
        defaults={"attention_dp": 1},
    ),
    DataKind.use_cases: _KindSpec(UseCaseTemplate, ("additions/use_cases.csv",), ("name",)),
    DataKind.aliases: _KindSpec(Alias, ("additions/aliases.csv",), ("kind", "alias")),
    DataKind.cpus: _KindSpec(
        CpuSpec, ("catalog/cpus.csv", "additions/cpus.csv"), ("provider", "instance_type")
    ),
}


def _base_type(hint: Any) -> tuple[type[Any], bool]:
    """``(int, True)`` for ``int | None``; ``(str, False)`` for ``str``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def _parse_cell(text: str, kind: type[Any]) -> Any:
    if kind is str:
        return text
    if kind is bool:
        folded = text.casefold()
        if folded in {"true", "yes", "1"}:
            return True
        if folded in {"false", "no", "0"}:
            return False
        raise ValueError(f"expected True or False, got {text!r}")
    if kind is int:
        try:
            whole = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if not number.is_integer():
                raise ValueError(f"expected a whole number, got {text!r}") from None
            whole = int(number)
        if not INT_MIN <= whole <= INT_MAX:
            raise ValueError(
                f"got {text!r}, must be between {INT_MIN} and {INT_MAX} (the database's INTEGER range)"
            )
        return whole
    if kind is float:
        try:
            real = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        if not math.isfinite(real):
            raise ValueError(f"expected a finite number, got {text!r}")
        return real
    if kind is date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected an ISO date (YYYY-MM-DD), got {text!r}") from None
    raise TypeError(f"no parser for {kind}")  # pragma: no cover - a new record field type


@functools.cache
def _columns(kind: DataKind) -> dict[str, Any]:
    """Field name → type hint of the record of ``kind`` (cached: ``get_type_hints`` is slow per row)."""
    return typing.get_type_hints(_SPECS[kind].record)


def valid_columns(kind: DataKind) -> list[str]:
    """The columns a CSV of ``kind`` may have, in record order."""
    return list(_columns(kind))


def parse_csv(kind: DataKind, text: str, *, path: str) -> list[Values]:
    """Typed cells of every row of a CSV of ``kind``; raise ``CatalogError`` listing the first problems.

    Nothing is returned unless every row is valid, so a caller can write all rows or none.
    """
    spec = _SPECS[kind]
    hints = _columns(kind)
    fields = {f.name: f for f in dataclasses.fields(spec.record)}
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    parsers = {name: _base_type(hint) for name, hint in hints.items() if name in header}
    problems: list[str] = []
    unknown = [c for c in header if c not in hints and c not in spec.ignored]
    if unknown:
        problems.append(f"{path}:1: unknown column(s) {', '.join(unknown)}; valid: {', '.join(hints)}")
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in header]
    if required:
        problems.append(f"{path}:1: missing column(s) {', '.join(required)}")
    if problems:
        raise CatalogError("; ".join(problems))
    rows: list[Values] = []
    for row in reader:
        line = reader.line_num
        values: Values = {}
        for name, (base, optional) in parsers.items():
            cell = (row.get(name) or "").strip()
            if name == "as_of" and cell:
                try:
                    values[name] = date.fromisoformat(cell)
                except ValueError:
                    if "notes" not in hints:
                        problems.append(f"{path}:{line}: column as_of: expected an ISO date, got {cell!r}")
                    values[name] = None
                    values["_as_of_text"] = cell
                continue
            if not cell:
                if name in spec.key or name == "source":
                    problems.append(f"{path}:{line}: column {name}: a value is required")
                elif base is str:
                    values[name] = None if optional else ""
                elif optional or name in spec.defaults:
                    values[name] = None
                else:
                    problems.append(f"{path}:{line}: column {name}: a value is required")
                continue
            try:
                values[name] = _parse_cell(cell, base)
            except ValueError as err:
                problems.append(f"{path}:{line}: column {name}: {err}")
        if kind is DataKind.aliases and values.get("kind") not in (None, "gpu", "model"):
            problems.append(f"{path}:{line}: column kind: expected gpu or model, got {values['kind']!r}")
        problems.extend(f"{path}:{line}: {problem}" for problem in range_problems(spec.record, values, row))
        as_of_text = values.pop("_as_of_text", None)
        if "notes" in hints:  # on every row, so all rows have the same keys (one executemany)
            notes = values.get("notes") or ""
            if as_of_text:
                notes = f"{notes}; as_of: {as_of_text}" if notes else f"as_of: {as_of_text}"
            values["notes"] = notes
        rows.append(values)
    if not problems:
        duplicates = _duplicate_keys(kind, rows)
        problems.extend(f"{path}: duplicate {'/'.join(spec.key)} {key!r}" for key in duplicates)
    if problems:
        more = f" (and {len(problems) - _MAX_REPORTED} more)" if len(problems) > _MAX_REPORTED else ""
        raise CatalogError("; ".join(problems[:_MAX_REPORTED]) + more)
    return rows


def key_columns(kind: DataKind) -> tuple[str, ...]:
    """Columns of the natural key of ``kind`` (empty for benchmarks)."""
    return _SPECS[kind].key


def natural_key(kind: DataKind, values: Mapping[Any, Any]) -> tuple[Any, ...] | None:
    """The row's natural key, ``None`` for kinds without one (benchmarks)."""
    key = _SPECS[kind].key
    return tuple(values.get(k) for k in key) if key else None


def _duplicate_keys(kind: DataKind, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    seen: set[tuple[Any, ...]] = set()
    duplicates = []
    for values in rows:
        key = natural_key(kind, values)
        if key is None:
            return []
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return duplicates


def to_record(kind: DataKind, values: Mapping[Any, Any]) -> Any:
    """The record of ``kind`` for typed cells (a parsed CSV row or a database row's columns)."""
    spec = _SPECS[kind]
    names = _columns(kind)
    arguments = {name: values[name] for name in names if name in values}
    for name, default in spec.defaults.items():
        if arguments.get(name) is None:
            arguments[name] = default
    return spec.record(**arguments)


def _data_root() -> Traversable:
    return resources.files("servewise.catalog").joinpath("data")


def _packaged_files() -> list[tuple[str, Traversable]]:
    root = _data_root()
    files = []
    for spec in _SPECS.values():
        for rel in (*spec.packaged, *spec.patches):
            entry = root.joinpath(*rel.split("/"))
            if entry.is_file():
                files.append((rel, entry))
    return files


def packaged_fingerprint() -> str:
    """sha256 over the packaged CSV files (names and bytes) and the parsing format version."""
    digest = hashlib.sha256(f"servewise-catalog-format:{_IMPORT_FORMAT}\n".encode())
    for rel, entry in sorted(_packaged_files(), key=lambda item: item[0]):
        digest.update(f"{rel}\n".encode())
        digest.update(entry.read_bytes())
    return digest.hexdigest()


def read_packaged_rows(kind: DataKind) -> list[Values]:
    """Typed cells of ``kind`` from the packaged files; additions replace shared rows with the same key."""
    merged: dict[tuple[Any, ...], Values] = {}
    unkeyed: list[Values] = []
    root = _data_root()
    for rel in _SPECS[kind].packaged:
        entry = root.joinpath(*rel.split("/"))
        if not entry.is_file():
            continue
        for values in parse_csv(kind, entry.read_text(encoding="utf-8"), path=f"catalog/data/{rel}"):
            key = natural_key(kind, values)
            if key is None:
                unkeyed.append(values)
            else:
                merged[key] = values
    _apply_patches(kind, merged)
    return [*merged.values(), *unkeyed]


def _apply_patches(kind: DataKind, merged: dict[tuple[Any, ...], Values]) -> None:
    """Apply ``kind``'s packaged patch files to the merged rows (``apply_patch``)."""
    root = _data_root()
    patched: set[str] = set()
    for rel in _SPECS[kind].patches:
        entry = root.joinpath(*rel.split("/"))
        if entry.is_file():
            text = entry.read_text(encoding="utf-8")
            patched |= apply_patch(kind, merged, text, path=f"catalog/data/{rel}")
    for row in merged.values():  # the same keys on every row (one executemany)
        for name in patched:
            row.setdefault(name, None)


def apply_patch(kind: DataKind, merged: dict[tuple[Any, ...], Values], text: str, *, path: str) -> set[str]:
    """Set a patch file's columns on the rows of ``merged`` it names; return the columns it set.

    Why patches: the shared ``models.csv`` is a copy nobody edits, and it has no columns for some facts the math
    needs (sliding-window layers). Repeating a whole shared row in ``additions/`` to add two cells would freeze
    its other cells against later refreshes; a patch sets only its columns and cites its own source in ``notes``.
    An empty patch cell leaves the row's value alone. A patch naming a row that does not exist, or leaving a row
    outside the range rules, raises ``CatalogError`` and changes no row.
    """
    spec = _SPECS[kind]
    problems: list[str] = []
    updated: dict[tuple[Any, ...], Values] = {}
    columns: set[str] = set()
    for line, key, cells, source in _parse_patch(kind, text, path=path):
        columns.update(cells)
        row = updated.get(key, merged.get(key))
        if row is None:
            problems.append(f"{path}:{line}: no {kind} row {'/'.join(map(str, key))!r} to patch")
            continue
        note = f"{', '.join(cells)} from {source}"
        row = {**row, **cells, "notes": f"{row['notes']}; {note}" if row.get("notes") else note}
        text_cells = {name: "" if value is None else str(value) for name, value in row.items()}
        problems.extend(
            f"{path}:{line}: {problem}" for problem in range_problems(spec.record, row, text_cells)
        )
        updated[key] = row
    if problems:
        more = f" (and {len(problems) - _MAX_REPORTED} more)" if len(problems) > _MAX_REPORTED else ""
        raise CatalogError("; ".join(problems[:_MAX_REPORTED]) + more)
    merged.update(updated)
    return columns


def _parse_patch(
    kind: DataKind, text: str, *, path: str
) -> Iterable[tuple[int, tuple[Any, ...], Values, str]]:
    """(line, natural key, typed non-empty cells, source) of each row of a patch file."""
    spec = _SPECS[kind]
    hints = _columns(kind)
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    settable = [c for c in header if c not in (*spec.key, "source")]
    header_problems = []
    if bad := [c for c in settable if c not in hints or c in ("notes", "as_of")]:
        header_problems.append(
            f"unknown column(s) {', '.join(bad)} (a patch sets record columns other than notes)"
        )
    if missing := [c for c in (*spec.key, "source") if c not in header]:
        header_problems.append(f"missing column(s) {', '.join(missing)}")
    if header_problems:
        raise CatalogError(f"{path}:1: " + "; ".join(header_problems))
    parsers = {name: _base_type(hints[name])[0] for name in settable}
    rows = []
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        key = tuple((row.get(k) or "").strip() for k in spec.key)
        source = (row.get("source") or "").strip()
        if not all(key) or not source:
            problems.append(f"{path}:{line}: the key columns and source need a value")
            continue
        cells: Values = {}
        for name, base in parsers.items():
            cell = (row.get(name) or "").strip()
            if cell:
                try:
                    cells[name] = _parse_cell(cell, base)
                except ValueError as err:
                    problems.append(f"{path}:{line}: column {name}: {err}")
        rows.append((line, key, cells, source))
    if problems:
        raise CatalogError("; ".join(problems[:_MAX_REPORTED]))
    return rows


@dataclass(frozen=True, slots=True)
class PackagedData:
    """Every packaged row as records: what a fresh database holds, without the database."""

    accelerators: tuple[Accelerator, ...]
    models: tuple[ModelSpec, ...]
    offers: tuple[CloudOffer, ...]
    api_prices: tuple[ApiPrice, ...]
    benchmarks: tuple[BenchmarkRow, ...]
    use_cases: tuple[UseCaseTemplate, ...]
    aliases: tuple[Alias, ...]
    cpus: tuple[CpuSpec, ...] = ()

    def snapshot(self) -> CatalogSnapshot:
        return CatalogSnapshot(
            accelerators=self.accelerators,
            models=self.models,
            offers=self.offers,
            api_prices=self.api_prices,
            use_cases=self.use_cases,
            cpus=self.cpus,
        )


def _records(kind: DataKind) -> tuple[Any, ...]:
    return tuple(to_record(kind, values) for values in read_packaged_rows(kind))


def load_packaged(*, benchmarks: bool = True) -> PackagedData:
    """All packaged data (shared copy + additions) as records; ``benchmarks=False`` skips the largest file."""
    return PackagedData(
        accelerators=_records(DataKind.gpus),
        models=_records(DataKind.models),
        offers=_records(DataKind.offers),
        api_prices=_records(DataKind.api_prices),
        benchmarks=_records(DataKind.benchmarks) if benchmarks else (),
        use_cases=_records(DataKind.use_cases),
        aliases=_records(DataKind.aliases),
        cpus=_records(DataKind.cpus),
    )
