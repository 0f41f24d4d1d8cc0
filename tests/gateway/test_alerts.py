"""Alerts: budget thresholds fired once across processes (persisted), the daily-spend anomaly, per-tenant spikes,
delivered to a real local webhook server and to listeners."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine

from servewise.cost import AlertPolicy
from servewise.gateway._alerts import Alert, BudgetAlerter, SpikeRule
from servewise.gateway._budget_sql import SqlBudgetStore
from servewise.gateway._budgets import Reservation, crossings_between
from servewise.gateway._ledger import LedgerWriter, SpendRow

from . import budget_support as support

NOW = support.NOW
DEADLINE_S = 10.0


@dataclass
class Webhook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to /hook (answers 503 while
    ``fail_next`` > 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = Webhook(url=f"http://127.0.0.1:{port}/hook?token=secret-token")
    app = FastAPI()

    @app.post("/hook")
    async def receive(request: Request) -> Response:
        if hook.fail_next > 0:
            hook.fail_next -= 1
            return Response(status_code=503)
        hook.received.append(await request.json())
        return Response(status_code=204)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        assert time.monotonic() < deadline, "webhook server did not start"
        time.sleep(0.01)
    yield hook
    server.should_exit = True
    thread.join(DEADLINE_S)


def spend(request_id: str, micro_usd: int, at: datetime, org_id: str = "acme") -> SpendRow:
    return SpendRow(
        request_id=request_id,
        at=at,
        org_id=org_id,
        team_id=None,
        key_id="k1",
        end_user=None,
        route="bulk",
        model="m",
        decision="local",
        prompt_tokens=1,
        completion_tokens=1,
        micro_usd=micro_usd,
        status="ok",
        latency_ms=1.0,
        cached=False,
    )


def test_thresholds_fire_once_to_the_webhook_even_across_processes(
    sqlite_engine: Engine, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        alerter = BudgetAlerter(
            sqlite_engine, webhook_url=webhook.url, check_every_s=None, retry_initial_s=0.01
        )
        seen: list[Alert] = []
        alerter.add_listener(seen.append)
        await alerter.start()
        store = SqlBudgetStore(sqlite_engine, levels_pct=alerter.levels_pct)
        writer = LedgerWriter(sqlite_engine, store, on_crossings=alerter.on_crossings)
        await store.set_budget(
            scope="team",
            scope_id="search",
            window="monthly",
            soft_micro_usd=500_000,
            hard_micro_usd=1_000_000,
        )
        budgets = await store.budgets_for("acme", "search", "k1")
        webhook.fail_next = 1  # the first delivery is retried
        for i, cost in enumerate([450_000, 400_000, 10_000, 100_000]):
            held = await store.reserve(f"r{i}", budgets, cost, NOW)
            assert isinstance(held, Reservation)
            writer.add(spend(f"r{i}", cost, NOW), held)
            await writer.flush()
        await alerter.drain()
        # 450k: none; 850k: soft (500k) + 80 %; 860k: none; 960k: 95 %
        assert [(a["kind"], a["threshold_pct"]) for a in webhook.received] == [
            ("threshold", 80),
            ("soft", 0),
            ("threshold", 95),
        ]
        first = webhook.received[0]
        assert first["scope"] == "team" and first["scope_id"] == "search" and first["limit_usd"] == 0.8
        assert first["resets_at"] == "2026-12-01T00:00:00+00:00" and first["spent_usd"] == 0.85
        assert "team 'search' monthly budget reached 80 %" in first["message"]
        assert [a.kind for a in seen] == ["threshold", "soft", "threshold"]
        assert alerter.fired_total == {"threshold": 2, "soft": 1}
        assert (alerter.delivered, alerter.delivery_failures) == (3, 0)
        # a restarted (or second) process sees the same crossing again: nothing fires twice
        other = BudgetAlerter(sqlite_engine, webhook_url=webhook.url, check_every_s=None)
        await other.start()
        again = crossings_between(budgets[0], budgets[0].bounds(NOW)[0], 0, 1_000_000, alerter.levels_pct)
        assert [c.threshold_pct for c in again] == [80, 95, 100, 0]
        fired = await other.on_crossings(again)
        assert [a.threshold_pct for a in fired] == [100]  # only the one never fired before
        await other.close()
        await writer.close()
        await alerter.close()
        assert len(webhook.received) == 4

    asyncio.run(main())
    assert "secret-token" not in caplog.text


def _daily_history(writer: LedgerWriter, days: int, usd_per_day: float, org: str = "acme") -> None:
    for back in range(days, 0, -1):
        writer.add(spend(f"{org}-d{back}", round(usd_per_day * 1e6), NOW - timedelta(days=back), org))


def test_daily_spend_anomaly_fires_once_per_day(sqlite_engine: Engine, webhook: Webhook) -> None:
    async def main() -> None:
        writer = LedgerWriter(sqlite_engine)
        _daily_history(writer, 8, 10.0)  # 8 days at $10
        writer.add(spend("today-1", 14_000_000, NOW - timedelta(hours=2)))
        await writer.flush()
        alerter = BudgetAlerter(
            sqlite_engine, webhook_url=webhook.url, check_every_s=None, spike=SpikeRule(min_usd=1e9)
        )
        await alerter.start()
        assert await alerter.check_spend(NOW) == []  # $14 ≤ 1.5 × $10
        writer.add(spend("today-2", 2_000_000, NOW - timedelta(hours=1)))  # $16 > $15
        await writer.flush()
        (alert,) = await alerter.check_spend(NOW)
        assert alert.kind == "anomaly" and alert.spent_usd == 16.0 and alert.baseline_usd == 10.0
        assert "(so far today)" in alert.message
        assert await alerter.check_spend(NOW) == []  # once per day
        second = BudgetAlerter(sqlite_engine, check_every_s=None, spike=SpikeRule(min_usd=1e9))
        assert await second.check_spend(NOW) == []  # nor again from another process
        await alerter.close()
        assert [a["kind"] for a in webhook.received] == ["anomaly"]

    asyncio.run(main())


@pytest.mark.postgres
def test_thresholds_and_anomaly_fire_once_on_postgres(postgres_engine: Engine) -> None:
    engine = postgres_engine

    async def main() -> None:
        writer = LedgerWriter(engine)
        _daily_history(writer, 8, 10.0)
        writer.add(spend("today", 20_000_000, NOW - timedelta(hours=1)))
        await writer.flush()
        alerter = BudgetAlerter(engine, check_every_s=None, spike=SpikeRule(min_usd=1e9))
        assert [a.kind for a in await alerter.check_spend(NOW)] == ["anomaly"]
        assert await alerter.check_spend(NOW) == []
        store = SqlBudgetStore(engine)
        ref = await store.set_budget(
            scope="org", scope_id="globex", window="daily", soft_micro_usd=None, hard_micro_usd=100
        )
        held = await store.reserve("x", [ref], 90, NOW)
        assert isinstance(held, Reservation)
        crossings = await store.settle(held, 90)
        assert [a.threshold_pct for a in await alerter.on_crossings(crossings)] == [80]
        assert await BudgetAlerter(engine, check_every_s=None).on_crossings(crossings) == []

    asyncio.run(main())


def test_no_anomaly_before_a_full_window_of_history(sqlite_engine: Engine) -> None:
    async def main() -> None:
        writer = LedgerWriter(sqlite_engine)
        writer.add(spend("first-ever", 50_000_000, NOW - timedelta(hours=1)))
        await writer.flush()
        alerter = BudgetAlerter(sqlite_engine, check_every_s=None, policy=AlertPolicy(anomaly_factor=1.5))
        assert await alerter.check_spend(NOW) == []

    asyncio.run(main())


def test_per_tenant_spike(sqlite_engine: Engine) -> None:
    async def main() -> None:
        writer = LedgerWriter(sqlite_engine)
        for hour in range(2, 7 * 24):  # both orgs: $1 per hour for a week
            for org in ("acme", "globex"):
                writer.add(spend(f"{org}-h{hour}", 1_000_000, NOW - timedelta(hours=hour), org))
        writer.add(spend("acme-now", 3_500_000, NOW - timedelta(minutes=10), "acme"))  # 3.5× its average hour
        writer.add(spend("globex-now", 2_000_000, NOW - timedelta(minutes=10), "globex"))  # 2×: no spike
        await writer.flush()
        alerter = BudgetAlerter(sqlite_engine, check_every_s=None)
        spikes = [a for a in await alerter.check_spend(NOW) if a.kind == "spike"]
        assert [(a.scope, a.scope_id) for a in spikes] == [("org", "acme")]
        assert spikes[0].spent_usd == 3.5
        assert spikes[0].baseline_usd == pytest.approx(1.0, rel=0.01)
        assert [a for a in await alerter.check_spend(NOW + timedelta(minutes=5)) if a.kind == "spike"] == []

    asyncio.run(main())


def test_a_dead_webhook_is_logged_not_raised(sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here

    async def main() -> None:
        alerter = BudgetAlerter(
            sqlite_engine,
            webhook_url=f"http://127.0.0.1:{port}/hook/s3cr3t",
            check_every_s=None,
            retries=2,
            retry_initial_s=0.01,
        )
        await alerter.start()
        store = SqlBudgetStore(sqlite_engine)
        ref = await store.set_budget(
            scope="org", scope_id="acme", window="daily", soft_micro_usd=None, hard_micro_usd=100
        )
        held = await store.reserve("x", [ref], 100, NOW)
        assert isinstance(held, Reservation)
        fired = await alerter.on_crossings(await store.settle(held, 100))
        assert [a.threshold_pct for a in fired] == [80, 95, 100]
        await alerter.close()
        assert (alerter.delivered, alerter.delivery_failures) == (0, 3)

    with caplog.at_level(logging.ERROR, logger="servewise.gateway.alerts"):
        asyncio.run(main())
    assert "failed after 2 attempts (ConnectError)" in caplog.text
    assert "s3cr3t" not in caplog.text
