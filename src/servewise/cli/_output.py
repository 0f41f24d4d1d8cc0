"""Render rows as a Rich table, JSON, CSV or Markdown: one function every command calls.

Why one renderer: ``--format`` must mean the same thing in every command, and JSON must be the documented payload
(not a dump of the table), so callers pass both the display rows and the JSON document.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["Column", "OutputFormat", "fail", "render", "stderr_console", "stdout_console"]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str
    numeric: bool = False


def stdout_console() -> Console:
    """Terminal width on a terminal; 200 columns when piped, so files and CI logs keep whole tables."""
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """The one way a command reports bad input: ``error: …`` on one line of stderr, then exit ``code``.

    ``SystemExit`` rather than ``typer.Exit``: without standalone mode Typer returns an Exit's code instead of
    raising it, which would turn a failure into exit status 0."""
    stderr_console().print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise SystemExit(code)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[Column],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    json_document: object | None = None,
    marked_row: int | None = None,
    caption: str | None = None,
) -> None:
    """Print ``rows`` in ``fmt``. ``json_document`` replaces the rows for JSON; ``marked_row`` is highlighted."""
    if fmt is OutputFormat.json:
        payload = json_document if json_document is not None else [dict(r) for r in rows]
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in columns])
        sys.stdout.write(buffer.getvalue())
        return
    if fmt is OutputFormat.markdown:
        lines = []
        if title:
            lines.append(f"**{title}**\n")
        lines.append("| " + " | ".join(c.header for c in columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|")
        for row in rows:
            cells = [_cell(row.get(c.key)).replace("|", "\\|") for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        if caption:
            lines.append(f"\n{caption}")
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=title, caption=caption, header_style="bold")
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for index, row in enumerate(rows):
        style = "bold green" if index == marked_row else None
        table.add_row(*(_cell(row.get(c.key)) for c in columns), style=style)
    stdout_console().print(table)
