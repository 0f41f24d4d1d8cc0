"""``servewise serve``: the REST API (``/api/v1``) and the web UI on one uvicorn server.

Why 127.0.0.1 by default: the API has no authentication of its own (it is read-only apart from computing plans),
so exposing it on a network is an explicit choice (``--host 0.0.0.0``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from servewise.errors import UsageError

__all__ = ["serve_command"]


def serve_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")] = 8000,
    db_url: Annotated[
        str | None,
        typer.Option("--db-url", help="catalog database, SQLite or PostgreSQL (default: SERVEWISE_DB_URL)"),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug")
    ] = "info",
) -> None:
    """Serve the web app and the REST API (OpenAPI docs at /docs) until Ctrl-C."""
    import uvicorn

    from servewise.api import create_app
    from servewise.catalog import open_catalog

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise UsageError(f"--log-level {log_level!r}: use critical, error, warning, info or debug")
    with open_catalog(db_url):  # fail now, in one line, if the catalog cannot be opened or migrated
        pass
    app = create_app(db_url=db_url)
    typer.echo(f"Servewise on http://{host}:{port}  (API /api/v1, docs /docs; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)  # a port in use: uvicorn logs it and exits 1
