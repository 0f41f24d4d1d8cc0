"""A client that hangs up mid-stream pays for the tokens it was sent, and its reservation is released."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servewise.gateway import GatewayConfig
from tests.gateway.conftest import MICRO_USD_PER_TOKEN, MODEL, RunningGateway, config_document, serve_gateway


@pytest.fixture
def slow_gateway(slow_simulator_url: str, sqlite_url: str) -> Iterator[RunningGateway]:
    config = GatewayConfig.model_validate(config_document(slow_simulator_url, database_url=sqlite_url))
    yield from serve_gateway(config)


@pytest.mark.parametrize("k", [1, 5])
def test_a_cancelled_stream_is_billed_for_the_delivered_chunks(slow_gateway: RunningGateway, k: int) -> None:
    key = slow_gateway.new_key(org="acme", team="search")
    slow_gateway.set_budget(scope="org", scope_id="acme", hard_micro_usd=10_000_000)
    stream = slow_gateway.client(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count."}], max_tokens=500, stream=True
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received == k:
            break
    stream.close()

    (row,) = slow_gateway.wait_for_rows(1)
    assert row["status"] == "cancelled"
    assert k <= row["completion_tokens"] <= k + 1  # ± the chunk in flight when the client hung up
    assert row["completion_tokens"] < 500
    prompt = 4 + 2  # 4 per message + ceil(len("Count.") / 4)
    assert row["prompt_tokens"] == prompt
    assert row["micro_usd"] == (prompt + row["completion_tokens"]) * MICRO_USD_PER_TOKEN
    (usage,) = slow_gateway.usage()
    assert usage.spent_micro_usd == row["micro_usd"]  # settled at the delivered cost …
    assert usage.reserved_micro_usd == 0  # … and the 500-token worst case released
