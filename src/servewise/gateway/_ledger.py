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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from servewise.errors import ServewiseError, UsageError

from ._budget_defs import SPEND
from ._budgets import BudgetStore, Crossing, Reservation

__all__ = [
    "DEFAULT_RESERVATION_TTL_S",
    "STATUSES",
    "LedgerWriteError",
    "LedgerWriter",
    "SpendRow",
    "insert_rows",
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


def insert_rows(connection: Connection, rows: Sequence[SpendRow]) -> None:
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
            insert_rows(connection, rows)

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
                    from ._reconcile import release_stale

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
