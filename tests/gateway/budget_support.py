"""Helpers for the budget, ledger and alert tests (owned by G2): real databases with the gateway tables, a real
Redis with a random key prefix, and the store scenarios that every backend must pass."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import Engine, Table

from servewise.catalog._db import connect_engine
from servewise.catalog._schema import Base
from servewise.gateway import _tables
from servewise.gateway._budgets import BudgetStore, Refusal, Reservation

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GATEWAY_TABLES = [
    cast(Table, orm.__table__)
    for orm in (
        _tables.OrgRow,
        _tables.TeamRow,
        _tables.ApiKeyRow,
        _tables.BudgetRow,
        _tables.BudgetUsageRow,
        _tables.ReservationRow,
        _tables.SpendRowRecord,
        _tables.AlertFiredRow,
    )
]


def gateway_engine(url: str) -> Engine:
    """An engine like the gateway's (catalog hooks: SQLite ``BEGIN IMMEDIATE``) with the gateway tables."""
    engine = connect_engine(url)
    extra = [cast(Table, _tables.AlertMarkRow.__table__)] if hasattr(_tables, "AlertMarkRow") else []
    Base.metadata.create_all(engine, tables=GATEWAY_TABLES + extra)
    return engine


def engine_at(url: str) -> Iterator[Engine]:
    """For a fixture: ``gateway_engine(url)``, disposed afterwards."""
    engine = gateway_engine(url)
    yield engine
    engine.dispose()


