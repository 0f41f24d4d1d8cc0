"""The gateway end to end with the official ``openai`` SDK and the simulator as the upstream: answers, spend
recorded in the ledger, and every refusal in OpenAI's error format (401, 403, 400, 404, 429)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import openai
import pytest

from servewise.gateway import parse_key
from tests.gateway.conftest import MICRO_USD_PER_TOKEN, MODEL, RunningGateway

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello in twelve words."}]
PROMPT_TOKENS = 4 + 7  # the gateway's (and the simulator's) estimate: 4 per message + ceil(27 chars / 4)


def test_sdk_chat_and_completions_are_served_and_billed(gateway: RunningGateway) -> None:
    key = gateway.new_key()
    client = gateway.client(key)

    chat = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=6)
    text = client.completions.create(model=MODEL, prompt="abcdefgh", max_tokens=3)

    assert chat.usage is not None and chat.usage.completion_tokens == 6
    assert chat.usage.prompt_tokens == PROMPT_TOKENS
    assert text.usage is not None and text.usage.completion_tokens == 3
    rows = gateway.wait_for_rows(2)
    by_model = {(r["prompt_tokens"], r["completion_tokens"]): r for r in rows}
    chat_row = by_model[(PROMPT_TOKENS, 6)]
    assert chat_row["status"] == "ok" and chat_row["route"] == "local" and chat_row["decision"] == "local"
    assert chat_row["micro_usd"] == (PROMPT_TOKENS + 6) * MICRO_USD_PER_TOKEN
    assert (chat_row["org_id"], chat_row["team_id"]) == ("acme", "acme/search")
    assert chat_row["key_id"] == parse_key(key)[0]  # type: ignore[index]
    assert by_model[(2, 3)]["micro_usd"] == 5 * MICRO_USD_PER_TOKEN
    assert all(r["latency_ms"] > 0 for r in rows)


def test_sdk_streaming_passes_chunks_through_and_bills_the_usage(gateway: RunningGateway) -> None:
    client = gateway.client(gateway.new_key())
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8, stream=True)
    chunks = list(stream)
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 8  # token by token, as the upstream sent them
    assert all(
        c.usage is None for c in chunks
    )  # the client did not ask for usage: the gateway's own is dropped

    with_usage = list(
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens == 4
    rows = gateway.wait_for_rows(2)
    assert sorted(r["completion_tokens"] for r in rows) == [4, 8]
    assert all(r["status"] == "ok" for r in rows)
    assert sum(r["micro_usd"] for r in rows) == (2 * PROMPT_TOKENS + 12) * MICRO_USD_PER_TOKEN


def test_models_lists_what_the_key_may_use(gateway: RunningGateway) -> None:
    assert [m.id for m in gateway.client(gateway.new_key()).models.list()] == [MODEL]
    limited = gateway.new_key(models=("other-model",))
    assert [m.id for m in gateway.client(limited).models.list()] == []


def _error(err: openai.APIStatusError) -> dict[str, Any]:
    body = err.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_auth_failures_are_401_and_403(gateway: RunningGateway) -> None:
    key = gateway.new_key()
    missing = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert missing.status_code == 401
    assert "missing API key" in missing.json()["error"]["message"]

    with pytest.raises(openai.AuthenticationError) as unknown:
        gateway.client(f"sk-sw-{'a' * 12}-{'b' * 43}").chat.completions.create(model=MODEL, messages=MESSAGES)
    assert _error(unknown.value)["code"] == "invalid_api_key"
    assert _error(unknown.value)["type"] == "invalid_request_error"  # OpenAI's own 401 shape
    models = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert models.status_code == 401 and models.json()["error"]["code"] == "invalid_api_key"

    assert gateway.services is not None
    from servewise.gateway import revoke_key

    revoke_key(gateway.engine, parse_key(key)[0])  # type: ignore[index]
    gateway.services.keys.forget(parse_key(key)[0])  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError) as revoked:
        gateway.client(key).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    assert revoked.value.response.status_code == 403 and _error(revoked.value)["code"] == "key_revoked"

    limited = gateway.new_key(models=("other-model",))
    with pytest.raises(openai.PermissionDeniedError) as not_allowed:
        gateway.client(limited).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    assert _error(not_allowed.value)["code"] == "model_not_allowed"
    assert gateway.ledger() == []  # nothing admitted, nothing recorded


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b'{"messages": []}', "model", "`model` is required"),
        (b'{"model": "Llama-3.1-8B", "messages": "hi"}', "messages", "non-empty array"),
        (b'{"model": "Llama-3.1-8B", "messages": [{"content": "x"}]}', "messages", "string `role`"),
        (
            b'{"model": "Llama-3.1-8B", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens",
            ">= 1",
        ),
        (
            b'{"model": "Llama-3.1-8B", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
            "true or false",
        ),
    ],
)
def test_malformed_bodies_are_400_in_openai_format(
    gateway: RunningGateway, body: bytes, param: str | None, words: str
) -> None:
    headers = {"Authorization": f"Bearer {gateway.new_key()}", "Content-Type": "application/json"}
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", content=body, headers=headers)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and words in error["message"]


def test_unknown_model_is_404(gateway: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client(gateway.new_key()).chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert (
        _error(caught.value)["code"] == "model_not_found" and "/v1/models" in _error(caught.value)["message"]
    )


def test_a_request_over_budget_is_429_with_the_budget_and_its_reset(gateway: RunningGateway) -> None:
    key = gateway.new_key(org="tiny", team="t")
    # worst case of one request: (11 prompt + 10 max) tokens × 1,000 µ$ = $0.021; the budget holds $0.03
    gateway.set_budget(scope="team", scope_id="tiny/t", window="monthly", hard_micro_usd=30_000)
    client = gateway.client(key)
    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=10)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=10)
    error = _error(caught.value)
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded"
    assert "team 'tiny/t' monthly budget $0.03 would be exceeded" in error["message"]
    assert "it resets" in error["message"] and "UTC" in error["message"]
    retry_after = int(caught.value.response.headers["Retry-After"])
    assert 0 < retry_after <= 31 * 24 * 3600
    rows = gateway.wait_for_rows(2)
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["micro_usd"] == 0
    assert sum(r["micro_usd"] for r in rows) == 21 * MICRO_USD_PER_TOKEN  # only the served one is spend


def test_no_secret_is_ever_logged(gateway: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = gateway.new_key()
    client = gateway.client(key)
    client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    list(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MESSAGES)
    gateway.wait_for_rows(2)
    secret = parse_key(key)[1]  # type: ignore[index]
    assert caplog.records, "the test must capture the gateway's (and httpx's) debug logs"
    assert secret not in caplog.text and key not in caplog.text


class _AlwaysFirst:
    """A routing policy (the protocol is pluggable) that always picks the first route offered."""

    def decide(self, facts: Any, routes: Any, state: Any) -> Any:
        from servewise.gateway import RouteDecision

        return RouteDecision(route=routes[0].name, label="local", fallbacks=(), reason="first")


def test_a_downgrade_budget_sends_a_refused_request_to_the_cheaper_route(
    simulator_url: str, sqlite_url: str
) -> None:
    from servewise.gateway import GatewayConfig
    from tests.gateway.conftest import config_document, serve_gateway

    document = config_document(simulator_url, database_url=sqlite_url)
    cheap = {
        "name": "cheap",
        "url": simulator_url,
        "models": [MODEL],
        "usd_per_hour": 0.36,
        "tokens_per_s": 1,
    }
    document["pools"].append(cheap)  # $100 per 1M tokens: a tenth of the first pool
    for gateway in serve_gateway(GatewayConfig.model_validate(document), policy=_AlwaysFirst()):
        key = gateway.new_key(org="thrifty", team=None)
        gateway.set_budget(scope="org", scope_id="thrifty", window="daily", hard_micro_usd=10_000,
                           action="downgrade", downgrade_route="cheap")  # fmt: skip
        answer = gateway.client(key).chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, max_tokens=10
        )
        assert answer.headers["x-servewise-route"] == "cheap"
        assert answer.headers["x-servewise-decision"] == "budget_cloud"
        (row,) = gateway.wait_for_rows(1)
        assert (row["route"], row["decision"], row["micro_usd"]) == ("cheap", "budget_cloud", 21 * 100)
