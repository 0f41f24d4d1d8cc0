"""The spend ledger: batches written off the request path, settlement with the rows, failures kept and retried,
reconciliation after simulated crashes on SQL and Redis stores, and the spend report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from servewise.gateway._budget_defs import SPEND
from servewise.gateway._budget_redis import RedisBudgetStore
from servewise.gateway._budget_sql import SqlBudgetStore
from servewise.gateway._budgets import BudgetStore, Reservation
from servewise.gateway._ledger import LedgerWriteError, LedgerWriter, SpendRow
from servewise.gateway._reconcile import reconcile
from servewise.gateway._spend_report import spend_report

from . import budget_support as support
from .budget_support import NOW

DEADLINE_S = 10.0


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    yield from support.redis_prefix_at(redis_url)


def row(request_id: str, micro_usd: int, **changes: object) -> SpendRow:
    base = SpendRow(
        request_id=request_id,
        at=NOW,
        org_id="acme",
        team_id="search",
        key_id="k1",
        end_user=None,
        route="bulk",
        model="Llama-3.1-8B",
        decision="local",
        prompt_tokens=100,
        completion_tokens=50,
        micro_usd=micro_usd,
        status="ok",
        latency_ms=12.5,
        cached=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def ledger_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(SPEND)).scalar_one())


async def until(condition: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def org_budget(store: BudgetStore, hard: int = 10_000_000) -> list:
    await store.set_budget(
        scope="org", scope_id="acme", window="monthly", soft_micro_usd=None, hard_micro_usd=hard
    )
    return await store.budgets_for("acme", "search", "k1")


def test_rows_arrive_in_batches_after_add_and_settle_their_reservations(sqlite_engine: Engine) -> None:
    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        writer = LedgerWriter(sqlite_engine, store, batch_rows=500, batch_interval_s=0.05)
        await writer.start()
        budgets = await org_budget(store)
        held = await store.reserve("r1", budgets, 900, NOW)
        assert isinstance(held, Reservation)
        writer.add(row("r1", 400), held)
        writer.add(row("r2", 0, status="rejected", completion_tokens=0))
        assert ledger_rows(sqlite_engine) == 0 and writer.pending == 2  # add() never touched the database
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (0, 900)  # held until the batch commits
        await until(lambda: ledger_rows(sqlite_engine) == 2)
        await until(lambda: writer.pending == 0)
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (400, 0)
        # a full batch is written without waiting for the interval
        slow = LedgerWriter(sqlite_engine, store, batch_rows=10, batch_interval_s=3600)
        await slow.start()
        for i in range(25):
            slow.add(row(f"b{i}", 1))
        await until(lambda: ledger_rows(sqlite_engine) >= 22)
        await slow.close()
        await writer.close()
        assert ledger_rows(sqlite_engine) == 27

    asyncio.run(main())


def test_close_flushes_everything(sqlite_engine: Engine) -> None:
    async def main() -> None:
        writer = LedgerWriter(sqlite_engine, batch_interval_s=3600)
        await writer.start()
        for i in range(3):
            writer.add(row(f"c{i}", 10))
        await writer.close()
        assert ledger_rows(sqlite_engine) == 3 and writer.rows_written == 3
        with pytest.raises(LedgerWriteError, match="closed"):
            writer.add(row("late", 1))

    asyncio.run(main())


def test_a_failing_database_write_is_logged_retried_and_never_drops_rows(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def rename(old: str, new: str) -> None:
        with sqlite_engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        budgets = await org_budget(store)
        writer = LedgerWriter(
            sqlite_engine, store, batch_interval_s=0.02, retry_initial_s=0.02, retry_max_s=0.05
        )
        await writer.start()
        rename("gw_spend", "gw_spend_away")
        held = await store.reserve("f1", budgets, 500, NOW)
        assert isinstance(held, Reservation)
        writer.add(row("f1", 300), held)  # the request path goes on
        writer.add(row("f2", 100))
        await until(lambda: writer.write_failures >= 2)
        assert writer.pending == 2 and "no such table" in (writer.last_error or "")
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (0, 500)  # rolled back with the rows
        rename("gw_spend_away", "gw_spend")
        await until(lambda: writer.pending == 0)
        assert ledger_rows(sqlite_engine) == 2
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (300, 0)
        # at shutdown with the database gone: a clear error, rows still held
        rename("gw_spend", "gw_spend_away")
        writer.add(row("f3", 1))
        writer.close_attempts = 2
        with pytest.raises(LedgerWriteError, match="1 spend row"):
            await writer.close()
        assert [r.request_id for r in writer.unwritten] == ["f3"]
        rename("gw_spend_away", "gw_spend")
        await writer.flush()
        assert ledger_rows(sqlite_engine) == 3

    with caplog.at_level(logging.ERROR, logger="servewise.gateway.ledger"):
        asyncio.run(main())
    assert "ledger write failed" in caplog.text and "row(s) kept" in caplog.text


async def _assert_agree(engine: Engine, store: BudgetStore) -> None:
    """Every budget's current window: spent = Σ ledger, reserved = Σ open reservations."""
    budgets = await store.list_budgets()
    open_total = sum(o.amount_micro_usd for o in await store.open_reservations())
    for usage in await store.usage(budgets, NOW):
        with engine.connect() as connection:
            ledger = connection.execute(
                select(func.coalesce(func.sum(SPEND.c.micro_usd), 0)).where(SPEND.c.org_id == "acme")
            ).scalar_one()
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (ledger, open_total)


