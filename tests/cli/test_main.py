"""``main``: the console-script wrapper's handling of usage errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import CliResult


@pytest.mark.parametrize("group", ["catalog", "bench"])
def test_a_bare_command_group_prints_its_help_and_no_empty_error_line(
    cli: Callable[..., CliResult], group: str
) -> None:
    code, out, err = cli(group)
    assert code == 2
    assert "Usage" in out + err
    assert "error:" not in err
