"""The unified spend ledger: one ``gw_spend`` row per request, written in batches off the request path, and the
reconciliation that makes the budget counters agree with it after a crash.

Why the ledger is the truth: it is durable SQL, one row per request. Counters (Redis or ``gw_budget_usage``) are a
fast, atomic *index* of it for admission.

How a request's spend lands (``LedgerWriter``):

1. on completion the proxy calls ``add(row, reservation)`` — a list append, it never waits for the database;
2. the writer task takes up to ``batch_rows`` rows every ``batch_interval_s`` (or at once when a batch is full) and
   writes them together with the settlement of their reservations: in ONE transaction with ``SqlBudgetStore``;
   with ``RedisBudgetStore`` the SQL commit comes first, then one idempotent Lua settle per reservation.
   Until then the request's worst case stays reserved, so a batch in flight can only make admission stricter;
3. a failed write keeps the batch at the head of the queue and retries with back-off (logged each time; rows are
   never dropped); ``flush()`` raises the error to its caller; ``close()`` retries ``close_attempts`` times and
   then raises ``LedgerWriteError`` with the rows still in ``unwritten``.

Crash semantics (kill -9 at any moment):

* rows still in the queue (and requests in flight) are lost *together with* their settlement: their reservations
  stay open, counted as ``reserved``; once older than ``reservation_ttl_s`` reconciliation *charges* each its
  reserved worst case as a ``status='orphaned'`` ledger row (``release_stale`` says why);
* Redis store only: a crash between the SQL commit and the Lua settle leaves rows whose reservations are open;
  ``reconcile`` settles each of them from its ledger row;
* counters that differ from the ledger for any other reason (Redis restarted without persistence, a budget
  created mid-window, a hand edit) are set to the ledger's sums for the current window.

After ``reconcile``: for every budget's current window, ``spent`` = Σ ledger ``micro_usd`` of the rows it covers
(``at`` in the window) and ``reserved`` = Σ of the open reservations younger than the TTL — ledger and counters
agree. No accounted spend is lost: what a crash loses is the exact cost of the queued rows and requests in flight,
which are then billed at their worst case (an upper bound) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, case, func, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from servewise.errors import ServewiseError, UsageError

from ._budget_defs import SPEND, ledger_sum
from ._budgets import BudgetStore, Crossing, OpenReservation, Reservation
from ._tables import SpendRowRecord

__all__ = [
    "REPORT_BY",
    "STATUSES",
    "CounterFix",
    "LedgerWriteError",
    "LedgerWriter",
    "ReconcileReport",
    "SpendRow",
    "orphan_row",
    "reconcile",
    "release_stale",
    "spend_report",
]

log = logging.getLogger("servewise.gateway.ledger")
STATUSES = ("ok", "error", "cancelled", "rejected", "cache_hit", "orphaned")
DEFAULT_RESERVATION_TTL_S = 3600.0
OnCrossings = Callable[[list[Crossing]], Awaitable[object]]


class LedgerWriteError(ServewiseError):
    """Spend rows could not be written to the ledger database (they are kept, not dropped)."""


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One request's line in the ledger. ``at`` is the admission time (the ``now`` given to ``reserve``), so the
    row falls in the same budget window as its reservation."""

    request_id: str
    at: datetime
    org_id: str
    team_id: str | None
    key_id: str
    end_user: str | None
    route: str
    model: str
    decision: str
    prompt_tokens: int
    completion_tokens: int
    micro_usd: int
    status: str
    latency_ms: float
    cached: bool

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise UsageError(f"spend row status {self.status!r}: use one of {', '.join(STATUSES)}")
        if self.at.tzinfo is None:
            raise UsageError("spend row `at` must be timezone-aware (e.g. datetime.now(UTC))")
        if self.micro_usd < 0 or self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise UsageError("spend row amounts and token counts must be ≥ 0")

    def values(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.astimezone(UTC)}


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err)
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def _insert_rows(connection: Connection, rows: Sequence[SpendRow]) -> None:
    """Insert, skipping request ids already present: a retried batch never duplicates a row."""
    if not rows:
        return
    values = [r.values() for r in rows]
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        connection.execute(
            pg_insert(SPEND).values(values).on_conflict_do_nothing(index_elements=["request_id"])
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        connection.execute(
            sqlite_insert(SPEND).values(values).on_conflict_do_nothing(index_elements=["request_id"])
        )
    else:  # pragma: no cover - other databases: skip the ids already there
        present = set(
            connection.execute(
                select(SPEND.c.request_id).where(SPEND.c.request_id.in_([r.request_id for r in rows]))
            ).scalars()
        )
        fresh = [v for v in values if v["request_id"] not in present]
        if fresh:
            connection.execute(insert(SPEND), fresh)


class LedgerWriter:
    """Batched, non-blocking ledger writes that also settle the requests' reservations (see module docstring).

    Life cycle: ``await start()`` → ``add(...)`` from request handlers → ``await close()`` at shutdown.
    """

    def __init__(
        self,
        engine: Engine,
        store: BudgetStore | None = None,
        *,
        batch_rows: int = 500,
        batch_interval_s: float = 0.2,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 30.0,
        close_attempts: int = 3,
        on_crossings: OnCrossings | None = None,
        sweep_every_s: float | None = 300.0,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
    ) -> None:
        if batch_rows < 1 or batch_interval_s <= 0:
            raise UsageError("ledger batch_rows must be ≥ 1 and batch_interval_s > 0")
        self.engine = engine
        self.store = store
        self.batch_rows = batch_rows
        self.batch_interval_s = batch_interval_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.close_attempts = close_attempts
        self.on_crossings = on_crossings
        self.sweep_every_s = sweep_every_s
        self.reservation_ttl_s = reservation_ttl_s
        self._queue: list[tuple[SpendRow, Reservation | None]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.rows_written = 0
        self.rejected: list[SpendRow] = []
        """Rows the database refused for their content (see ``_write_one_batch``); logged, never silently lost."""
        self._isolate = 0
        """Rows still to write one by one after a batch was refused for its content."""
        self.write_failures = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        """Rows accepted and not yet committed."""
        return len(self._queue)

    @property
    def unwritten(self) -> list[SpendRow]:
        return [row for row, _ in self._queue]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="servewise-ledger-writer")

    def add(self, row: SpendRow, reservation: Reservation | None = None) -> None:
        """Queue a row (and the reservation its amount settles); returns at once."""
        if self._closing:
            raise LedgerWriteError("the ledger writer is closed; spend rows must be added before close()")
        self._queue.append((row, reservation))
        if len(self._queue) >= self.batch_rows:
            self._wake.set()

    async def _write_one_batch(self) -> int:
        """Commit the head of the queue (rows + settlements); the rows leave the queue only after the commit.

        Why the row-by-row retry: a row the database refuses for its *content* (``DataError``/``IntegrityError``,
        e.g. an over-long id) would otherwise block every row behind it forever. Such a batch is retried one row
        at a time; a row refused on its own moves to ``rejected`` and is logged in full (no secrets in it) — its
        reservation stays open until the stale-reservation sweep releases it. Connection-level errors
        (``OperationalError``: database down, locked, table missing) keep the whole batch for the next retry.
        """
        size = self.batch_rows if self._isolate == 0 else 1
        try:
            return await self._write_head(size)
        except (DataError, IntegrityError) as err:
            if size > 1:
                self._isolate = min(len(self._queue), size)
                return 0
            row, _ = self._queue.pop(0)
            self.rejected.append(row)
            self._isolate = max(0, self._isolate - 1)
            log.error(
                "ledger refused a spend row, kept in LedgerWriter.rejected (%s): %r", _first_line(err), row
            )
            return 0

    async def _write_head(self, size: int) -> int:
        batch = self._queue[:size]
        if not batch:
            return 0
        rows = [row for row, _ in batch]
        settlements = [(res, row.micro_usd) for row, res in batch if res is not None]

        def write(connection: Connection) -> None:
            _insert_rows(connection, rows)

        crossings: list[Crossing] = []
        if self.store is not None:
            crossings = await self.store.settle_many(settlements, write=write)
        else:

            def commit() -> None:
                with self.engine.begin() as connection:
                    write(connection)

            await asyncio.to_thread(commit)
        del self._queue[: len(batch)]
        self.rows_written += len(batch)
        self._isolate = max(0, self._isolate - len(batch)) if size == 1 else 0
        if crossings and self.on_crossings is not None:
            try:
                await self.on_crossings(crossings)
            except Exception:  # the alerter must never stop the ledger
                log.exception("budget alert hook failed for %d crossing(s)", len(crossings))
        return len(batch)

    async def flush(self) -> None:
        """Write everything queued so far; raises the database error if a write fails (rows stay queued)."""
        async with self._lock:
            while self._queue:
                await self._write_one_batch()

    async def _run(self) -> None:
        delay = self.retry_initial_s
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + (self.sweep_every_s or math.inf)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.batch_interval_s)
            self._wake.clear()
            try:
                async with self._lock:
                    while self._queue:
                        await self._write_one_batch()
                delay = self.retry_initial_s
            except Exception as err:
                self.write_failures += 1
                self.last_error = _first_line(err)
                log.error(
                    "ledger write failed (%s); %d row(s) kept, retrying in %.1f s",
                    self.last_error,
                    len(self._queue),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self.retry_max_s, delay * 2)
                continue
            if self.store is not None and loop.time() >= next_sweep:
                next_sweep = loop.time() + (self.sweep_every_s or math.inf)
                try:
                    await release_stale(self.engine, self.store, ttl_s=self.reservation_ttl_s)
                except Exception:
                    log.exception("sweeping stale reservations failed; the next sweep retries")

    async def close(self) -> None:
        """Stop the writer and flush; after ``close_attempts`` failed attempts raise ``LedgerWriteError``."""
        self._closing = True
        if self._task is not None:
            async with self._lock:  # never cancel the writer in the middle of a batch
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        delay = self.retry_initial_s
        for attempt in range(1, self.close_attempts + 1):
            try:
                await self.flush()
                return
            except Exception as err:
                self.write_failures += 1
                self.last_error = _first_line(err)
                log.error("ledger flush at shutdown failed (attempt %d): %s", attempt, self.last_error)
                if attempt < self.close_attempts:
                    await asyncio.sleep(delay)
                    delay = min(self.retry_max_s, delay * 2)
        raise LedgerWriteError(
            f"{len(self._queue)} spend row(s) could not be written to the ledger ({self.last_error}); they are "
            "kept in LedgerWriter.unwritten — check the database and flush again; their reservations stay open "
            "until reconcile releases them"
        )