async def _set_created(store: BudgetStore, request_id: str, when: datetime) -> None:
    """Age a reservation (what a crash long ago looks like) in the store's own records."""
    if isinstance(store, RedisBudgetStore):
        await store.redis.hset(f"{store.prefix}:r:{request_id}", "created", str(when.timestamp()))
        await store.redis.zadd(f"{store.prefix}:rz", {request_id: when.timestamp()})
        return
    assert isinstance(store, SqlBudgetStore)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE gw_reservations SET created_at = :at WHERE request_id = :id"),
            {"at": when, "id": request_id},
        )


async def _crash_scenario(engine: Engine, store: BudgetStore) -> None:
    budgets = await org_budget(store)
    writer = LedgerWriter(engine, store, batch_interval_s=3600)
    # 1. a normal request, fully written
    ok = await store.reserve("ok", budgets, 1_000, NOW)
    assert isinstance(ok, Reservation)
    writer.add(row("ok", 700), ok)
    await writer.flush()
    # 2. counters AHEAD of the ledger: settled, but its row never reached the ledger
    ahead = await store.reserve("ahead", budgets, 500, NOW)
    assert isinstance(ahead, Reservation)
    await store.settle(ahead, 500)
    # 3. counters BEHIND the ledger: a row whose spend never reached the counters
    plain = LedgerWriter(engine)
    plain.add(row("behind", 250))
    await plain.flush()
    # 4. crash between the ledger commit and the settle (Redis store): row written, reservation still open
    half = await store.reserve("half", budgets, 800, NOW)
    assert isinstance(half, Reservation)
    plain.add(row("half", 600))
    await plain.flush()
    # 5. an orphan from a crash an hour ago: reserved, its row was still queued when the process died
    orphan = await store.reserve("orphan", budgets, 3_000, NOW)
    assert isinstance(orphan, Reservation)
    # 6. a request in flight in another, live process: young, no row yet — stays reserved
    young = await store.reserve("young", budgets, 40, NOW)
    assert isinstance(young, Reservation)
    # 7. an orphan that knows its tenant (the proxy always passes `meta`): charged its worst case, not released
    meta = {"at": NOW.isoformat(), "org_id": "acme", "team_id": "search", "key_id": "k1", "end_user": None}
    lost = await store.reserve("lost", budgets, 2_000, NOW, meta={**meta, "route": "bulk", "model": "m"})
    assert isinstance(lost, Reservation)
    for request_id in ("half", "orphan", "lost"):
        await _set_created(store, request_id, NOW - timedelta(hours=2))
    await _set_created(store, "young", NOW)
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (700 + 500, 800 + 3_000 + 40 + 2_000)

    report = await reconcile(engine, store, now=NOW + timedelta(minutes=1))
    assert report.settled == ("half",) and report.released == ("orphan",) and report.charged == ("lost",)
    assert len(report.fixes) == 1
    fix = report.fixes[0]
    assert (fix.spent_before_micro_usd, fix.spent_after_micro_usd) == (
        700 + 500 + 600 + 2_000,
        700 + 250 + 600 + 2_000,
    )
    (usage,) = await store.usage(budgets, NOW)
    assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (700 + 250 + 600 + 2_000, 40)
    with engine.connect() as connection:
        charged = connection.execute(select(SPEND).where(SPEND.c.request_id == "lost")).one()
    assert (charged.status, charged.micro_usd, charged.org_id, charged.route) == (
        "orphaned",
        2_000,
        "acme",
        "bulk",
    )
    assert [o.request_id for o in await store.open_reservations()] == ["young"]
    await _assert_agree(engine, store)
    again = await reconcile(engine, store, now=NOW + timedelta(minutes=1))
    assert not again.changed
    # the young request completes after the reconcile: still consistent
    writer.add(row("young", 30), young)
    await writer.close()
    await _assert_agree(engine, store)


