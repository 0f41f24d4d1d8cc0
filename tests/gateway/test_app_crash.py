"""kill -9 a gateway process mid-load, restart it: after its start-up reconcile the counters equal the ledger."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from servewise.gateway import RedisBudgetStore, SqlBudgetStore, create_key, open_gateway_engine, reconcile
from tests.gateway.conftest import MODEL, clean_redis, config_document, start_gateway_process, write_config

MESSAGES: list[Any] = [{"role": "user", "content": "Tell me a story."}]


async def _load(url: str, key: str, stop: threading.Event) -> None:
    """Streams of 10 tokens at real speed, 30 at a time, until ``stop``; errors are expected once the process dies."""
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=5) as client:

        async def one() -> None:
            while not stop.is_set():
                try:
                    stream = await client.chat.completions.create(
                        model=MODEL, messages=MESSAGES, max_tokens=10, stream=True
                    )
                    async for _ in stream:
                        pass
                except openai.APIError:
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(one() for _ in range(30)))


def _with_store(backend: str, engine: Any, redis: tuple[str, str] | None, use: Any) -> Any:
    """``await use(store)`` on a store made and closed inside one event loop (a Redis client is loop-bound)."""

    async def run() -> Any:
        store = RedisBudgetStore(redis[0], engine, prefix=redis[1]) if redis else SqlBudgetStore(engine)
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(run())


async def _read(store: Any) -> tuple[int, int, int]:
    (usage,) = await store.usage(await store.list_budgets(), datetime.now(UTC))
    held = sum(r.amount_micro_usd for r in await store.open_reservations())
    return usage.spent_micro_usd, usage.reserved_micro_usd, held


@pytest.mark.parametrize("backend", ["sql", "redis"])
def test_kill_9_mid_load_then_restart_leaves_counters_equal_to_the_ledger(
    backend: str,
    slow_simulator_url: str,
    sqlite_url: str,
    redis_prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    redis = (request.getfixturevalue("redis_url"), redis_prefix) if backend == "redis" else None
    document = config_document(
        slow_simulator_url,
        database_url=sqlite_url,
        redis_url=redis[0] if redis else None,
        redis_prefix=redis_prefix,
    )
    path = write_config(tmp_path / "gateway.yaml", document)
    engine = open_gateway_engine(sqlite_url)
    try:
        key = create_key(engine, org="acme", name="load").plaintext
        budget = {
            "scope": "org",
            "scope_id": "acme",
            "window": "monthly",
            "soft_micro_usd": None,
            "hard_micro_usd": 10**12,
            "timezone": "UTC",
        }
        _with_store(backend, engine, redis, lambda store: store.set_budget(**budget))
        first = start_gateway_process(path)
        stop = threading.Event()
        loader = threading.Thread(target=lambda: asyncio.run(_load(first.url, key, stop)), daemon=True)
        loader.start()
        deadline = time.monotonic() + 20
        while _rows(engine) < 20 and time.monotonic() < deadline:  # mid-load: rows landing, streams in flight
            time.sleep(0.02)
        first.kill()
        stop.set()
        loader.join(timeout=20)
        assert _rows(engine) >= 20, first.log()[-2000:]

        second = start_gateway_process(path)  # its start-up reconcile runs before /health answers
        second.stop()

        spent, reserved, held = _with_store(backend, engine, redis, _read)
        assert spent == _ledger_total(engine)  # no accounted spend lost, none counted twice
        assert held > 0  # killed mid-load: streams were in flight
        assert reserved == held  # still reserved: exactly the open reservations (the streams killed mid-way)

        before = _ledger_total(engine)

        async def sweep(store: Any) -> tuple[int, int, int]:
            await reconcile(
                engine, store, reservation_ttl_s=0
            )  # once stale, orphans are charged their worst case
            return await _read(store)

        assert _with_store(backend, engine, redis, sweep) == (before + held, 0, 0)
        assert _ledger_total(engine) == before + held  # the killed streams are on the ledger, as `orphaned`
        assert _orphaned_total(engine) == held
    finally:
        engine.dispose()
        if redis is not None:
            clean_redis(*redis)


def _rows(engine: Any) -> int:
    from sqlalchemy import func, select

    from tests.gateway.conftest import SPEND

    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(SPEND)).scalar_one())


def _ledger_total(engine: Any) -> int:
    from sqlalchemy import func, select

    from tests.gateway.conftest import SPEND

    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.sum(SPEND.c.micro_usd), 0))).scalar_one())


def _orphaned_total(engine: Any) -> int:
    from sqlalchemy import func, select

    from tests.gateway.conftest import SPEND

    query = select(func.coalesce(func.sum(SPEND.c.micro_usd), 0)).where(SPEND.c.status == "orphaned")
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
