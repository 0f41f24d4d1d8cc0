"""Dollar amounts in refusal messages: a request's worst case is often a fraction of a cent."""

from __future__ import annotations

import pytest

from servewise.gateway._budgets import _fmt_usd


@pytest.mark.parametrize(
    ("micro_usd", "shown"),
    [
        (0, "$0.00"),
        (30_000, "$0.03"),
        (21_000, "$0.021"),
        (400, "$0.0004"),
        (1_000_000, "$1.00"),
        (12_345_678_900, "$12,345.68"),
    ],
)
def test_sub_cent_amounts_keep_their_digits(micro_usd: int, shown: str) -> None:
    assert _fmt_usd(micro_usd) == shown
