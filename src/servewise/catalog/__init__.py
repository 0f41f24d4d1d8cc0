"""The catalog: models, accelerators, cloud offers, API prices, benchmarks, use cases, each with its source.

Open it with ``open_catalog()`` (SQLite under the user data dir by default, PostgreSQL via
``SERVEWISE_DB_URL``); pure code takes a ``CatalogSnapshot`` instead, or ``load_packaged()`` when no database
is wanted at all.
"""

from __future__ import annotations

from ._aliases import fold, gpu_family, model_name_forms, resolve_gpu, resolve_model
from ._audit import DeployAuditEntry
from ._db import HEAD_REVISION, mask_url
from ._health import STALE_AFTER_DAYS, Finding, HealthReport, check_health
from ._listing import catalog_rows, record_dict
from ._loader import DataKind, PackagedData, load_packaged, packaged_fingerprint, parse_csv, valid_columns
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
from ._repository import Catalog, open_catalog

__all__ = [
    "HEAD_REVISION",
    "STALE_AFTER_DAYS",
    "Accelerator",
    "Alias",
    "ApiPrice",
    "BenchmarkRow",
    "Catalog",
    "CatalogSnapshot",
    "CloudOffer",
    "CpuSpec",
    "DataKind",
    "DeployAuditEntry",
    "Finding",
    "HealthReport",
    "ModelSpec",
    "PackagedData",
    "UseCaseTemplate",
    "catalog_rows",
    "check_health",
    "fold",
    "gpu_family",
    "load_packaged",
    "mask_url",
    "model_name_forms",
    "open_catalog",
    "packaged_fingerprint",
    "parse_csv",
    "record_dict",
    "resolve_gpu",
    "resolve_model",
    "valid_columns",
]
