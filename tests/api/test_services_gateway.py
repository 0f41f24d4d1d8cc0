"""The read-only gateway views over a database with ledger rows: grouped totals, per-day series, budgets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from servewise.api import _services
from servewise.gateway import SpendRow, SqlBudgetStore, open_gateway_engine
from servewise.gateway._ledger import insert_rows


def _row(request_id: str, at: datetime, org: str, route: str, micro_usd: int) -> SpendRow:
    return SpendRow(
        request_id=request_id,
        at=at,
        org_id=org,
        team_id=None,
        key_id="k1",
        end_user=None,
        route=route,
        model="m",
        decision="primary",
        prompt_tokens=10,
        completion_tokens=5,
        micro_usd=micro_usd,
        status="ok",
        latency_ms=12.0,
        cached=False,
    )


def test_spend_and_budgets_from_a_gateway_database(sqlite_url: str) -> None:
    assert _services.spend_rows(db_url=sqlite_url) == []  # no gateway tables yet: empty, and none created
    assert _services.budget_rows(sqlite_url) == []
    engine = open_gateway_engine(sqlite_url)
    day1, day2 = datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    with engine.begin() as connection:
        insert_rows(
            connection,
            [
                _row("a", day1, "acme", "chat", 1_500_000),
                _row("b", day1, "acme", "chat", 500_000),
                _row("c", day2, "acme", "rag", 250_000),
                _row("d", day2, "zeta", "chat", 4_000_000),
            ],
        )
    store = SqlBudgetStore(engine)

    async def put() -> None:
        await store.set_budget(
            scope="org",
            scope_id="acme",
            window="monthly",
            soft_micro_usd=None,
            hard_micro_usd=10_000_000,
            action="reject",
            downgrade_route=None,
            timezone="UTC",
        )
        await store.close()

    asyncio.run(put())
    engine.dispose()

    by_tenant = _services.spend_rows(by="tenant", db_url=sqlite_url)
    assert [(r["tenant"], r["requests"], r["usd"]) for r in by_tenant] == [
        ("zeta", 1, 4.0),
        ("acme", 3, 2.25),
    ]
    since_day2 = _services.spend_rows(by="route", since=datetime(2026, 3, 2), db_url=sqlite_url)
    assert {r["route"]: r["usd"] for r in since_day2} == {"chat": 4.0, "rag": 0.25}
    daily = _services.spend_daily(by="tenant", db_url=sqlite_url)
    assert daily == [
        {"day": "2026-03-01", "tenant": "acme", "requests": 2, "usd": 2.0},
        {"day": "2026-03-02", "tenant": "acme", "requests": 1, "usd": 0.25},
        {"day": "2026-03-02", "tenant": "zeta", "requests": 1, "usd": 4.0},
    ]
    (budget,) = _services.budget_rows(sqlite_url)
    assert (budget["scope"], budget["scope_id"], budget["window"], budget["hard_usd"]) == (
        "org",
        "acme",
        "monthly",
        10.0,
    )