# -- reconciliation -----------------------------------------------------------------------------------------------
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
                _insert_rows(connection, [row])

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


# -- reports ------------------------------------------------------------------------------------------------------
REPORT_BY = {
    "tenant": "org_id",
    "org": "org_id",
    "team": "team_id",
    "key": "key_id",
    "end_user": "end_user",
    "route": "route",
    "model": "model",
    "decision": "decision",
    "status": "status",
}


def spend_report(
    engine: Engine, *, by: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Spend grouped by one dimension, most dollars first: requests, refused, cache hits, tokens, dollars."""
    if by not in REPORT_BY:
        raise UsageError(f"spend report: cannot group by {by!r}; use one of {', '.join(REPORT_BY)}")
    table = cast(Table, SpendRowRecord.__table__)
    column = table.c[REPORT_BY[by]]
    query = select(
        column,
        func.count(),
        func.sum(case((table.c.status == "rejected", 1), else_=0)),
        func.sum(case((table.c.cached.is_(True), 1), else_=0)),
        func.coalesce(func.sum(table.c.prompt_tokens), 0),
        func.coalesce(func.sum(table.c.completion_tokens), 0),
        func.coalesce(func.sum(table.c.micro_usd), 0),
    ).group_by(column)
    if since is not None:
        query = query.where(table.c.at >= since.astimezone(UTC))
    if until is not None:
        query = query.where(table.c.at < until.astimezone(UTC))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    report = [
        {
            by: value,
            "requests": int(requests),
            "rejected": int(rejected or 0),
            "cache_hits": int(cache_hits or 0),
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "micro_usd": int(micro),
            "usd": int(micro) / 1e6,
        }
        for value, requests, rejected, cache_hits, prompt, completion, micro in rows
    ]
    return sorted(report, key=lambda r: (-r["micro_usd"], str(r[by])))
