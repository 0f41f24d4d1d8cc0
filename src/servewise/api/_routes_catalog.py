"""``/api/v1/catalog``: list any kind with filters, show one GPU, model or use case, the data-health report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query

from servewise.errors import UsageError

from . import _services
from ._deps import DbUrl
from ._errors import ERROR_RESPONSES
from ._models import CatalogHealthResponse, CatalogItemResponse, CatalogListResponse

__all__ = ["router"]

router = APIRouter(prefix="/catalog", tags=["catalog"], responses=ERROR_RESPONSES)


class Kind(StrEnum):
    """What ``GET /catalog/{kind}`` lists (``servewise.catalog.DataKind``)."""

    gpus = "gpus"
    models = "models"
    offers = "offers"
    api_prices = "api-prices"
    benchmarks = "benchmarks"
    use_cases = "use-cases"
    aliases = "aliases"
    cpus = "cpus"


_NAME = Path(min_length=1, max_length=200, description="name, alias or Hugging Face id")


@router.get("/health", summary="Catalog data health", response_model=CatalogHealthResponse)
def health(db_url: DbUrl) -> CatalogHealthResponse:
    """Stale or undated prices, incomplete specs, offers for unknown GPUs, unresolved benchmark names."""
    return CatalogHealthResponse.model_validate(_services.catalog_health(db_url))


@router.get("/gpus/{name}", summary="One GPU with its offers", response_model=CatalogItemResponse)
def show_gpu(name: Annotated[str, _NAME], db_url: DbUrl) -> CatalogItemResponse:
    """Every field of one GPU and the cloud offers with it; 404 with suggestions for an unknown name."""
    return CatalogItemResponse.model_validate(_services.catalog_item("gpu", name, db_url=db_url))


@router.get("/models/{name:path}", summary="One model", response_model=CatalogItemResponse)
def show_model(name: Annotated[str, _NAME], db_url: DbUrl) -> CatalogItemResponse:
    """Every field of one model and how many measured benchmark rows it has."""
    return CatalogItemResponse.model_validate(_services.catalog_item("model", name, db_url=db_url))


@router.get("/use-cases/{name}", summary="One use-case template", response_model=CatalogItemResponse)
def show_use_case(name: Annotated[str, _NAME], db_url: DbUrl) -> CatalogItemResponse:
    """Lengths, SLO targets and quality floor of one use-case template."""
    return CatalogItemResponse.model_validate(_services.catalog_item("use-case", name, db_url=db_url))


@router.get("/{kind}", summary="List catalog rows", response_model=CatalogListResponse)
def list_rows(
    kind: Kind,
    db_url: DbUrl,
    filter: Annotated[  # the query parameter's name, as the CLI's --filter
        list[str] | None,
        Query(
            max_length=20,
            description="key=value, case-insensitive substring match on a column (repeatable)",
            examples=["vendor=nvidia"],
        ),
    ] = None,
    limit: Annotated[
        int | None, Query(ge=0, le=100000, description="at most N rows (0 or none: all)")
    ] = None,
) -> CatalogListResponse:
    """Rows of one kind (gpus, models, offers, api-prices, benchmarks, use-cases, aliases, cpus) with filters."""
    filters: dict[str, str] = {}
    for item in filter or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"filter expects key=value, got {item!r}; e.g. filter=vendor=nvidia")
        filters[key.strip()] = value
    listing = _services.catalog_listing(str(kind.value), filters=filters, limit=limit, db_url=db_url)
    return CatalogListResponse.model_validate(listing)
