"""``SqlBudgetStore``: budget counters in the catalog database (SQLite by default, PostgreSQL for several hosts).

Why it is atomic: every reserve and settle is one write transaction. SQLite takes the database write lock at
``BEGIN IMMEDIATE``, so transactions run one after another; PostgreSQL locks the usage rows with
``SELECT … FOR UPDATE`` after an ``INSERT … ON CONFLICT DO NOTHING`` has made sure they exist. Rows are always
locked in (budget id, window start) order, so two transactions cannot wait on each other in a cycle.

Why ``asyncio.to_thread``: the database driver blocks; the event loop must keep serving other requests while a
transaction waits for the lock.

``settle_many(items, write=...)`` runs the ledger insert (``write``) and the settlement of the same requests in
ONE transaction: a row is in the ledger exactly when its reservation has been settled — there is no crash window
between the two in this store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, or_, select, update
from sqlalchemy.exc import OperationalError

from servewise.errors import UsageError

from ._budget_defs import USAGE, BudgetDefinitions, DefinitionsFront, as_utc, ledger_sum, write_tx
from ._budgets import (
    DEFAULT_LEVELS_PCT,
    BudgetRef,
    BudgetUsage,
    Crossing,
    LedgerWrite,
    OpenReservation,
    Refusal,
    Reservation,
    check_request,
    crossings_between,
)
from ._tables import ReservationRow

__all__ = ["SqlBudgetStore"]

Key = tuple[int, datetime]
P = ParamSpec("P")
T = TypeVar("T")
RESERVATIONS = cast(Table, ReservationRow.__table__)
_RETRIES = 4
"""Attempts for a transaction that PostgreSQL aborted as a deadlock victim or SQLite found locked past its
busy timeout (both rare; the lock order makes deadlocks impossible between this store's own transactions)."""


def _ensure_rows(connection: Connection, keys: Sequence[Key]) -> None:
    values = [
        {"budget_id": b, "window_start": w, "spent_micro_usd": 0, "reserved_micro_usd": 0} for b, w in keys
    ]
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            connection.execute(pg_insert(USAGE).values(values).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            connection.execute(sqlite_insert(USAGE).values(values).on_conflict_do_nothing())
        return
    present = set(_lock(connection, keys))  # pragma: no cover - other databases: check, then insert
    missing = [v for v in values if (v["budget_id"], v["window_start"]) not in present]
    if missing:  # pragma: no cover
        connection.execute(insert(USAGE), missing)


def _lock(connection: Connection, keys: Sequence[Key]) -> dict[Key, tuple[int, int]]:
    """(spent, reserved) per key, rows locked until commit (PostgreSQL; SQLite already holds the write lock)."""
    if not keys:
        return {}
    c = USAGE.c
    query = (
        select(c.budget_id, c.window_start, c.spent_micro_usd, c.reserved_micro_usd)
        .where(or_(*(and_(c.budget_id == b, c.window_start == w) for b, w in keys)))
        .order_by(c.budget_id, c.window_start)
        .with_for_update()
    )
    return {(r[0], as_utc(r[1])): (int(r[2]), int(r[3])) for r in connection.execute(query)}


def _write_counter(connection: Connection, key: Key, spent: int, reserved: int) -> None:
    c = USAGE.c
    connection.execute(
        update(USAGE)
        .where(c.budget_id == key[0], c.window_start == key[1])
        .values(spent_micro_usd=spent, reserved_micro_usd=reserved)
    )


def _parts_of(row: object) -> tuple[Key, ...]:
    ids = json.loads(row.budget_ids)  # type: ignore[attr-defined]
    starts = json.loads(row.window_starts)  # type: ignore[attr-defined]
    return tuple((int(b), as_utc(datetime.fromisoformat(w))) for b, w in zip(ids, starts, strict=True))


def _with_retries(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    for attempt in range(_RETRIES):
        try:
            return fn(*args, **kwargs)
        except OperationalError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


class SqlBudgetStore(DefinitionsFront):
    """``BudgetStore`` on SQL. Give it an engine from ``servewise.catalog`` (migrated to ``0004_gateway``; its
    SQLite connections carry the ``BEGIN IMMEDIATE`` hook this store relies on)."""

    def __init__(
        self,
        engine: Engine,
        *,
        levels_pct: Sequence[int] = DEFAULT_LEVELS_PCT,
        definitions_ttl_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.levels_pct = tuple(levels_pct)
        self.definitions = BudgetDefinitions(engine, ttl_s=definitions_ttl_s)

    # -- definitions -------------------------------------------------------------------------------------------
    async def _seed(self, ref: BudgetRef, now: datetime) -> None:
        await asyncio.to_thread(self._seed_sync, ref, now)

    def _seed_sync(self, ref: BudgetRef, now: datetime) -> None:
        start, end = ref.bounds(now)
        key = (ref.budget_id, start.astimezone(UTC))
        with write_tx(self.engine) as connection:
            _ensure_rows(connection, [key])
            spent = ledger_sum(connection, ref, start, end)
            reserved = _lock(connection, [key])[key][1]
            _write_counter(connection, key, spent, reserved)

    async def delete_budget(self, budget_id: int) -> None:
        await asyncio.to_thread(self.definitions.delete_sync, budget_id)

    # -- counters ----------------------------------------------------------------------------------------------
    async def reserve(
        self,
        request_id: str,
        budgets: Sequence[BudgetRef],
        amount_micro_usd: int,
        now: datetime,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> Reservation | Refusal:
        check_request(request_id, amount_micro_usd)
        text = json.dumps(dict(meta), default=str) if meta is not None else None
        return await asyncio.to_thread(
            _with_retries, self._reserve_sync, request_id, budgets, amount_micro_usd, now, text
        )

    def _reserve_sync(
        self, request_id: str, budgets: Sequence[BudgetRef], amount: int, now: datetime, meta: str | None
    ) -> Reservation | Refusal:
        budgets = list({b.budget_id: b for b in budgets}.values())  # one hold per budget
        parts = []
        for budget in budgets:
            start, end = budget.bounds(now)
            parts.append((budget, start.astimezone(UTC), end))
        reservation = Reservation(request_id, tuple((b, s) for b, s, _ in parts), amount)
        if not parts:
            return reservation
        keys = sorted({(b.budget_id, s) for b, s, _ in parts})
        with write_tx(self.engine) as connection:
            taken = connection.execute(
                select(RESERVATIONS.c.request_id).where(RESERVATIONS.c.request_id == request_id)
            ).first()
            if taken is not None:
                raise UsageError(f"request id {request_id!r} already holds a reservation; use a fresh id")
            _ensure_rows(connection, keys)
            current = _lock(connection, keys)
            for budget, start, end in parts:
                spent, reserved = current[(budget.budget_id, start)]
                if budget.hard_micro_usd is not None and spent + reserved + amount > budget.hard_micro_usd:
                    return Refusal(budget, spent, reserved, amount, end)
            for key in keys:
                spent, reserved = current[key]
                _write_counter(connection, key, spent, reserved + amount)
            connection.execute(
                insert(RESERVATIONS).values(
                    request_id=request_id,
                    budget_ids=json.dumps([k[0] for k in keys]),
                    window_starts=json.dumps([k[1].isoformat() for k in keys]),
                    amount_micro_usd=amount,
                    created_at=datetime.now(UTC),
                    meta=meta,
                )
            )
        return reservation

    def _settle_sync(
        self, items: Sequence[tuple[str, int | None]], write: LedgerWrite | None
    ) -> dict[Key, tuple[int, int]]:
        """Settle (actual) or release (None) by request id, plus ``write`` in the same transaction;
        returns (spent before, spent after) per counter touched."""
        wanted = dict(items)
        with write_tx(self.engine) as connection:
            if write is not None:
                write(connection)
            rows = (
                connection.execute(
                    select(RESERVATIONS)
                    .where(RESERVATIONS.c.request_id.in_(sorted(wanted)))
                    .order_by(RESERVATIONS.c.request_id)
                    .with_for_update()
                ).all()
                if wanted
                else []
            )
            if not rows:
                return {}
            connection.execute(
                delete(RESERVATIONS).where(RESERVATIONS.c.request_id.in_([r.request_id for r in rows]))
            )
            delta: dict[Key, list[int]] = {}
            for row in rows:
                actual = wanted[row.request_id] or 0
                for key in _parts_of(row):
                    change = delta.setdefault(key, [0, 0])
                    change[0] += actual
                    change[1] += int(row.amount_micro_usd)
            keys = sorted(delta)
            current = _lock(connection, keys)
            moved: dict[Key, tuple[int, int]] = {}
            for key in keys:
                spent, reserved = current.get(key, (0, 0))
                if key not in current:  # the budget was deleted meanwhile
                    continue
                add_spent, drop_reserved = delta[key]
                _write_counter(connection, key, spent + add_spent, max(0, reserved - drop_reserved))
                moved[key] = (spent, spent + add_spent)
        return moved

    def _crossings(self, moved: dict[Key, tuple[int, int]], refs: Iterable[BudgetRef]) -> list[Crossing]:
        by_id = {r.budget_id: r for r in refs}
        found: list[Crossing] = []
        for (budget_id, start), (before, after) in sorted(moved.items()):
            if budget_id in by_id:
                found.extend(crossings_between(by_id[budget_id], start, before, after, self.levels_pct))
        return found

    async def settle(self, reservation: Reservation, actual_micro_usd: int) -> list[Crossing]:
        return await self.settle_many([(reservation, actual_micro_usd)])

    async def settle_many(
        self, items: Sequence[tuple[Reservation, int]], *, write: LedgerWrite | None = None
    ) -> list[Crossing]:
        pairs: list[tuple[str, int | None]] = [(r.request_id, actual) for r, actual in items]
        moved = await asyncio.to_thread(_with_retries, self._settle_sync, pairs, write)
        return self._crossings(moved, (b for r, _ in items for b, _ in r.parts))

    async def release(self, reservation: Reservation) -> None:
        await asyncio.to_thread(_with_retries, self._settle_sync, [(reservation.request_id, None)], None)

    async def settle_open(self, request_id: str, actual_micro_usd: int | None) -> bool:
        moved = await asyncio.to_thread(
            _with_retries, self._settle_sync, [(request_id, actual_micro_usd)], None
        )
        return bool(moved)

    async def open_reservations(self) -> list[OpenReservation]:
        def load() -> list[OpenReservation]:
            with self.engine.connect() as connection:
                rows = connection.execute(select(RESERVATIONS).order_by(RESERVATIONS.c.created_at)).all()
            return [
                OpenReservation(
                    r.request_id,
                    _parts_of(r),
                    int(r.amount_micro_usd),
                    as_utc(r.created_at),
                    json.loads(r.meta) if r.meta else None,
                )
                for r in rows
            ]

        return await asyncio.to_thread(load)

    async def usage(self, budgets: Sequence[BudgetRef], now: datetime) -> list[BudgetUsage]:
        bounds = [(b, *b.bounds(now)) for b in budgets]
        values = await self.counters([(b.budget_id, s.astimezone(UTC)) for b, s, _ in bounds])
        return [BudgetUsage(b, s, e, *values[(b.budget_id, s.astimezone(UTC))]) for b, s, e in bounds]

    async def counters(self, keys: Sequence[Key]) -> dict[Key, tuple[int, int]]:
        def load() -> dict[Key, tuple[int, int]]:
            if not keys:
                return {}
            c = USAGE.c
            query = select(c.budget_id, c.window_start, c.spent_micro_usd, c.reserved_micro_usd).where(
                or_(*(and_(c.budget_id == b, c.window_start == w) for b, w in keys))
            )
            with self.engine.connect() as connection:
                found = {(r[0], as_utc(r[1])): (int(r[2]), int(r[3])) for r in connection.execute(query)}
            return {key: found.get(key, (0, 0)) for key in keys}

        return await asyncio.to_thread(load)

    async def set_counters(
        self, values: dict[Key, tuple[int, int]], expected: dict[Key, tuple[int, int]] | None = None
    ) -> list[Key]:
        def store() -> list[Key]:
            keys = sorted(values)
            written: list[Key] = []
            with write_tx(self.engine) as connection:
                _ensure_rows(connection, keys)
                current = _lock(connection, keys)
                for key in keys:
                    if expected is not None and current.get(key, (0, 0)) != expected.get(key, (0, 0)):
                        continue  # a live process changed it since it was read: leave it alone
                    _write_counter(connection, key, *values[key])
                    written.append(key)
            return written

        return await asyncio.to_thread(store) if values else []

    async def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""