def test_reconcile_after_a_crash_sql(sqlite_engine: Engine) -> None:
    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        await _crash_scenario(sqlite_engine, store)
        await store.close()

    asyncio.run(main())


@pytest.mark.postgres
def test_reconcile_after_a_crash_postgres(postgres_engine: Engine) -> None:
    async def main() -> None:
        store = SqlBudgetStore(postgres_engine)
        await _crash_scenario(postgres_engine, store)
        await store.close()

    asyncio.run(main())


def test_reconcile_after_a_crash_redis(sqlite_engine: Engine, redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        await _crash_scenario(sqlite_engine, store)
        # Redis lost everything (restart without persistence): reconcile rebuilds the counters from the ledger
        async for key in store.redis.scan_iter(match=f"{redis_prefix}:*"):
            await store.redis.delete(key)
        await reconcile(sqlite_engine, store, now=NOW)
        await _assert_agree(sqlite_engine, store)
        await store.close()

    asyncio.run(main())


def test_spend_report_groups_and_orders_by_dollars(sqlite_engine: Engine) -> None:
    async def main() -> None:
        writer = LedgerWriter(sqlite_engine)
        writer.add(row("a", 2_000_000))
        writer.add(row("b", 500_000, org_id="globex", route="openai"))
        writer.add(row("c", 0, status="rejected", completion_tokens=0))
        writer.add(row("d", 0, status="cache_hit", cached=True, org_id="globex"))
        writer.add(row("old", 9_000_000, at=NOW - timedelta(days=40)))
        await writer.flush()

    asyncio.run(main())
    report = spend_report(sqlite_engine, by="tenant", since=NOW - timedelta(days=1))
    assert [(r["tenant"], r["requests"], r["rejected"], r["cache_hits"], r["usd"]) for r in report] == [
        ("acme", 2, 1, 0, 2.0),
        ("globex", 2, 0, 1, 0.5),
    ]
    by_route = spend_report(sqlite_engine, by="route")
    assert by_route[0] == {
        "route": "bulk",
        "requests": 4,
        "rejected": 1,
        "cache_hits": 1,
        "prompt_tokens": 400,
        "completion_tokens": 150,
        "micro_usd": 11_000_000,
        "usd": 11.0,
    }
    with pytest.raises(Exception, match="use one of tenant"):
        spend_report(sqlite_engine, by="colour")


def test_kill_minus_nine_then_reconcile_agrees(
    sqlite_url: str, sqlite_engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    import subprocess
    import sys
    from pathlib import Path

    async def define() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        await store.set_budget(
            scope="key", scope_id="k1", window="daily", soft_micro_usd=None, hard_micro_usd=1_000_000
        )
        await store.close()

    asyncio.run(define())
    code = "import sys; from tests.gateway.budget_support import crash_worker as w; w(*sys.argv[1:4])"
    worker = subprocess.run(
        [sys.executable, "-c", code, sqlite_url, redis_url, redis_prefix],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == -9, worker.stderr

    async def after() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        budgets = await store.budgets_for("acme", None, "k1")
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (10 * 600, 10 * 1_000)
        assert ledger_rows(sqlite_engine) == 10
        # every gateway process is down, so every reservation without a ledger row is an orphan: TTL 0
        # (reservation ages are wall-clock: judge them at the real time)
        later = datetime.now(UTC) + timedelta(seconds=1)
        report = await reconcile(sqlite_engine, store, now=later, reservation_ttl_s=0)
        assert len(report.released) == 10 and not report.settled and not report.fixes
        (usage,) = await store.usage(budgets, NOW)
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (10 * 600, 0)
        await store.close()

    asyncio.run(after())


@pytest.mark.postgres
def test_a_row_the_database_refuses_does_not_block_the_others(
    postgres_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        store = SqlBudgetStore(postgres_engine)
        budgets = await org_budget(store)
        writer = LedgerWriter(postgres_engine, store)
        held = {}
        for request_id in ("ok1", "bad", "ok2"):  # key_id is String(32): PostgreSQL refuses the 2nd row
            reservation = await store.reserve(request_id, budgets, 100, NOW)
            assert isinstance(reservation, Reservation)
            held[request_id] = reservation
            writer.add(row(request_id, 50, key_id="k" * (40 if request_id == "bad" else 2)), reservation)
        await writer.flush()
        assert ledger_rows(postgres_engine) == 2 and writer.pending == 0
        assert [r.request_id for r in writer.rejected] == ["bad"]
        (usage,) = await store.usage(budgets, NOW)
        # the refused row's reservation stays held until the stale sweep
        assert (usage.spent_micro_usd, usage.reserved_micro_usd) == (100, 100)

    with caplog.at_level(logging.ERROR, logger="servewise.gateway.ledger"):
        asyncio.run(main())
    assert "ledger refused a spend row" in caplog.text


async def _compare_and_set(store: BudgetStore) -> None:
    """Reconciliation's write is a compare-and-set: a window a live process touched meanwhile is left alone."""
    budgets = await org_budget(store)
    key = (budgets[0].budget_id, budgets[0].bounds(NOW)[0].astimezone(UTC))
    first = await store.reserve("a", budgets, 100, NOW)
    assert isinstance(first, Reservation)
    seen = (await store.counters([key]))[key]
    assert seen == (0, 100)
    second = await store.reserve("b", budgets, 50, NOW)  # a live peer admits a request after the read
    assert isinstance(second, Reservation)
    assert await store.set_counters({key: (0, 100)}, {key: seen}) == []  # stale expectation: nothing written
    assert (await store.counters([key]))[key] == (0, 150)
    assert await store.set_counters({key: (7, 150)}, {key: (0, 150)}) == [key]
    assert (await store.counters([key]))[key] == (7, 150)


def test_reconcile_never_overwrites_a_counter_a_live_process_changed_sql(sqlite_engine: Engine) -> None:
    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        await _compare_and_set(store)
        await store.close()

    asyncio.run(main())


def test_reconcile_never_overwrites_a_counter_a_live_process_changed_redis(
    sqlite_engine: Engine, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        store = RedisBudgetStore(redis_url, sqlite_engine, prefix=redis_prefix)
        await _compare_and_set(store)
        await store.close()

    asyncio.run(main())


def test_moving_a_budget_to_another_time_zone_mid_window_keeps_its_spend(sqlite_engine: Engine) -> None:
    """The new zone's current window starts at another instant (another counter): it is seeded from the ledger
    instead of reading $0 — changing the zone must not reset the budget."""

    async def main() -> None:
        store = SqlBudgetStore(sqlite_engine)
        now = datetime.now(UTC)
        spec = {"scope": "org", "scope_id": "acme", "window": "daily", "soft_micro_usd": None}
        (budget,) = [await store.set_budget(**spec, hard_micro_usd=10_000, timezone="UTC")]
        held = await store.reserve("r1", [budget], 900, now)
        assert isinstance(held, Reservation)
        writer = LedgerWriter(sqlite_engine, store)
        writer.add(row("r1", 700, at=now), held)
        await writer.close()
        moved = await store.set_budget(**spec, hard_micro_usd=10_000, timezone="Pacific/Kiritimati")
        assert moved.bounds(now)[0] != budget.bounds(now)[0]
        (usage,) = await store.usage([moved], now)
        assert usage.spent_micro_usd == 700
        changed = await store.set_budget(**spec, hard_micro_usd=5_000, timezone="Pacific/Kiritimati")
        (usage,) = await store.usage([changed], now)
        assert (usage.spent_micro_usd, usage.budget.hard_micro_usd) == (
            700,
            5_000,
        )  # a new limit keeps the spend
        await store.close()

    asyncio.run(main())
