"""``RedisBudgetStore``: budget counters in Redis so that several gateway processes share one budget.

Definitions stay in SQL (``gw_budgets``, cached ≤ 5 s); only the counters and open reservations live in Redis,
changed by the Lua scripts in ``_budget_lua`` (one atomic step each). Keys start with ``prefix`` (default
``servewise:gw``), so several gateways or test runs can share one Redis. Counter keys expire 40 days after their
window ends (long enough to read last month's usage; the ledger keeps the history).

A settlement after the reservation is gone (settled twice, or swept by reconciliation) changes nothing: settling
is idempotent, which is what lets a restarted process and reconciliation settle the same request safely.

Why import ``redis`` lazily: it is the optional ``servewise[redis]`` extra; a SQLite-only install never needs it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from servewise.errors import ServewiseError, UsageError

from ._budget_defs import BudgetDefinitions, DefinitionsFront, ledger_sum
from ._budget_lua import RESERVE, SET_COUNTERS, SETTLE
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

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["COUNTER_RETENTION", "RedisBudgetStore", "redis_client"]

Key = tuple[int, datetime]
COUNTER_RETENTION = timedelta(days=40)


def redis_client(url: str, *, max_connections: int = 64) -> Redis:
    """A ``redis.asyncio`` client for ``url`` (no connection yet); a one-line error when redis-py is missing.

    Why a blocking pool of ``max_connections``: under a burst, callers wait for a free connection instead of
    opening one per request (or failing with "Too many connections")."""
    try:
        from redis.asyncio import BlockingConnectionPool, Redis
    except ImportError:  # pragma: no cover - redis is installed in the test environment
        raise ServewiseError(
            "redis_url is set but the Redis client is not installed; install servewise[redis]"
        ) from None
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, decode_responses=True
    )
    return Redis.from_pool(pool)


class RedisBudgetStore(DefinitionsFront):
    """``BudgetStore`` with counters in Redis (``redis_url``) and definitions in SQL (``engine``)."""

    def __init__(
        self,
        redis_url: str,
        engine: Engine,
        *,
        prefix: str = "servewise:gw",
        levels_pct: Sequence[int] = DEFAULT_LEVELS_PCT,
        definitions_ttl_s: float = 5.0,
    ) -> None:
        self.redis = redis_client(redis_url)
        self.engine = engine
        self.prefix = prefix
        self.levels_pct = tuple(levels_pct)
        self.definitions = BudgetDefinitions(engine, ttl_s=definitions_ttl_s)
        self._reserve = self.redis.register_script(RESERVE)
        self._settle = self.redis.register_script(SETTLE)
        self._set_counters = self.redis.register_script(SET_COUNTERS)

    # -- keys --------------------------------------------------------------------------------------------------
    def counter_key(self, budget_id: int, window_start: datetime) -> str:
        return f"{self.prefix}:b:{budget_id}:{window_start.astimezone(UTC).isoformat()}"

    def _reservation_key(self, request_id: str) -> str:
        return f"{self.prefix}:r:{request_id}"

    @property
    def _index_key(self) -> str:
        return f"{self.prefix}:rz"

    # -- definitions -------------------------------------------------------------------------------------------
    async def _seed(self, ref: BudgetRef, now: datetime) -> None:
        start, end = ref.bounds(now)

        def ledger_spent() -> int:
            with self.engine.connect() as connection:
                return ledger_sum(connection, ref, start, end)

        spent = await asyncio.to_thread(ledger_spent)
        key = self.counter_key(ref.budget_id, start)
        await self.redis.hset(key, "spent", spent)
        await self.redis.expireat(key, end + COUNTER_RETENTION)

    async def delete_budget(self, budget_id: int) -> None:
        await asyncio.to_thread(self.definitions.delete_sync, budget_id)
        async for key in self.redis.scan_iter(match=f"{self.prefix}:b:{budget_id}:*"):
            await self.redis.delete(key)

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
        budgets = list({b.budget_id: b for b in budgets}.values())  # one hold per budget
        parts = [(b, *b.bounds(now)) for b in budgets]
        reservation = Reservation(
            request_id, tuple((b, s.astimezone(UTC)) for b, s, _ in parts), amount_micro_usd
        )
        if not parts:
            return reservation
        args: list[Any] = [
            amount_micro_usd,
            json.dumps([[b.budget_id, s.astimezone(UTC).isoformat()] for b, s, _ in parts]),
            f"{datetime.now(UTC).timestamp():.3f}",
            request_id,
        ]
        for budget, _, end in parts:
            hard = budget.hard_micro_usd
            args += [-1 if hard is None else hard, int((end + COUNTER_RETENTION).timestamp())]
        args.append(json.dumps(dict(meta), default=str) if meta is not None else "")
        keys = [
            self._reservation_key(request_id),
            self._index_key,
            *(self.counter_key(b.budget_id, s) for b, s, _ in parts),
        ]
        result = await self._reserve(keys=keys, args=args)
        if result[0] == 1:
            return reservation
        if result[0] == -1:
            raise UsageError(f"request id {request_id!r} already holds a reservation; use a fresh id")
        budget, _, end = parts[int(result[1]) - 1]
        return Refusal(budget, int(result[2]), int(result[3]), amount_micro_usd, end)

    async def _settle_keys(
        self, request_id: str, parts: Sequence[Key], actual: int | None
    ) -> dict[Key, tuple[int, int]]:
        keys = [
            self._reservation_key(request_id),
            self._index_key,
            *(self.counter_key(b, s) for b, s in parts),
        ]
        result = await self._settle(keys=keys, args=[-1 if actual is None else actual, request_id])
        if not result:
            return {}
        return {part: (int(result[2 * i]), int(result[2 * i + 1])) for i, part in enumerate(parts)}

    def _crossings(self, moved: dict[Key, tuple[int, int]], refs: dict[int, BudgetRef]) -> list[Crossing]:
        found: list[Crossing] = []
        for (budget_id, start), (before, after) in moved.items():
            if budget_id in refs and after != before:
                found.extend(crossings_between(refs[budget_id], start, before, after, self.levels_pct))
        return found

    async def settle(self, reservation: Reservation, actual_micro_usd: int) -> list[Crossing]:
        return await self.settle_many([(reservation, actual_micro_usd)])

    async def settle_many(
        self, items: Sequence[tuple[Reservation, int]], *, write: LedgerWrite | None = None
    ) -> list[Crossing]:
        """``write`` (the ledger rows) commits in SQL first, then each reservation settles in Redis. A crash in
        between leaves rows whose reservations are still open; reconciliation settles those from the ledger."""
        if write is not None:

            def commit() -> None:
                with self.engine.begin() as connection:
                    write(connection)

            await asyncio.to_thread(commit)
        found: list[Crossing] = []
        for reservation, actual in items:
            parts = [(b.budget_id, s) for b, s in reservation.parts]
            if not parts:
                continue
            moved = await self._settle_keys(reservation.request_id, parts, actual)
            found += self._crossings(moved, {b.budget_id: b for b, _ in reservation.parts})
        return found

    async def release(self, reservation: Reservation) -> None:
        parts = [(b.budget_id, s) for b, s in reservation.parts]
        if parts:
            await self._settle_keys(reservation.request_id, parts, None)

    async def _open(self, request_id: str) -> OpenReservation | None:
        record = await self.redis.hgetall(self._reservation_key(request_id))
        if not record:
            return None
        parts = tuple(
            (int(b), datetime.fromisoformat(s).astimezone(UTC)) for b, s in json.loads(record["parts"])
        )
        created = datetime.fromtimestamp(float(record["created"]), UTC)
        meta = json.loads(record["meta"]) if record.get("meta") else None
        return OpenReservation(request_id, parts, int(record["amount"]), created, meta)

    async def settle_open(self, request_id: str, actual_micro_usd: int | None) -> bool:
        found = await self._open(request_id)
        if found is None:
            await self.redis.zrem(self._index_key, request_id)
            return False
        return bool(await self._settle_keys(request_id, found.parts, actual_micro_usd))

    async def open_reservations(self) -> list[OpenReservation]:
        found = []
        for request_id in await self.redis.zrange(self._index_key, 0, -1):
            record = await self._open(str(request_id))
            if record is not None:
                found.append(record)
        return found

    async def usage(self, budgets: Sequence[BudgetRef], now: datetime) -> list[BudgetUsage]:
        bounds = [(b, *b.bounds(now)) for b in budgets]
        values = await self.counters([(b.budget_id, s.astimezone(UTC)) for b, s, _ in bounds])
        return [BudgetUsage(b, s, e, *values[(b.budget_id, s.astimezone(UTC))]) for b, s, e in bounds]

    async def counters(self, keys: Sequence[Key]) -> dict[Key, tuple[int, int]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for budget_id, start in keys:
                pipe.hmget(self.counter_key(budget_id, start), "spent", "reserved")
            rows = await pipe.execute()
        return {key: (int(row[0] or 0), int(row[1] or 0)) for key, row in zip(keys, rows, strict=True)}

    async def set_counters(
        self, values: dict[Key, tuple[int, int]], expected: dict[Key, tuple[int, int]] | None = None
    ) -> list[Key]:
        """One Lua step for all windows: with ``expected``, a window another process changed is left alone."""
        keys = list(values)
        if not keys:
            return []
        args: list[Any] = []
        for key in keys:
            old = expected.get(key, (0, 0)) if expected is not None else ("", "")
            expiry = int((key[1] + timedelta(days=32) + COUNTER_RETENTION).timestamp())
            args += [old[0], old[1], values[key][0], values[key][1], expiry]
        result = await self._set_counters(keys=[self.counter_key(*k) for k in keys], args=args)
        return [key for key, done in zip(keys, result, strict=True) if int(done) == 1]

    async def close(self) -> None:
        await self.redis.aclose()
