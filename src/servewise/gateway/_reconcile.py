"""Reconciliation: make the budget counters agree with the ledger at start-up, after a crash.

The ledger is the truth (``_ledger``); this settles open reservations that already have a ledger row, charges the
orphaned ones (older than the TTL, no row) their worst case, and sets the counters of every budget's current window
to the ledger's sums — compare-and-set, so a live peer's changes are never overwritten. Crash semantics in
``_ledger``'s docstring and docs/gateway-budgets.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from ._budget_defs import SPEND, ledger_sum
from ._budgets import BudgetStore, OpenReservation
from ._ledger import DEFAULT_RESERVATION_TTL_S, SpendRow, insert_rows

__all__ = ["CounterFix", "ReconcileReport", "orphan_row", "reconcile", "release_stale"]

log = logging.getLogger("servewise.gateway.ledger")


@dataclass(frozen=True, slots=True)
class CounterFix:
    budget_id: int
    window_start: datetime
    spent_before_micro_usd: int
    spent_after_micro_usd: int
    reserved_before_micro_usd: int
    reserved_after_micro_usd: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    settled: tuple[str, ...] = ()
    """Open reservations that had a ledger row: settled from it."""
    released: tuple[str, ...] = ()
    """Open reservations older than the TTL without a ledger row and without tenancy (``meta``): released."""
    fixes: tuple[CounterFix, ...] = field(default=())
    """Counters that disagreed with the ledger, before and after."""
    charged: tuple[str, ...] = ()
    """Orphaned reservations (older than the TTL, no ledger row): billed their worst case, ``status='orphaned'``."""
    skipped: tuple[tuple[int, datetime], ...] = ()
    """(budget id, window start) that disagreed but changed under a live process meanwhile: left alone."""

    @property
    def changed(self) -> bool:
        return bool(self.settled or self.released or self.fixes or self.charged)


def _ledger_amounts(engine: Engine, request_ids: Sequence[str]) -> dict[str, int]:
    if not request_ids:
        return {}
    found: dict[str, int] = {}
    with engine.connect() as connection:
        for chunk_start in range(0, len(request_ids), 500):
            chunk = request_ids[chunk_start : chunk_start + 500]
            query = select(SPEND.c.request_id, SPEND.c.micro_usd).where(SPEND.c.request_id.in_(chunk))
            found.update({r[0]: int(r[1]) for r in connection.execute(query)})
    return found


def orphan_row(item: OpenReservation) -> SpendRow | None:
    """The ledger row of an orphaned reservation: its worst case, billed to the tenant it was admitted for
    (``status='orphaned'``, tokens unknown = 0); ``None`` when the reservation carries no tenancy (``meta``)."""
    meta = item.meta or {}
    org_id, key_id = meta.get("org_id"), meta.get("key_id")
    if not isinstance(org_id, str) or not isinstance(key_id, str):
        return None
    try:
        at = datetime.fromisoformat(str(meta.get("at")))
    except ValueError:
        at = item.created_at
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    def text(name: str, default: str | None = None) -> str | None:
        value = meta.get(name)
        return value if isinstance(value, str) else default

    return SpendRow(
        request_id=item.request_id,
        at=at,
        org_id=org_id,
        team_id=text("team_id"),
        key_id=key_id,
        end_user=text("end_user"),
        route=text("route", "unknown") or "unknown",
        model=text("model", "unknown") or "unknown",
        decision=text("decision", "unknown") or "unknown",
        prompt_tokens=0,
        completion_tokens=0,
        micro_usd=item.amount_micro_usd,
        status="orphaned",
        latency_ms=0.0,
        cached=False,
    )


async def release_stale(
    engine: Engine,
    store: BudgetStore,
    *,
    now: datetime | None = None,
    ttl_s: float = DEFAULT_RESERVATION_TTL_S,
) -> tuple[list[str], list[str], list[str]]:
    """Settle open reservations that already have a ledger row; close those older than ``ttl_s`` that have none.

    Why an orphan is *charged* its worst case, not released: a reservation without a ledger row after the TTL
    belongs to a request whose process died (``kill -9``, OOM) between admission and the ledger write. The
    upstream most likely served it — a hosted API bills a request that completed on its side whether or not the
    answer was delivered — and its true cost is lost with the process. Releasing it would record $0 for spend
    that probably happened; charging the reserved worst case (an upper bound of what the request could cost)
    keeps the budget a budget. The charge is a ledger row with ``status='orphaned'`` (tokens 0, the tenant, route
    and model from the reservation), written first and then settled, so a crash in between is settled from the
    ledger next time. A reservation without that information (made without ``meta``) is released as before.

    Returns (settled ids, charged ids, released ids)."""
    now = now or datetime.now(UTC)
    opened = await store.open_reservations()
    amounts = await asyncio.to_thread(_ledger_amounts, engine, [o.request_id for o in opened])
    settled, charged, released = [], [], []
    for item in opened:
        if item.request_id in amounts:
            if await store.settle_open(item.request_id, amounts[item.request_id]):
                settled.append(item.request_id)
            continue
        if now - item.created_at <= timedelta(seconds=ttl_s):
            continue  # may belong to a live request (of this or another process)
        row = orphan_row(item)
        if row is None:
            if await store.settle_open(item.request_id, None):
                released.append(item.request_id)
            continue

        def insert_row(row: SpendRow = row) -> None:
            with engine.begin() as connection:
                insert_rows(connection, [row])

        await asyncio.to_thread(insert_row)
        if await store.settle_open(item.request_id, row.micro_usd):
            charged.append(item.request_id)
            log.warning(
                "reservation %s orphaned (no ledger row after %.0f s): charged its worst case $%.6f to org %s",
                item.request_id,
                ttl_s,
                row.micro_usd / 1e6,
                row.org_id,
            )
    return settled, charged, released


async def reconcile(
    engine: Engine,
    store: BudgetStore,
    *,
    now: datetime | None = None,
    reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
) -> ReconcileReport:
    """Make the counters of every budget's current window agree with the ledger (call at start-up, before
    serving). See the module docstring for what it fixes and why.

    Safe while other gateway processes serve from the same counters: the counters are read FIRST, the target
    values are computed from the ledger and the open reservations, and the write is a compare-and-set — a window
    that any process reserved or settled in meanwhile is left alone (it is named in ``ReconcileReport.skipped``).
    A ledger row whose reservation is still open (committed, settle pending) is not counted as spent: its
    settle will add it."""
    now = now or datetime.now(UTC)
    settled, charged, released = await release_stale(engine, store, now=now, ttl_s=reservation_ttl_s)
    budgets = await store.list_budgets()
    windows = [(b, *b.bounds(now)) for b in budgets]
    keys = [(b.budget_id, start.astimezone(UTC)) for b, start, _ in windows]
    current = await store.counters(keys)

    def sums() -> list[int]:
        with engine.connect() as connection:
            return [ledger_sum(connection, b, start, end) for b, start, end in windows]

    spent = dict(zip(keys, await asyncio.to_thread(sums), strict=True))
    opened = await store.open_reservations()
    pending = await asyncio.to_thread(_ledger_amounts, engine, [o.request_id for o in opened])
    held: dict[tuple[int, datetime], int] = {}
    for item in opened:
        for part in item.parts:
            held[part] = held.get(part, 0) + item.amount_micro_usd
            if item.request_id in pending and part in spent:
                spent[part] -= pending[item.request_id]
    wanted = {key: (max(0, spent[key]), held.get(key, 0)) for key in keys}
    changed = {key: value for key, value in wanted.items() if current[key] != value}
    written = set(await store.set_counters(changed, {key: current[key] for key in changed}))
    fixes = tuple(
        CounterFix(key[0], key[1], current[key][0], value[0], current[key][1], value[1])
        for key, value in sorted(changed.items())
        if key in written
    )
    skipped = tuple(sorted(key for key in changed if key not in written))
    if settled or charged or released or fixes or skipped:
        log.warning(
            "reconcile: settled %d, charged %d orphaned, released %d reservation(s), corrected %d counter(s), "
            "left %d counter(s) that a live process changed meanwhile",
            len(settled),
            len(charged),
            len(released),
            len(fixes),
            len(skipped),
        )
    return ReconcileReport(tuple(settled), tuple(released), fixes, tuple(charged), skipped)
