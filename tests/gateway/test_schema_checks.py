"""JSON answers checked against ``response_format``: counted valid/invalid on the gateway's ``/metrics``, the
answer passed through unchanged, a malformed schema refused with 400 before forwarding, and ``servewise watch``
turning the gateway's counter into ``schema_valid_ratio``.

The upstream is a tiny OpenAI-compatible FastAPI app served over real HTTP: it answers with the last user message
verbatim (so each test picks the answer's content), streamed in 3-character chunks when asked; a message starting
with ``SLOW:`` streams at 0.1 s per chunk so a client can hang up mid-stream, and one with ``||`` between parts
answers one choice per part (as ``n`` > 1 does), streamed interleaved."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from servewise.gateway import GatewayConfig
from servewise.watch._exposition import parse_exposition
from servewise.watch._scrape import metrics_url
from servewise.watch._window import ScrapeRound, observation_from_rounds
from tests.gateway.conftest import MODEL, RunningGateway, config_document, free_port, serve_gateway
from tests.watch.scrape_support import vllm_text

CHECKS = "servewise_gateway_schema_checks_total"
SLOW = "SLOW:"
CHOICES = "||"
PERSON: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
}
VALID, WRONG_TYPE, NOT_JSON = '{"name": "Ada", "age": 36}', '{"name": "Ada", "age": "36"}', "Ada is 36."


def _echo_app(seen: list[dict[str, Any]]) -> FastAPI:
    """Answers a chat completion with the last message's content; ``seen`` records every body received."""
    app = FastAPI()

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:  # the gateway's queue-depth poller reads this
        return PlainTextResponse("vllm:num_requests_waiting 0\n")

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> JSONResponse | StreamingResponse:
        body = await request.json()
        seen.append(body)
        content: str = body["messages"][-1]["content"]
        parts = content.split(CHOICES)
        delay_s = 0.1 if content.startswith(SLOW) else 0.0
        usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        head = {"id": "chatcmpl-1", "created": 1, "model": body["model"]}
        if not body.get("stream"):
            choices = [
                {"index": i, "message": {"role": "assistant", "content": part}, "finish_reason": "stop"}
                for i, part in enumerate(parts)
            ]
            return JSONResponse({**head, "object": "chat.completion", "choices": choices, "usage": usage})

        def chunk(choice: dict[str, Any]) -> str:
            return f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [choice]})}\n\n"

        async def events() -> AsyncIterator[str]:
            for start in range(0, max(len(p) for p in parts), 3):
                for i, part in enumerate(parts):  # interleaved, one chunk per choice, as vLLM streams n > 1
                    if part[start : start + 3]:
                        yield chunk(
                            {"index": i, "delta": {"content": part[start : start + 3]}, "finish_reason": None}
                        )
                await asyncio.sleep(delay_s)
            for i in range(len(parts)):
                yield chunk({"index": i, "delta": {}, "finish_reason": "stop"})
            yield f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The echo upstream's URL and the bodies it received."""
    seen: list[dict[str, Any]] = []
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_echo_app(seen), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"echo-upstream-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the echo upstream did not start within 10 s"
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)


@pytest.fixture
def gw(upstream: tuple[str, list[dict[str, Any]]], sqlite_url: str) -> Iterator[RunningGateway]:
    config = GatewayConfig.model_validate(config_document(upstream[0], database_url=sqlite_url))
    yield from serve_gateway(config)


def _checks(gateway: RunningGateway) -> dict[tuple[str, str, str, str], float]:
    """(org, team, route, result) → checks, read from the gateway's ``/metrics`` over HTTP."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=5.0).text
    return {
        (labels["org"], labels["team"], labels["route"], labels["result"]): value
        for (name, pairs), value in parse_exposition(text).items()
        if name == CHECKS and (labels := dict(pairs))
    }


def _ask(client: openai.OpenAI, content: str, response_format: Any = None, *, stream: bool = False) -> str:
    """The answer's content as the client received it."""
    extra: dict[str, Any] = {} if response_format is None else {"response_format": response_format}
    messages: Any = [{"role": "user", "content": content}]
    if not stream:
        reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=50, **extra)
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=50, stream=True, **extra
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_answers_are_counted_and_passed_through(gw: RunningGateway, stream: bool) -> None:
    client = gw.client(gw.new_key(org="acme", team="search"))
    for content in (VALID, VALID, WRONG_TYPE, NOT_JSON):
        # observational: the client gets the upstream's answer unchanged, valid or not
        assert _ask(client, content, PERSON, stream=stream) == content
    # the team label is the team's id, ``org/team``, as on servewise_gateway_requests_total
    team = "acme/search"
    assert _checks(gw) == {("acme", team, "local", "valid"): 2, ("acme", team, "local", "invalid"): 2}


