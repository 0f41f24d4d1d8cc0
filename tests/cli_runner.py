"""Running the CLI in-process as the console script does, for tests: one helper instead of a copy per module."""

from __future__ import annotations

import pytest

from servewise.cli import main

CliResult = tuple[int, str, str]
"""(exit code, stdout, stderr)."""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``servewise ARGS…`` through ``main``: its exit code and what it printed (earlier output is dropped)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
