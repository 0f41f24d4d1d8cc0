"""Budget definitions in SQL (``gw_budgets``), shared by both stores, and the SQL helpers they share.

Why a cache of *all* definitions (refreshed at most every ``ttl_s`` = 5 s, and at once after a change made by this
process): ``budgets_for`` runs on every request; one indexed query per request would cost more than the gateway's
whole overhead target. A budget changed by another process (the CLI) applies within 5 s.

Datetimes: written as aware UTC instants. SQLite keeps no offset, so what it returns is naive; ``as_utc`` reads
both forms back as aware UTC, and because every writer converts to UTC first, equality on ``window_start`` holds
in both databases.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Engine, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from servewise.errors import UsageError

from ._budgets import ACTIONS, SCOPES, BudgetRef
from ._tables import AlertFiredRow, BudgetRow, BudgetUsageRow, SpendRowRecord
from ._windows import WINDOWS, Window, check_timezone

__all__ = ["BudgetDefinitions", "as_utc", "ledger_sum", "scope_filter", "write_tx"]

BUDGETS = cast(Table, BudgetRow.__table__)
USAGE = cast(Table, BudgetUsageRow.__table__)
SPEND = cast(Table, SpendRowRecord.__table__)
FIRED = cast(Table, AlertFiredRow.__table__)
_WRITE_OPTION = "servewise_write"  # servewise.catalog._db: SQLite ``BEGIN IMMEDIATE`` for this transaction


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime from what the database returned (SQLite: naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``, no upgrade deadlock);
    PostgreSQL row locks come from ``SELECT … FOR UPDATE`` in the caller."""
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as connection:
        yield connection


def _ref(row: object) -> BudgetRef:
    r = cast(BudgetRow, row)
    return BudgetRef(
        budget_id=r.id,
        scope=r.scope,
        scope_id=r.scope_id,
        window=cast(Window, r.window),
        timezone=r.timezone,
        soft_micro_usd=r.soft_micro_usd,
        hard_micro_usd=r.hard_micro_usd,
        action=r.action,
        downgrade_route=r.downgrade_route,
    )


def scope_filter(scope: str, scope_id: str) -> object:
    """The ledger rows a budget of ``scope``/``scope_id`` covers."""
    c = SPEND.c
    if scope == "org":
        return c.org_id == scope_id
    if scope == "team":
        return c.team_id == scope_id
    if scope == "key":
        return c.key_id == scope_id
    org_id, _, end_user = scope_id.partition("/")
    return and_(c.org_id == org_id, c.end_user == end_user)


def ledger_sum(connection: Connection, budget: BudgetRef, start: datetime, end: datetime) -> int:
    """Σ micro_usd of the ledger rows a budget covers with ``start ≤ at < end``."""
    query = select(func.coalesce(func.sum(SPEND.c.micro_usd), 0)).where(
        scope_filter(budget.scope, budget.scope_id),  # type: ignore[arg-type]
        SPEND.c.at >= start.astimezone(UTC),
        SPEND.c.at < end.astimezone(UTC),
    )
    return int(connection.execute(query).scalar_one())


def _check(
    scope: str, window: str, soft: int | None, hard: int | None, action: str, route: str | None, tz: str
) -> None:
    if scope not in SCOPES:
        raise UsageError(f"unknown budget scope {scope!r}; use one of {', '.join(SCOPES)}")
    if window not in WINDOWS:
        raise UsageError(f"unknown budget window {window!r}; use one of {', '.join(WINDOWS)}")
    if action not in ACTIONS:
        raise UsageError(f"unknown budget action {action!r}; use one of {', '.join(ACTIONS)}")
    if action == "downgrade" and not route:
        raise UsageError("budget action 'downgrade' needs a downgrade route (the cheaper route's name)")
    if soft is None and hard is None:
        raise UsageError("a budget needs a soft limit, a hard limit or both (dollars > 0)")
    for name, value in (("soft", soft), ("hard", hard)):
        if value is not None and value <= 0:
            raise UsageError(f"budget {name} limit must be > 0 dollars (got {value / 1e6:g})")
    if soft is not None and hard is not None and soft > hard:
        raise UsageError(f"budget soft limit ${soft / 1e6:,.2f} is above the hard limit ${hard / 1e6:,.2f}")
    check_timezone(tz)


