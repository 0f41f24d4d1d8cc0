"""The public surface of ``servewise.bench``: sorted as ruff sorts it, every name real."""

from __future__ import annotations

import servewise.bench as bench_pkg


def test_exports_are_sorted_and_exist() -> None:
    def ruff_order(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert bench_pkg.__all__ == sorted(bench_pkg.__all__, key=ruff_order)
    assert all(hasattr(bench_pkg, name) for name in bench_pkg.__all__)
