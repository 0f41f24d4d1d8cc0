"""RedisBudgetStore on a real Redis (random key prefix, cleaned up): the same scenarios as the SQL store, plus two
processes sharing one budget."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from servewise.gateway._budget_redis import RedisBudgetStore
from servewise.gateway._budgets import BudgetStore, Reservation
from servewise.gateway._windows import window_bounds

from . import budget_support as support

ROOT = Path(__file__).resolve().parents[2]
Scenario = Callable[[BudgetStore], Awaitable[None]]
SCENARIOS = [
    support.concurrency,
    support.all_or_nothing,
    support.settle_release_rollover,
    support.soft_crossing_once,
]


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    yield from support.redis_prefix_at(redis_url)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_redis(sqlite_engine: Engine, redis_url: str, redis_prefix: str, scenario: Scenario) -> None:
    async def main() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_counter_keys_carry_the_prefix_and_expire(
    sqlite_engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    """At the wall clock's time, not ``support.NOW``: ``set_budget`` seeds the counter of the window that is current
    when it runs, so a reservation at another date would add a second counter key."""

    async def main() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        try:
            seeded_at = datetime.now(UTC)
            await store.set_budget(
                scope="org", scope_id="acme", window="daily", soft_micro_usd=None, hard_micro_usd=10
            )
            budgets = await store.budgets_for("acme", None, "k")
            now = datetime.now(UTC)
            held = await store.reserve("a", budgets, 5, now)
            assert isinstance(held, Reservation)
            keys = {k async for k in store.redis.scan_iter(match=f"{redis_prefix}:*")}

            def counter(at: datetime) -> str:
                start, _ = window_bounds("daily", at, "UTC")
                return f"{redis_prefix}:b:{budgets[0].budget_id}:{start.isoformat()}"

            assert {counter(now), f"{redis_prefix}:r:a", f"{redis_prefix}:rz"} <= keys
            assert keys <= {counter(seeded_at), counter(now), f"{redis_prefix}:r:a", f"{redis_prefix}:rz"}
            assert await store.redis.ttl(counter(now)) > 40 * 86_400  # the window's end + 40 days
            await store.release(held)
            assert not await store.redis.exists(f"{redis_prefix}:r:a")
        finally:
            await store.close()

    asyncio.run(main())


def test_two_processes_share_one_budget(
    sqlite_url: str, sqlite_engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    amount, per_process, capacity = 10_000, 100, 100

    async def define() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        await store.set_budget(
            scope="key", scope_id="k1", window="daily", soft_micro_usd=None, hard_micro_usd=amount * capacity
        )
        await store.close()

    asyncio.run(define())
    code = (
        "import sys; from tests.gateway.budget_support import redis_worker as w; "
        "w(*sys.argv[1:5], int(sys.argv[5]), int(sys.argv[6]))"
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                sqlite_url,
                redis_url,
                redis_prefix,
                name,
                str(per_process),
                str(amount),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    admitted = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        admitted.append(int(out.strip()))
    assert (
        sum(admitted) == capacity
    )  # together they asked for twice the budget; exactly the budget was admitted

    async def check() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        (usage,) = await store.usage(await store.budgets_for("acme", None, "k1"), support.NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (amount * capacity, 0)
        assert await store.open_reservations() == []
        await store.close()

    asyncio.run(check())
