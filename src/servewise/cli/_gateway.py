"""``servewise gateway --config gateway.yaml`` (serve) and its admin subcommands ``keys``, ``budgets``, ``spend``.

Why a group whose default command is ``serve``: ``gateway --config X`` must serve while ``gateway keys create``
is a subcommand; as in ``servewise bench``, the group reads the first word — a known subcommand picks it, anything
else (an option such as ``--config``) goes to ``serve``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ._gateway_admin import budgets_app, keys_app, spend_command
from ._groups import default_command_app

__all__ = ["gateway_app"]


gateway_app = default_command_app(
    "gateway",
    "serve",
    "Budget-aware OpenAI-compatible gateway: `servewise gateway --config gateway.yaml` serves it; "
    "`keys`, `budgets` and `spend` manage tenants and report spend.",
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="gateway YAML (see docs/gateway.md)")]


def gateway_serve_command(
    config: ConfigOption,
    host: Annotated[
        str | None, typer.Option("--host", help="listen address (default: config listen.host)")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="listen port (default: config listen.port)")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the gateway until interrupted (Ctrl-C flushes the ledger before exiting)."""
    from servewise.gateway import load_gateway_config, serve_gateway

    loaded = load_gateway_config(config)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.lower() != "debug":  # httpx logs every upstream call and every queue-depth poll at INFO
        logging.getLogger("httpx").setLevel(logging.WARNING)
    serve_gateway(
        loaded,
        host=host or loaded.listen.host,
        port=loaded.listen.port if port is None else port,
        log_level=log_level,
    )


gateway_app.command("serve")(gateway_serve_command)
gateway_app.add_typer(keys_app, name="keys")
gateway_app.add_typer(budgets_app, name="budgets")
gateway_app.command("spend")(spend_command)