def redis_url_or_skip() -> str:
    """``SERVEWISE_TEST_REDIS_URL`` when that Redis answers a PING; the test is skipped, with the reason, if not."""
    url = os.environ.get("SERVEWISE_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as err:
        pytest.skip(f"Redis at {url} does not answer ({type(err).__name__}); set SERVEWISE_TEST_REDIS_URL")
    finally:
        client.close()
    return url


def redis_prefix_at(redis_url: str) -> Iterator[str]:
    """For a fixture: a random key prefix; every key under it is deleted afterwards."""
    prefix = f"swtest:{uuid.uuid4().hex[:12]}"
    yield prefix
    from redis import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- scenarios every store must pass --------------------------------------------------------------------------
async def concurrency(store: BudgetStore, *, requests: int = 200, amount: int = 10_000) -> None:
    """``requests`` concurrent reservations against a hard limit that admits exactly half of them, while a sampler
    watches spent + reserved; then the admitted ones settle (for less), again concurrently."""
    hard = amount * requests // 2
    budget = await store.set_budget(
        scope="key", scope_id="k1", window="daily", soft_micro_usd=None, hard_micro_usd=hard
    )
    budgets = await store.budgets_for("acme", None, "k1")
    assert [b.budget_id for b in budgets] == [budget.budget_id]
    samples: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            (usage,) = await store.usage(budgets, NOW)
            samples.append(usage.spent_micro_usd + usage.reserved_micro_usd)
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample())
    outcomes = await asyncio.gather(
        *(store.reserve(f"req-{i}", budgets, amount, NOW) for i in range(requests))
    )
    admitted = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(admitted) == requests // 2 and len(refused) == requests - requests // 2
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (0, hard)
    await asyncio.gather(*(store.settle(r, amount // 2) for r in admitted))
    done.set()
    await sampler
    assert len(samples) > 1 and max(samples) <= hard
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (len(admitted) * (amount // 2), 0)
    for refusal in refused:
        assert refusal.budget.budget_id == budget.budget_id
        assert refusal.resets_at.astimezone(UTC) == datetime(2026, 11, 26, tzinfo=UTC)
        assert refusal.requested_micro_usd == amount
        assert refusal.spent_micro_usd + refusal.reserved_micro_usd + amount > hard
    assert await store.open_reservations() == []
    # settling again is a no-op: exactly the admitted ones were counted, once
    await store.settle(admitted[0], amount)
    assert (await store.usage(budgets, NOW))[0].spent_micro_usd == len(admitted) * (amount // 2)


async def all_or_nothing(store: BudgetStore) -> None:
    """The team has room, the org does not: refused by the org, and nothing reserved at any level."""
    await store.set_budget(
        scope="org", scope_id="acme", window="monthly", soft_micro_usd=None, hard_micro_usd=1_000_000
    )
    await store.set_budget(
        scope="team", scope_id="search", window="monthly", soft_micro_usd=None, hard_micro_usd=5_000_000
    )
    await store.set_budget(
        scope="key", scope_id="k1", window="daily", soft_micro_usd=900_000, hard_micro_usd=None
    )
    budgets = await store.budgets_for("acme", "search", "k1")
    assert [b.scope for b in budgets] == ["org", "team", "key"]
    first = await store.reserve("a", budgets, 800_000, NOW)
    assert isinstance(first, Reservation)
    second = await store.reserve("b", budgets, 300_000, NOW)
    assert isinstance(second, Refusal) and second.budget.scope == "org"
    assert (second.spent_micro_usd, second.reserved_micro_usd) == (0, 800_000)
    assert "org 'acme' monthly budget $1.00 would be exceeded" in second.message()
    assert "resets 2026-12-01 00:00 UTC" in second.message()
    usage = await store.usage(budgets, NOW)
    assert [(u.spent_micro_usd, u.reserved_micro_usd) for u in usage] == [(0, 800_000)] * 3
    assert [o.request_id for o in await store.open_reservations()] == ["a"]


async def settle_release_rollover(store: BudgetStore) -> None:
    """Settling for less frees the difference; release frees all; a new window starts from zero."""
    await store.set_budget(
        scope="org", scope_id="acme", window="daily", soft_micro_usd=None, hard_micro_usd=1_000_000
    )
    budgets = await store.budgets_for("acme", None, "k1")
    held = await store.reserve("a", budgets, 600_000, NOW)
    assert isinstance(held, Reservation)
    assert isinstance(await store.reserve("b", budgets, 600_000, NOW), Refusal)
    await store.settle(held, 200_000)
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (200_000, 0)
    again = await store.reserve("b", budgets, 600_000, NOW)
    assert isinstance(again, Reservation)
    await store.release(again)
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (200_000, 0)
    tomorrow = NOW.replace(day=26)
    (fresh,) = await store.usage(budgets, tomorrow)
    assert (fresh.spent_micro_usd, fresh.reserved_micro_usd) == (0, 0)
    assert fresh.window_start.astimezone(UTC) == datetime(2026, 11, 26, tzinfo=UTC)
    big = await store.reserve("c", budgets, 1_000_000, tomorrow)
    assert isinstance(big, Reservation)
    await store.settle(big, 1_000_000)
    (today,) = await store.usage(budgets, NOW)
    assert today.spent_micro_usd == 200_000  # yesterday's window is untouched


async def soft_crossing_once(store: BudgetStore) -> None:
    """80/95/100 % of the hard limit and the soft limit are each reported by exactly one settlement."""
    await store.set_budget(
        scope="team", scope_id="search", window="monthly", soft_micro_usd=500_000, hard_micro_usd=1_000_000
    )
    budgets = await store.budgets_for("acme", "search", "k1")
    seen: list[tuple[str, int]] = []
    for i, actual in enumerate([400_000, 100_000, 300_000, 10_000, 140_000, 50_000]):
        held = await store.reserve(f"r{i}", budgets, actual, NOW)
        assert isinstance(held, Reservation), held
        seen += [(c.kind, c.threshold_pct) for c in await store.settle(held, actual)]
        seen.append(("settled", i))
    assert seen == [
        ("settled", 0),
        ("soft", 0),
        ("settled", 1),
        ("threshold", 80),
        ("settled", 2),
        ("settled", 3),
        ("threshold", 95),
        ("settled", 4),
        ("threshold", 100),
        ("settled", 5),
    ]


def redis_worker(db_url: str, redis_url: str, prefix: str, worker: str, requests: int, amount: int) -> None:
    """One gateway-like process: ``requests`` concurrent reservations on key k1's budget, each settled in full;
    prints how many were admitted. Run by the two-process test in a fresh interpreter."""
    from servewise.gateway._budget_redis import RedisBudgetStore

    async def main() -> None:
        store = RedisBudgetStore(redis_url, connect_engine(db_url), prefix=prefix)
        budgets = await store.budgets_for("acme", None, "k1")
        # a barrier, so that both processes really reserve at the same time
        await store.redis.incr(f"{prefix}:ready")
        deadline = asyncio.get_running_loop().time() + 30
        while int(await store.redis.get(f"{prefix}:ready") or 0) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the other worker never started"
            await asyncio.sleep(0.01)
        outcomes = await asyncio.gather(
            *(store.reserve(f"{worker}-{i}", budgets, amount, NOW) for i in range(requests))
        )
        admitted = [o for o in outcomes if isinstance(o, Reservation)]
        await asyncio.gather(*(store.settle(r, amount) for r in admitted))
        await store.close()
        print(len(admitted), flush=True)

    asyncio.run(main())


def crash_worker(db_url: str, redis_url: str, prefix: str) -> None:
    """A gateway-like process killed with SIGKILL mid-load: 10 requests fully written, 10 more admitted whose rows
    are still queued in the ledger writer when the process dies."""
    import signal

    from servewise.gateway._budget_redis import RedisBudgetStore
    from servewise.gateway._ledger import LedgerWriter, SpendRow

    async def main() -> None:
        engine = connect_engine(db_url)
        store = RedisBudgetStore(redis_url, engine, prefix=prefix)
        writer = LedgerWriter(engine, store, batch_interval_s=3600)
        budgets = await store.budgets_for("acme", None, "k1")
        for i in range(20):
            held = await store.reserve(f"c{i}", budgets, 1_000, NOW)
            assert isinstance(held, Reservation)
            row = SpendRow(
                f"c{i}", NOW, "acme", None, "k1", None, "bulk", "m", "local", 10, 10, 600, "ok", 5.0, False
            )
            writer.add(row, held)
            if i == 9:
                await writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
