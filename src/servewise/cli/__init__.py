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
    """Console-script entry point: run the app, turning Servewise errors into one line and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ServewiseError as err:
        stderr_console().print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(2)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        stderr_console().print("aborted")
        sys.exit(1)
    except Exception as err:  # click's usage errors arrive here with standalone_mode=False
        from click.exceptions import ClickException

        if isinstance(err, ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise
