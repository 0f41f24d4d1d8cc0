"""Browser-test fixtures (owned by W4): Debian's chromium (installed here when missing), a real Servewise app served
by uvicorn in a thread against a temporary SQLite catalog, and a gateway ledger seeded through ``LedgerWriter``.

Why install chromium from the test setup: the issue asks for the browser tests to run in CI, where the only way to
get a browser without downloading one at run time from a third party is the distribution's package. The tests are
skipped — with the reason — only when it cannot be installed (not root, no apt-get, the install failed).
``SERVEWISE_CHROMIUM`` points at another Chromium binary (e.g. on a developer's non-Debian machine).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from tests.debian import apt_install

if TYPE_CHECKING:
    from playwright.sync_api import Browser

DEFAULT_CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium binary to drive: ``SERVEWISE_CHROMIUM``, else Debian's, installed now when missing."""
    configured = os.environ.get("SERVEWISE_CHROMIUM")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(f"SERVEWISE_CHROMIUM={configured} does not exist; unset it to use {DEFAULT_CHROMIUM}")
        return configured
    if not Path(DEFAULT_CHROMIUM).is_file():
        reason = apt_install("chromium")
        if reason is not None or not Path(DEFAULT_CHROMIUM).is_file():
            pytest.skip(
                f"browser tests need Chromium at {DEFAULT_CHROMIUM} and it could not be installed: "
                f"{reason or 'apt-get succeeded but installed no ' + DEFAULT_CHROMIUM}; install the `chromium` "
                "package or set SERVEWISE_CHROMIUM to a Chromium binary"
            )
    return DEFAULT_CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """One headless Chromium per test module (pages and contexts are per test).

    Not per session: Playwright's sync API keeps an event loop running on the main thread while it is open, so any
    later test calling ``asyncio.run`` fails; under pytest-xdist such tests can follow a browser test on the same
    worker. Module scope closes it as soon as the worker moves on to another module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_executable, args=["--no-sandbox"], headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class LiveApp:
    """A running Servewise app: its base URL and the catalog (and gateway) database it reads."""

    url: str
    db_url: str


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """``servewise.api.create_app()`` served by uvicorn on a free port, against a fresh SQLite catalog.

    ``SERVEWISE_DB_URL`` names the same file for the module, so nothing can fall back to the user's catalog."""
    from servewise.api import create_app

    db_url = f"sqlite:///{tmp_path_factory.mktemp('web-catalog') / 'catalog.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SERVEWISE_DB_URL", db_url)
        app = create_app(db_url=db_url)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", access_log=False)
        )
        thread = threading.Thread(target=server.run, name="servewise-web-test", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                pytest.fail(f"the web app did not start within {START_TIMEOUT_S} s")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield LiveApp(f"http://127.0.0.1:{port}", db_url)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


SPEND_DAYS = 5
TENANTS = {"acme": ("bulk", 0.9), "globex": ("openai", 0.35)}
"""org → (route its traffic mostly takes, dollars per request before the daily ramp)."""


def seed_spend(db_url: str, *, now: datetime | None = None) -> int:
    """Write a few days of ledger rows for two tenants through the gateway's own ``LedgerWriter``, plus an org
    daily budget for ``acme``, and reconcile the budget counters with the ledger as a starting gateway does;
    returns the number of rows. Amounts are made-up test values."""
    from servewise.gateway import (
        LedgerWriter,
        SpendRow,
        SqlBudgetStore,
        create_key,
        open_gateway_engine,
        reconcile,
    )

    now = now or datetime.now(UTC)
    engine = open_gateway_engine(db_url)
    try:
        keys = {org: create_key(engine, org=org, name="web-test").info.key_id for org in TENANTS}
        rows = []
        for day in range(SPEND_DAYS):
            at = now - timedelta(days=SPEND_DAYS - 1 - day, minutes=5)
            for org, (route, usd) in TENANTS.items():
                for n in range(3):
                    rows.append(
                        SpendRow(
                            request_id=f"web-test-{org}-{day}-{n}",
                            at=at,
                            org_id=org,
                            team_id=None,
                            key_id=keys[org],
                            end_user=None,
                            route=route if n else "long",
                            model="Llama-3.1-8B",
                            decision="primary",
                            prompt_tokens=1200 + 100 * n,
                            completion_tokens=300,
                            micro_usd=round((usd + 0.25 * day) * 1_000_000),
                            status="ok",
                            latency_ms=850.0,
                            cached=False,
                        )
                    )

        async def write() -> None:
            store = SqlBudgetStore(engine)
            try:
                await store.set_budget(
                    scope="org",
                    scope_id="acme",
                    window="daily",
                    soft_micro_usd=4_000_000,
                    hard_micro_usd=5_000_000,
                )
                writer = LedgerWriter(engine)
                await writer.start()
                for row in rows:
                    writer.add(row)
                await writer.close()
                await reconcile(engine, store, now=now)  # what a gateway does at start-up: counters = ledger
            finally:
                await store.close()

        # A thread of its own: Playwright's sync API keeps an event loop running in the test's thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(lambda: asyncio.run(write())).result()
        return len(rows)
    finally:
        engine.dispose()