class BudgetDefinitions:
    """Reads and writes ``gw_budgets``; ``all()`` is cached for ``ttl_s``."""

    def __init__(self, engine: Engine, *, ttl_s: float = 5.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._cached: list[BudgetRef] = []
        self._loaded_at = -float("inf")
        self._lock = asyncio.Lock()

    def _load_rows(self) -> list[BudgetRef]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(BUDGETS).order_by(BUDGETS.c.id)).all()
        return [_ref(row) for row in rows]

    async def all(self, *, fresh: bool = False) -> list[BudgetRef]:
        if fresh or time.monotonic() - self._loaded_at > self.ttl_s:
            async with self._lock:
                if fresh or time.monotonic() - self._loaded_at > self.ttl_s:
                    self._cached = await asyncio.to_thread(self._load_rows)
                    self._loaded_at = time.monotonic()
        return self._cached

    def invalidate(self) -> None:
        self._loaded_at = -float("inf")

    async def budgets_for(
        self, org_id: str, team_id: str | None, key_id: str, end_user: str | None = None
    ) -> list[BudgetRef]:
        wanted = {("org", org_id), ("key", key_id)}
        if team_id is not None:
            wanted.add(("team", team_id))
        if end_user is not None:
            wanted.add(("end_user", f"{org_id}/{end_user}"))
        found = [b for b in await self.all() if (b.scope, b.scope_id) in wanted]
        return sorted(found, key=lambda b: (SCOPES.index(b.scope), WINDOWS.index(b.window), b.budget_id))

    def set_sync(
        self,
        *,
        scope: str,
        scope_id: str,
        window: str,
        soft_micro_usd: int | None,
        hard_micro_usd: int | None,
        action: str,
        downgrade_route: str | None,
        timezone: str,
    ) -> tuple[BudgetRef, bool]:
        """Insert or update the budget (scope, scope_id, window); returns it and whether its counter must be
        seeded from the ledger: a new budget, or one whose time zone changed (its current window now starts at
        another instant, a counter that has never been written — without the seed it would read $0 mid-window)."""
        _check(scope, window, soft_micro_usd, hard_micro_usd, action, downgrade_route, timezone)
        values = {
            "soft_micro_usd": soft_micro_usd,
            "hard_micro_usd": hard_micro_usd,
            "action": action,
            "downgrade_route": downgrade_route,
            "timezone": timezone,
        }
        key = and_(BUDGETS.c.scope == scope, BUDGETS.c.scope_id == scope_id, BUDGETS.c.window == window)
        with write_tx(self.engine) as connection:
            before = connection.execute(select(BUDGETS.c.timezone).where(key)).scalar_one_or_none()
            changed = connection.execute(update(BUDGETS).where(key).values(**values)).rowcount
            created = not changed
            if created:
                try:
                    connection.execute(
                        insert(BUDGETS).values(scope=scope, scope_id=scope_id, window=window, **values)
                    )
                except IntegrityError:  # pragma: no cover - a concurrent writer created it first
                    connection.execute(update(BUDGETS).where(key).values(**values))
                    created = False
            row = connection.execute(select(BUDGETS).where(key)).one()
        self.invalidate()
        return _ref(row), created or before != timezone

    def delete_sync(self, budget_id: int) -> None:
        with write_tx(self.engine) as connection:
            connection.execute(delete(USAGE).where(USAGE.c.budget_id == budget_id))
            connection.execute(delete(FIRED).where(FIRED.c.budget_id == budget_id))
            gone = connection.execute(delete(BUDGETS).where(BUDGETS.c.id == budget_id)).rowcount
        if not gone:
            raise UsageError(f"no budget with id {budget_id}; `servewise gateway budgets show` lists them")
        self.invalidate()


class DefinitionsFront(ABC):
    """The definition side every ``BudgetStore`` shares: lookups through the cached ``BudgetDefinitions`` and
    ``set_budget``, which seeds the counter from the ledger when a budget is new or moved to another time zone
    (``_seed``: each store writes its own counter)."""

    definitions: BudgetDefinitions

    async def budgets_for(
        self, org_id: str, team_id: str | None, key_id: str, end_user: str | None = None
    ) -> list[BudgetRef]:
        return await self.definitions.budgets_for(org_id, team_id, key_id, end_user)

    async def list_budgets(self) -> list[BudgetRef]:
        return list(await self.definitions.all(fresh=True))

    async def set_budget(
        self,
        *,
        scope: str,
        scope_id: str,
        window: str,
        soft_micro_usd: int | None,
        hard_micro_usd: int | None,
        action: str = "reject",
        downgrade_route: str | None = None,
        timezone: str = "UTC",
    ) -> BudgetRef:
        """Create or change a budget. A new budget — or one moved to another time zone — starts from the ledger's
        spend in its current window; a changed limit applies to the spend already counted."""
        ref, seed = await asyncio.to_thread(
            self.definitions.set_sync,
            scope=scope,
            scope_id=scope_id,
            window=window,
            soft_micro_usd=soft_micro_usd,
            hard_micro_usd=hard_micro_usd,
            action=action,
            downgrade_route=downgrade_route,
            timezone=timezone,
        )
        if seed:
            await self._seed(ref, datetime.now(UTC))
        return ref

    @abstractmethod
    async def _seed(self, ref: BudgetRef, now: datetime) -> None:
        """Set the counter of ``ref``'s current window to the ledger's spend in it."""
