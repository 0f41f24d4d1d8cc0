"""Shared fixtures: real databases for tests that need one (SQLite always, PostgreSQL when it answers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_TEST_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL in a fresh temporary folder (the folder for the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'db' / 'catalog.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards.

    The server is ``SERVEWISE_TEST_PG_URL`` (default: local ``test`` database); the test is skipped, with the
    reason, only when that server does not answer.
    """
    base = os.environ.get("SERVEWISE_TEST_PG_URL", DEFAULT_TEST_PG_URL)
    schema = f"sw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(base, connect_args={"connect_timeout": 3})
    except ImportError as err:  # pragma: no cover - psycopg is a test dependency
        pytest.skip(f"PostgreSQL driver missing: {err}")
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as err:
        admin.dispose()
        masked = make_url(base).render_as_string(hide_password=True)
        pytest.skip(
            f"PostgreSQL at {masked} does not answer ({type(err).__name__}); set SERVEWISE_TEST_PG_URL"
        )
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _never_the_users_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may read or write the real catalog under the user data dir: default every test to a temp file."""
    if "SERVEWISE_DB_URL" not in os.environ:
        monkeypatch.setenv("SERVEWISE_DB_URL", f"sqlite:///{tmp_path / 'default-catalog.db'}")


REAL_VLLM_TESTS = Path(__file__).parent / "realvllm"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For ``pytest -n 2 --dist loadgroup`` (pytest-xdist, the README's test command):

    - every real-vLLM test goes to one worker: they share one ~3 GB server (a package-scoped fixture), which a
      second worker would start again;
    - the group scheduler keys work by node id, so two tests with one id would run once, silently; that is an
      error here (it happened with schemathesis's fuzz items under pytest 9, hence pytest<9 in pyproject).
    """
    seen: set[str] = set()
    for item in items:
        if item.nodeid in seen:
            raise pytest.UsageError(
                f"two collected tests share the node id {item.nodeid}: pytest-xdist would run only one of them"
            )
        seen.add(item.nodeid)
        if REAL_VLLM_TESTS in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("realvllm"))
