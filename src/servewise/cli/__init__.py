"""The ``servewise`` command line: Typer + Rich over the same functions the API calls; no logic of its own.

Every command takes ``--format table|json|csv|markdown``. Bad input never shows a traceback: a ``ServewiseError``
becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from servewise.errors import ServewiseError

from ._catalog import catalog_app
from ._output import stderr_console
from ._plan import plan_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="servewise",
    help="Plan and control the cost of serving LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog_app, name="catalog")
app.command("plan")(plan_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: Typer reports its own usage errors (exit 2); a ``ServewiseError`` becomes one
    line on stderr and exit code 2, never a traceback."""
    try:
        app(args=argv, prog_name="servewise")
    except ServewiseError as err:
        stderr_console().print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(2)
