"""Render rows as a Rich table, JSON, CSV or Markdown: one function every command calls.

Why one renderer: ``--format`` must mean the same thing in every command, and JSON must be the documented payload
(not a dump of the table), so callers pass both the display rows and the JSON document.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from servewise.errors import UsageError

__all__ = [
    "Column",
    "OutputFormat",
    "check_writable",
    "fail",
    "progress_bar",
    "render",
    "stderr_console",
    "stderr_progress",
    "stdout_console",
    "write_atomically",
]


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


def stderr_progress() -> Progress:
    """Rich progress bars on stderr (description, bar, done/total, elapsed), for one or several tasks."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=False,
    )


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr for ``total`` units of work; yields ``advance(n)``.

    On stderr so that stdout stays the document (``--format json | jq`` works while the bar runs)."""
    with stderr_progress() as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def check_writable(path: Path, example: str) -> Path:
    """The resolved target of an output path, or a one-line ``UsageError`` when it cannot be a file we write: checked
    before long work starts, so a typo in the folder does not cost the run."""
    target = path.resolve()
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name such as {path}/{example}")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {target.parent} does not exist")
    return target


def write_atomically(path: Path, data: str | bytes, *, flag: str = "-o", example: str = "out.json") -> None:
    """Write the whole file or nothing: a temporary file in the same folder, then a rename. Errors are one line
    naming ``flag``."""
    target = check_writable(path, example)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}; choose another {flag} path") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; what we write is a document to share
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {err.strerror}; choose another {flag} path") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
