"""Command groups whose bare form runs one default subcommand: ``servewise bench URL`` is ``bench run URL`` and
``servewise gateway --config X`` is ``gateway serve --config X``, while ``bench import`` / ``gateway keys`` and
``--help`` keep working. Typer has no such option, so the group rewrites the arguments before click parses them."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["default_command_app"]


def default_command_app(name: str, default: str, help_text: str) -> typer.Typer:
    """A Typer group named ``name`` that runs ``default`` for any first argument that is not a subcommand."""

    class _DefaultFirst(TyperGroup):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's vendored click.Context
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args = [default, *args]
            return super().parse_args(ctx, args)

    return typer.Typer(
        name=name,
        cls=_DefaultFirst,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