@pytest.mark.parametrize("stream", [False, True])
def test_every_choice_of_an_n_answer_is_checked(gw: RunningGateway, stream: bool) -> None:
    """``n`` = 3: each choice is an answer the client may use, so each counts (two valid, one not)."""
    client = gw.client(gw.new_key(org="acme", team="search"))
    content = CHOICES.join((VALID, NOT_JSON, VALID))
    messages: Any = [{"role": "user", "content": content}]
    if stream:
        chunks = client.chat.completions.create(
            model=MODEL, messages=messages, n=3, stream=True, response_format=PERSON
        )
        got: dict[int, str] = {}
        for c in chunks:
            for choice in c.choices:
                got[choice.index] = got.get(choice.index, "") + (choice.delta.content or "")
        answers = [got[i] for i in sorted(got)]
    else:
        reply = client.chat.completions.create(model=MODEL, messages=messages, n=3, response_format=PERSON)
        answers = [choice.message.content or "" for choice in reply.choices]
    assert answers == [VALID, NOT_JSON, VALID]  # passed through unchanged
    team = "acme/search"
    assert _checks(gw) == {("acme", team, "local", "valid"): 2, ("acme", team, "local", "invalid"): 1}


def test_json_object_needs_a_json_object(gw: RunningGateway) -> None:
    client = gw.client(gw.new_key(org="acme", team=None))
    for content in ('{"any": ["thing"]}', "[1, 2]", "{not json"):
        _ask(client, content, {"type": "json_object"})
    _ask(client, '{"streamed": true}', {"type": "json_object"}, stream=True)
    assert _checks(gw) == {("acme", "", "local", "valid"): 2, ("acme", "", "local", "invalid"): 2}


def test_without_a_json_response_format_nothing_is_checked(gw: RunningGateway) -> None:
    client = gw.client(gw.new_key())
    _ask(client, NOT_JSON)
    _ask(client, NOT_JSON, stream=True)
    _ask(client, NOT_JSON, {"type": "text"})
    assert _checks(gw) == {}


def test_a_cancelled_stream_is_not_checked(gw: RunningGateway) -> None:
    client = gw.client(gw.new_key())
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": SLOW + VALID}],
        max_tokens=50,
        stream=True,
        response_format=PERSON,
    )
    next(iter(chunks))
    chunks.close()
    (row,) = gw.wait_for_rows(1)
    assert row["status"] == "cancelled"
    assert _checks(gw) == {}


@pytest.mark.parametrize(
    ("response_format", "param", "message"),
    [
        (
            {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "objekt"}}},
            "response_format.json_schema.schema",
            "is not a valid JSON Schema (Draft 2020-12) at type:",
        ),
        ({"type": "json_schema", "json_schema": {"name": "p", "schema": []}}, "response_format.json_schema.schema",
         "must be a JSON Schema (an object); got list"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "response_format.json_schema", "string `name`"),
        ("json", "response_format", "must be an object"),
    ],
)  # fmt: skip
def test_an_unusable_response_format_is_refused_before_forwarding(
    gw: RunningGateway,
    upstream: tuple[str, list[dict[str, Any]]],
    response_format: Any,
    param: str,
    message: str,
) -> None:
    received = len(upstream[1])
    answer = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.new_key()}"},
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": VALID}],
            "response_format": response_format,
        },
        timeout=10.0,
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert message in error["message"] and "\n" not in error["message"]
    assert len(upstream[1]) == received  # nothing was forwarded
    assert _checks(gw) == {}


def test_watch_reads_schema_valid_ratio_from_the_gateway(gw: RunningGateway) -> None:
    """The gateway's real ``/metrics`` over HTTP, read the way ``servewise watch --gateway`` reads it."""
    url = metrics_url(gw.url)
    before_s = time.time()
    before = parse_exposition(httpx.get(url, timeout=5.0).text)
    client = gw.client(gw.new_key())
    for content, stream in [(VALID, False), (VALID, True), (VALID, False), (WRONG_TYPE, True)]:
        _ask(client, content, PERSON, stream=stream)
    after = parse_exposition(httpx.get(url, timeout=5.0).text)
    replica = parse_exposition(vllm_text())
    rounds = [
        ScrapeRound(at_s=before_s, replicas={"r": replica}, gateway=before),
        ScrapeRound(at_s=before_s + 10.0, replicas={"r": replica}, gateway=after),
    ]
    observation = observation_from_rounds(rounds, endpoints=["r"], gateway=url)
    assert observation.schema_valid_ratio == pytest.approx(3 / 4)
