"""``create_app``: the REST API under ``/api/v1`` and the web UI, in one FastAPI app.

Why a factory and no module-level app: the catalog URL is a parameter (tests give each app its own database) and
nothing is opened at import time; the catalog is opened per request, by the service functions.
"""

from __future__ import annotations

from importlib import metadata

from fastapi import FastAPI

from ._errors import install_error_handlers
from ._routes_catalog import router as catalog_router
from ._routes_ops import router as ops_router
from ._routes_plan import router as plan_router
from ._routes_watch import router as watch_router

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"

_DESCRIPTION = """Plan and control the cost of serving LLMs: describe a workload (in words or as an object), get
ranked, costed options, compare them, price them (TCO), render a deployment.

Errors always have the body `{"error": {"code", "message", "field"}}`: 400 bad input, 404 unknown name (with
`suggestions`), 422 schema validation (the field path), 503 catalog unavailable."""


def _version() -> str:
    try:
        return metadata.version("servewise")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0+unknown"


def create_app(*, db_url: str | None = None, web: bool = True) -> FastAPI:
    """The app: ``/api/v1`` (OpenAPI at ``/openapi.json``, docs at ``/docs``) and, with ``web``, the pages.

    ``db_url`` is the catalog (and gateway) database; None means ``SERVEWISE_DB_URL``, else the packaged SQLite
    catalog under the user data folder."""
    app = FastAPI(
        title="Servewise API",
        version=_version(),
        description=_DESCRIPTION,
        openapi_tags=[
            {"name": "catalog", "description": "GPUs, models, prices and use cases, each with its source"},
            {"name": "planning", "description": "intent, plan, compare, predict, TCO, eval cost"},
            {"name": "deploy", "description": "render a plan option as a validated deploy bundle"},
            {"name": "gateway", "description": "read-only views of the gateway ledger and budgets"},
            {
                "name": "watch",
                "description": "a running deployment against its plan: SLOs, gates, efficiency",
            },
        ],
    )
    app.state.db_url = db_url
    install_error_handlers(app)
    for router in (catalog_router, plan_router, ops_router, watch_router):
        app.include_router(router, prefix=API_PREFIX)
    if web:
        from servewise.web import install_web

        install_web(app)
    return app
