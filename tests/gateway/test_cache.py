"""The exact-match cache: what is keyed and cached, LRU/TTL, Redis, and replaying a stored answer as a stream that the
real OpenAI SDK reads back unchanged."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from redis import Redis
from redis.exceptions import RedisError

from servewise.errors import UsageError
from servewise.gateway._cache import (
    CachedResponse,
    CacheSettings,
    LruCache,
    RedisCache,
    StreamAssembler,
    cache_key,
    replay_sse,
    storable,
)
from servewise.simulator import serve_in_background, simulator_config

CHAT = "/v1/chat/completions"
BODY: dict[str, Any] = {
    "model": "Llama-3.1-8B",
    "messages": [{"role": "user", "content": "Say hi"}],
    "temperature": 0,
    "max_tokens": 16,
}
ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "Llama-3.1-8B",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi there!"}, "logprobs": None,
         "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"city": "Oslo"}'}}]},
         "logprobs": None, "finish_reason": "tool_calls"},
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
}  # fmt: skip


def _key(body: dict[str, Any], **kwargs: Any) -> str | None:
    return cache_key(CHAT, body, namespace=kwargs.pop("namespace", "org1"), **kwargs)


def test_key_ignores_streaming_and_user_but_nothing_that_changes_the_answer() -> None:
    base = _key(BODY)
    assert base is not None and len(base) == 64
    assert _key({**BODY, "stream": True, "stream_options": {"include_usage": True}, "user": "u7"}) == base
    assert _key({**BODY, "temperature": 0.0, "max_tokens": 16.0}) == base  # 0.0 ≡ 0
    assert _key(dict(reversed(list(BODY.items())))) == base  # key order does not matter
    for changed in ({"max_tokens": 17}, {"seed": 1}, {"stop": ["\n"]}, {"model": "other"}, {"top_p": 0.5},
                    {"messages": [{"role": "user", "content": "Say hi!"}]}, {"logit_bias": {"1": 2}}):  # fmt: skip
        assert _key({**BODY, **changed}) != base, changed
    assert _key(BODY, namespace="org2") != base  # tenants never share entries
    assert (
        cache_key("/v1/completions", {"model": "m", "prompt": "x", "temperature": 0}, namespace="o") != base
    )


def test_sampled_requests_are_cached_only_when_the_model_opts_in() -> None:
    sampled = {k: v for k, v in BODY.items() if k != "temperature"}  # OpenAI's default temperature is 1
    assert _key(sampled) is None
    assert _key({**BODY, "temperature": 0.7}) is None
    assert _key({**BODY, "temperature": 0.7}, sampled_models=("Llama-3.1-8B",)) is not None
    embed = {"model": "e5", "input": "text"}
    assert cache_key("/v1/embeddings", embed, namespace="o") is not None
    assert cache_key("/v1/models", embed, namespace="o") is None


def test_only_complete_answers_are_storable() -> None:
    assert storable(CHAT, ANSWER)
    cut = copy.deepcopy(ANSWER)
    cut["choices"][0]["finish_reason"] = None
    assert not storable(CHAT, cut)
    assert not storable(CHAT, {"error": {"message": "boom"}})
    assert not storable(CHAT, {"choices": []})
    assert storable("/v1/embeddings", {"object": "list", "data": [{"embedding": [0.1]}]})


def test_settings_refuse_the_semantic_cache_with_the_reason() -> None:
    with pytest.raises(UsageError, match="sentence-transformers and torch"):
        CacheSettings(semantic={"threshold": 0.9})
    assert CacheSettings(sampled_models=["m"]).sampled_models == ("m",)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lru_evicts_the_least_recently_used_and_expires_after_the_ttl() -> None:
    clock = FakeClock()
    cache = LruCache(max_entries=2, ttl_s=10, clock=clock)
    entry = CachedResponse(ANSWER, "bulk", 1.0)

    async def scenario() -> None:
        await cache.put("a", entry)
        await cache.put("b", entry)
        assert await cache.get("a") == entry  # a is now the most recent
        await cache.put("c", entry)  # evicts b
        assert await cache.get("b") is None
        assert await cache.get("a") == entry and await cache.get("c") == entry
        got = await cache.get("a")
        assert got is not None
        got.body["choices"].clear()  # a caller mutating its copy does not touch the store
        assert await cache.get("a") == entry
        clock.now = 10.0
        assert await cache.get("a") is None and len(cache) == 1

    asyncio.run(scenario())


def _redis_url() -> str:
    url = os.environ.get("SERVEWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        Redis.from_url(url, socket_connect_timeout=1).ping()
    except (RedisError, OSError) as err:
        pytest.skip(f"Redis at {url} does not answer ({type(err).__name__}); set SERVEWISE_TEST_REDIS_URL")
    return url


def test_redis_cache_round_trip_with_expiry() -> None:
    url = _redis_url()
    prefix = f"swtest-{uuid.uuid4().hex[:10]}"
    entry = CachedResponse(ANSWER, "mini", 2.0)

    async def scenario() -> None:
        cache = RedisCache(url, prefix=prefix, ttl_s=30)
        try:
            assert await cache.get("k") is None
            await cache.put("k", entry)
            assert await cache.get("k") == entry
        finally:
            await cache.close()

    asyncio.run(scenario())
    plain = Redis.from_url(url)
    try:
        assert 0 < plain.pttl(f"{prefix}:cache:k") <= 30_000
    finally:
        plain.delete(f"{prefix}:cache:k")
        plain.close()


def test_a_redis_outage_is_a_miss_not_an_error() -> None:
    async def scenario() -> int:
        cache = RedisCache("redis://127.0.0.1:1/0", ttl_s=30)
        assert await cache.get("k") is None
        await cache.put("k", CachedResponse(ANSWER, "bulk", 0.0))
        await cache.close()
        return cache.errors

    assert asyncio.run(scenario()) == 2


def _parse_sse(chunks: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(chunks).decode()
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


def test_replay_reassembles_to_the_stored_answer() -> None:
    payloads = _parse_sse(list(replay_sse(ANSWER, include_usage=True)))
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"] == ANSWER["usage"]
    assert all(p["usage"] is None for p in payloads[:-1])
    assembler = StreamAssembler()
    for payload in payloads:
        assembler.feed(payload)
    assert assembler.result() == ANSWER
    completion = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "text": "abc", "logprobs": None, "finish_reason": "length"}]}  # fmt: skip
    assembler = StreamAssembler()
    for payload in _parse_sse(list(replay_sse(completion))):
        assembler.feed(payload)
    assert assembler.result() == completion
    with pytest.raises(UsageError, match="embeddings"):
        list(replay_sse({"object": "list", "data": []}))


def _replay_app(stored: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.post(CHAT)
    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse(stored)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(replay_sse(stored, include_usage=usage), media_type="text/event-stream")

    return app


def _serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the replay server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def replay_url() -> Iterator[str]:
    yield from _serve(_replay_app(ANSWER))


def test_the_openai_sdk_reads_a_replayed_stream(replay_url: str) -> None:
    client = openai.OpenAI(base_url=f"{replay_url}/v1", api_key="unused")
    with client:
        stream = client.chat.completions.create(
            model="Llama-3.1-8B", messages=[{"role": "user", "content": "Say hi"}], temperature=0, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
    content = "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == 0
    )
    assert content == "Hi there!"
    calls = [tc for c in chunks for ch in c.choices for tc in (ch.delta.tool_calls or [])]
    assert [(tc.function.name, tc.function.arguments) for tc in calls if tc.function] == [
        ("get", '{"city": "Oslo"}')
    ]
    finishes = {ch.index: ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason}
    assert finishes == {0: "stop", 1: "tool_calls"}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 13


def test_a_real_stream_is_assembled_and_storable(tmp_path: Path) -> None:
    config = simulator_config(
        model="Llama-3.1-8B", gpu="L4", speed=50.0, db_url=f"sqlite:///{tmp_path / 'c.db'}"
    )
    body = {**BODY, "model": config.served_model, "stream": True, "stream_options": {"include_usage": True}}
    assembler = StreamAssembler()
    with (
        serve_in_background(config) as url,
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{url}{CHAT}", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                assembler.feed(json.loads(line.removeprefix("data: ")))
    result = assembler.result()
    assert result is not None and storable(CHAT, result)
    assert result["usage"]["completion_tokens"] == 16 and result["choices"][0]["message"]["content"]
    replayed = StreamAssembler()
    for payload in _parse_sse(list(replay_sse(result, include_usage=True))):
        replayed.feed(payload)
    assert replayed.result() == result
