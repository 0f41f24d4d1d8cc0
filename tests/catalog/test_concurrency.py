"""Several processes opening one catalog at once: first use and a packaged-data refresh.

Real processes on real databases (a SQLite file, a PostgreSQL schema): each child waits for a start signal so
they all migrate and import at the same moment, as parallel `servewise catalog list gpus` runs would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text, update

from servewise.catalog import DataKind, load_packaged, open_catalog
from servewise.catalog._db import FINGERPRINT_KEY, TABLES
from servewise.catalog._schema import Base

PROCESSES = 8

CHILD = """
import pathlib, sys, time
from servewise.catalog import open_catalog
url, go, ready = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
with open_catalog(url) as catalog:
    print(len(catalog.snapshot().accelerators))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


def _open_all_at_once(url: str, folder: Path) -> None:
    folder.mkdir()
    go = folder / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(go), str(folder / f"ready-{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(folder.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        results = [(child.wait(timeout=120), *child.communicate()) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    failures = [f"exit {rc}: {err.strip().splitlines()[-1:]}" for rc, _, err in results if rc != 0]
    assert not failures, failures
    expected = str(len(load_packaged(benchmarks=False).accelerators))
    assert [out.strip() for _, out, _ in results] == [expected] * PROCESSES


def _assert_each_row_once(url: str) -> None:
    packaged = load_packaged()
    expected = {
        DataKind.gpus: len(packaged.accelerators),
        DataKind.models: len(packaged.models),
        DataKind.offers: len(packaged.offers),
        DataKind.api_prices: len(packaged.api_prices),
        DataKind.benchmarks: len(packaged.benchmarks),
        DataKind.use_cases: len(packaged.use_cases),
        DataKind.aliases: len(packaged.aliases),
    }
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            counts = {
                kind: connection.execute(select(func.count()).select_from(TABLES[kind])).scalar_one()
                for kind in expected
            }
            meta = Base.metadata.tables["catalog_meta"]
            fingerprints = connection.execute(select(func.count()).select_from(meta)).scalar_one()
            versions = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert counts == expected
    assert (fingerprints, versions) == (1, 1)


def test_parallel_first_use(db_url: str, tmp_path: Path) -> None:
    _open_all_at_once(db_url, tmp_path / "first")
    _assert_each_row_once(db_url)


def test_parallel_refresh_after_a_fingerprint_change(db_url: str, tmp_path: Path) -> None:
    open_catalog(db_url).close()
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            meta = Base.metadata.tables["catalog_meta"]
            connection.execute(update(meta).where(meta.c.key == FINGERPRINT_KEY).values(value="stale"))
    finally:
        engine.dispose()
    _open_all_at_once(db_url, tmp_path / "refresh")
    _assert_each_row_once(db_url)
