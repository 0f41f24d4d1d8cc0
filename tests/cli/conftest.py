"""Shared by the ``predict``, ``accuracy`` and ``calibrate`` tests: one catalog database for the whole session (it
only reads models, GPUs and aliases, so sharing it is safe and saves filling one per test), a small CSV of measured
rows, and a way to run the CLI in-process."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import pytest

from tests.cli_runner import CliResult, run_cli

GROUP_A = ("MiniMaxAI/MiniMax-M2.5", "b200_sxm", "vllm")
GROUP_B = ("MiniMaxAI/MiniMax-M2.5", "b300_sxm", "vllm")
ROWS_PER_GROUP = 10
"""At least ``perf._calibrate.MIN_ROWS`` (8), so every level of a fit on one group is fitted, not inherited."""


@pytest.fixture(scope="session")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"


@pytest.fixture
def cli(
    catalog_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliResult]:
    """``cli("predict", "--model", …)`` → (exit code, stdout, stderr), through ``main`` as the console script."""
    monkeypatch.setenv("SERVEWISE_DB_URL", catalog_url)
    monkeypatch.setenv("COLUMNS", "250")

    def run(*args: str) -> CliResult:
        return run_cli(capsys, *args)

    return run


def packaged_rows() -> tuple[list[str], list[dict[str, str]]]:
    entry = resources.files("servewise.catalog").joinpath("data", "benchmarks", "calibration.csv")
    with entry.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def group_rows(group: tuple[str, str, str], n: int = ROWS_PER_GROUP) -> list[dict[str, str]]:
    _, rows = packaged_rows()
    found = [r for r in rows if (r["model"], r["system"], r["backend"]) == group]
    assert len(found) >= n, f"the packaged data no longer has {n} rows of {group}"
    return found[:n]


def unresolvable_rows() -> list[dict[str, str]]:
    """Two rows the simulation cannot take: an unknown model and an unknown system."""
    base = group_rows(GROUP_A, 1)[0]
    return [
        base | {"model": "acme/NoSuchModel-7B", "source_row_id": "skip-unknown-model"},
        base | {"system": "tpu_v9_pod", "source_row_id": "skip-unknown-system"},
    ]


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    header, _ = packaged_rows()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def subset_csv(tmp_path: Path) -> Path:
    """20 measured rows of two (model, system) groups and 2 rows that must be skipped."""
    return write_csv(
        tmp_path / "subset.csv", [*group_rows(GROUP_A), *group_rows(GROUP_B), *unresolvable_rows()]
    )
