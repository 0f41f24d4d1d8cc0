"""The issue's concurrency test, end to end: 200 concurrent requests against a hard budget that admits 100.

Each request's worst case is (11 prompt + 9 max) tokens × 1,000 µ$ = 20,000 µ$ and the simulator always generates
``max_tokens``, so the actual cost equals the worst case and a $2.00 budget admits exactly 100. Whatever the
interleaving: recorded spend never exceeds the budget, every admitted request has its ledger row, every refused
one got a 429 naming the budget — on the SQL store (SQLite, PostgreSQL), on Redis, and with two gateway processes
(one a ``servewise gateway --config`` subprocess) sharing one Redis.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from servewise.gateway import GatewayConfig
from tests.gateway.conftest import (
    MODEL,
    RunningGateway,
    clean_redis,
    config_document,
    serve_gateway,
    start_gateway_process,
    write_config,
)

REQUESTS = 200
WORST_CASE_MICRO_USD = 20_000
BUDGET_MICRO_USD = 2_000_000
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello in twelve words."}]


async def _one(client: openai.AsyncOpenAI, stream: bool) -> tuple[str, str]:
    try:
        if stream:
            chunks = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, max_tokens=9, stream=True
            )
            async for _ in chunks:
                pass
        else:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=9)
        return "ok", ""
    except openai.RateLimitError as err:
        return "429", str(err.response.json()["error"]["message"])


async def _burst(urls: list[str], key: str) -> list[tuple[str, str]]:
    clients = [openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0) for u in urls]
    try:
        calls = [_one(clients[i % len(clients)], stream=i % 2 == 0) for i in range(REQUESTS)]
        return list(await asyncio.gather(*calls))
    finally:
        for client in clients:
            await client.close()


def _check(gateway: RunningGateway, answers: list[tuple[str, str]]) -> None:
    admitted = sum(1 for status, _ in answers if status == "ok")
    refused = [message for status, message in answers if status == "429"]
    assert admitted + len(refused) == REQUESTS
    assert 0 < admitted <= BUDGET_MICRO_USD // WORST_CASE_MICRO_USD
    assert admitted >= 90  # the budget is used, not refused wholesale
    assert all("org 'acme' monthly budget $2.00 would be exceeded" in m for m in refused)
    rows = gateway.wait_for_rows(REQUESTS)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == admitted  # none lost
    assert len([r for r in rows if r["status"] == "rejected"]) == len(refused)
    spent = sum(r["micro_usd"] for r in rows)
    assert spent == admitted * WORST_CASE_MICRO_USD <= BUDGET_MICRO_USD
    (usage,) = gateway.usage()
    assert usage.spent_micro_usd == spent  # the counters agree with the ledger
    assert usage.reserved_micro_usd == 0


def _run_burst(gateway: RunningGateway, urls: list[str] | None = None) -> None:
    key = gateway.new_key(org="acme", team=None)
    gateway.set_budget(scope="org", scope_id="acme", hard_micro_usd=BUDGET_MICRO_USD)
    answers = asyncio.run(_burst(urls or [gateway.url], key))
    _check(gateway, answers)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_gateway(request: pytest.FixtureRequest, simulator_url: str) -> Iterator[RunningGateway]:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    yield from serve_gateway(GatewayConfig.model_validate(config_document(simulator_url, database_url=url)))


def test_200_concurrent_requests_never_overspend_on_the_sql_store(sql_gateway: RunningGateway) -> None:
    _run_burst(sql_gateway)


@pytest.fixture
def redis_gateway(
    simulator_url: str, sqlite_url: str, redis_url: str, redis_prefix: str
) -> Iterator[RunningGateway]:
    document = config_document(
        simulator_url, database_url=sqlite_url, redis_url=redis_url, redis_prefix=redis_prefix
    )
    try:
        yield from serve_gateway(GatewayConfig.model_validate(document))
    finally:
        clean_redis(redis_url, redis_prefix)


def test_200_concurrent_requests_never_overspend_on_redis(redis_gateway: RunningGateway) -> None:
    assert type(redis_gateway.services.store).__name__ == "RedisBudgetStore"  # type: ignore[union-attr]
    _run_burst(redis_gateway)


def test_two_gateway_processes_share_one_redis_budget(
    simulator_url: str, postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    document = config_document(
        simulator_url, database_url=postgres_url, redis_url=redis_url, redis_prefix=redis_prefix
    )
    config = GatewayConfig.model_validate(document)
    try:
        for gateway in serve_gateway(config):
            key = gateway.new_key(org="acme", team=None)
            gateway.set_budget(scope="org", scope_id="acme", hard_micro_usd=BUDGET_MICRO_USD)
            other = start_gateway_process(write_config(tmp_path / "gateway.yaml", document))
            try:
                answers = asyncio.run(_burst([gateway.url, other.url], key))
            finally:
                other.stop()  # SIGTERM: its ledger is flushed before it exits
            # uvicorn shuts down gracefully on SIGTERM (lifespan: ledger flushed), then re-raises the signal
            assert other.process.returncode in (0, -signal.SIGTERM), other.log()[-2000:]
            _check(gateway, answers)
            assert other.log()  # it ran with --log-level debug, and never logged the key's secret:
            assert key.split("-", 3)[3] not in other.log()
            served = {r["request_id"] for r in gateway.ledger()}
            assert len(served) == REQUESTS
    finally:
        clean_redis(redis_url, redis_prefix)
