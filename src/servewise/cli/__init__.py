"""The ``servewise`` command line: Typer + Rich over the same functions the API calls; no logic of its own.

Every command takes ``--format table|json|csv|markdown``. Bad input never shows a traceback: a ``ServewiseError``
becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from servewise.errors import ServewiseError

from ._accuracy import accuracy_command
from ._alerts import alerts_command
from ._autoscale import autoscale_command
from ._bench import bench_app
from ._calibrate import calibrate_command
from ._catalog import catalog_app
from ._compare import compare_command
from ._deploy import deploy_command
from ._evalcost import evalcost_command
from ._gateway import gateway_app
from ._intent import intent_command
from ._mixed import mixed_command
from ._montecarlo import montecarlo_command
from ._output import fail
from ._plan import plan_command
from ._predict import predict_command
from ._serve import serve_command
from ._simulate import simulate_command
from ._tco import tco_command
from ._watch import watch_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="servewise",
    help="Plan and control the cost of serving LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(bench_app, name="bench")
app.add_typer(gateway_app, name="gateway")
app.command("plan")(plan_command)
app.command("predict")(predict_command)
app.command("simulate")(simulate_command)
app.command("accuracy")(accuracy_command)
app.command("calibrate")(calibrate_command)
app.command("tco")(tco_command)
app.command("evalcost")(evalcost_command)
app.command("alerts")(alerts_command)
app.command("mixed")(mixed_command)
app.command("autoscale")(autoscale_command)
app.command("compare")(compare_command)
app.command("montecarlo")(montecarlo_command)
app.command("deploy")(deploy_command)
app.command("serve")(serve_command)
app.command("intent")(intent_command)
app.command("watch")(watch_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Bad input never shows a traceback: a usage error (unknown flag, a value of the
    wrong type) or a ``ServewiseError`` becomes one line on stderr and exit code 2."""
    try:
        result = app(args=argv, prog_name="servewise", standalone_mode=False)
    except ServewiseError as err:
        fail(str(err), 2)
    except typer.Abort:
        fail("aborted", 130)
    except (
        typer.TyperException
    ) as err:  # Typer's usage errors: no such option, invalid value, missing argument
        code = int(getattr(err, "exit_code", 2))
        message = err.format_message()
        if not message:  # a command group called bare: its help is already printed
            sys.exit(code)
        context = getattr(err, "ctx", None)  # click's: the (sub)command the bad input was given to
        where = getattr(context, "command_path", None) or "servewise"
        fail(f"{message} (see `{where} --help`)", code)
    else:
        if isinstance(result, int) and result:  # typer.Exit(code) returns its code without standalone mode
            sys.exit(result)
