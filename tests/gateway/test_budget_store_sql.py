"""SqlBudgetStore on real SQLite and PostgreSQL: concurrency, all-or-nothing, settle/release, rollover, crossings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import Engine

from servewise.errors import UsageError
from servewise.gateway._budget_sql import SqlBudgetStore
from servewise.gateway._budgets import BudgetStore

from . import budget_support as support

Scenario = Callable[[BudgetStore], Awaitable[None]]
SCENARIOS = [
    support.concurrency,
    support.all_or_nothing,
    support.settle_release_rollover,
    support.soft_crossing_once,
]


def _run(engine: Engine, scenario: Scenario) -> None:
    async def main() -> None:
        store = SqlBudgetStore(engine)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_sqlite(sqlite_engine: Engine, scenario: Scenario) -> None:
    _run(sqlite_engine, scenario)


@pytest.mark.postgres
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_postgres(postgres_engine: Engine, scenario: Scenario) -> None:
    _run(postgres_engine, scenario)


def test_bad_budget_definitions_are_usage_errors(sqlite_engine: Engine) -> None:
    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        with pytest.raises(UsageError, match=r"soft limit .* above the hard limit"):
            await store.set_budget(
                scope="org", scope_id="a", window="daily", soft_micro_usd=2, hard_micro_usd=1
            )
        with pytest.raises(UsageError, match="downgrade route"):
            await store.set_budget(
                scope="org",
                scope_id="a",
                window="daily",
                soft_micro_usd=None,
                hard_micro_usd=1,
                action="downgrade",
            )
        with pytest.raises(UsageError, match="use one of org, team, key, end_user"):
            await store.set_budget(
                scope="tenant", scope_id="a", window="daily", soft_micro_usd=None, hard_micro_usd=1
            )
        ref = await store.set_budget(
            scope="org", scope_id="a", window="daily", soft_micro_usd=None, hard_micro_usd=1
        )
        changed = await store.set_budget(
            scope="org", scope_id="a", window="daily", soft_micro_usd=None, hard_micro_usd=5
        )
        assert changed.budget_id == ref.budget_id and changed.hard_micro_usd == 5
        assert [b.hard_micro_usd for b in await store.list_budgets()] == [5]
        held = await store.reserve("x", [changed], 1, support.NOW)
        with pytest.raises(UsageError, match=r"request id must be 1\.\.64 characters"):
            await store.reserve("x" * 65, [changed], 1, support.NOW)
        with pytest.raises(UsageError, match="already holds a reservation"):
            await store.reserve("x", [changed], 1, support.NOW)
        assert held is not None

    asyncio.run(main())
