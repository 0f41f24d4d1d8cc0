"""The web UI: Jinja2 pages served by the API app, every asset shipped in the package (no CDN, no network).

``install_web(app)`` adds the pages — Describe ``/``, Plan ``/plan``, Compare ``/compare`` (this package's
``_pages_plan``), Deploy, Catalog, Spend (``_pages_ops``) and Watch (``_pages_watch``) — plus ``/static`` (CSS,
JS) and ``/static/plotly.min.js``, which is the plotly.js bundle inside the installed ``plotly`` wheel. Pages hold
no logic: they call ``servewise.api._services`` and render. Plans live in an in-process ``PlanStore`` (see ``_store``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import plotly
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from servewise.web._router import templates
from servewise.web._store import DEFAULT_CAPACITY, PlanStore, StoredPlan

__all__ = ["PlanStore", "StoredPlan", "install_web", "plotly_js_path", "templates"]

STATIC_DIR = Path(__file__).with_name("static")


def plotly_js_path() -> Path:
    """plotly.js as shipped inside the ``plotly`` Python package (the same file ``plotly.offline`` embeds)."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def install_web(app: FastAPI, *, plan_capacity: int = DEFAULT_CAPACITY) -> None:
    """Add the web pages and static assets to ``app``, with a fresh ``PlanStore`` of ``plan_capacity`` plans."""
    from servewise.web._pages_plan import plan_router

    app.state.plan_store = PlanStore(capacity=plan_capacity)
    plotly_path = plotly_js_path()

    async def plotly_js() -> FileResponse:
        return FileResponse(
            plotly_path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    # Registered before the /static mount, which would otherwise answer (404) for this path first.
    app.add_api_route("/static/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(plan_router)
    try:
        ops = importlib.import_module("servewise.web._pages_ops")
    except ModuleNotFoundError as err:  # W4's pages not present in this checkout: the other pages still work
        if err.name != "servewise.web._pages_ops":
            raise
    else:
        app.include_router(ops.ops_router)
    from servewise.web._pages_watch import watch_router

    app.include_router(watch_router)
