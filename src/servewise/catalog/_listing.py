"""Catalog rows as plain dicts, filtered by case-insensitive substring per column: what ``catalog list`` prints and
``GET /api/v1/catalog/{kind}`` returns.

Why a library function: the CLI, the REST API and the web Catalog page list the same rows with the same filter
rules, so a filter that works in one works in the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from servewise.errors import UsageError

from ._loader import DataKind, valid_columns
from ._repository import Catalog

__all__ = ["catalog_rows", "record_dict"]


def record_dict(record: Any) -> dict[str, Any]:
    """A catalog record (frozen dataclass) as a JSON-ready dict; dates become ISO strings."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in dataclasses.asdict(record).items()}


def _read(catalog: Catalog, kind: DataKind) -> list[Any]:
    readers: dict[DataKind, Callable[[], Sequence[Any]]] = {
        DataKind.gpus: catalog.accelerators,
        DataKind.models: catalog.models,
        DataKind.offers: catalog.offers,
        DataKind.api_prices: catalog.api_prices,
        DataKind.benchmarks: catalog.benchmarks,
        DataKind.use_cases: catalog.use_cases,
        DataKind.aliases: catalog.aliases,
        DataKind.cpus: catalog.cpus,
    }
    return list(readers[kind]())


def catalog_rows(
    catalog: Catalog, kind: DataKind, filters: Iterable[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """Every row of ``kind`` whose column ``key`` contains ``value`` (case-insensitive) for each (key, value).

    An unknown filter key is a ``UsageError`` listing the valid keys."""
    valid = valid_columns(kind)
    wanted: list[tuple[str, str]] = []
    for key, value in filters:
        if key not in valid:
            raise UsageError(f"unknown filter key {key!r}; valid keys: {', '.join(valid)}")
        wanted.append((key, value.strip().casefold()))
    rows = [record_dict(record) for record in _read(catalog, kind)]
    return [
        row
        for row in rows
        if all(
            value in ("" if row.get(key) is None else str(row.get(key))).casefold() for key, value in wanted
        )
    ]
