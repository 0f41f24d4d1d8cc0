"""The streaming hot path: pre-encoded chunk bytes equal ``json.dumps`` of the OpenAI chunk they stand for, the
fast histogram renders as ``prometheus_client`` does, a ``send`` that suspends (a full write buffer) keeps token
order, and a client that goes away cancels its request in the engine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from servewise.simulator import SimulatorConfig, serve_in_background
from servewise.simulator._metrics import FastHistogram
from servewise.simulator._sse import SYSTEM_FINGERPRINT, ChunkFormat, SSEWriter
from servewise.simulator._tokens import synthetic_text

_ID, _CREATED, _MODEL = "chatcmpl-abc", 1_700_000_000, "meta-llama/Llama-3.1-8B-Instruct"


def _line(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def _reference(
    chat: bool,
    text: str,
    index: int,
    finish: str | None,
    *,
    stop: str | None = None,
    fingerprint: bool = True,
) -> bytes:
    """The chunk(s) of token ``index`` as vLLM 0.32 shapes them, built the slow, obvious way: chat opens with a
    role chunk; the last token chunk names ``finish_reason`` and ``stop_reason`` and, when no usage chunk
    follows (``fingerprint``), carries the ``system_fingerprint``."""
    head: dict[str, Any] = {"id": _ID, "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": _CREATED, "model": _MODEL}  # fmt: skip
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": {"content": text},
            "logprobs": None,
            "finish_reason": finish,
        }
        if finish is not None:
            choice["stop_reason"] = stop
        choice["token_ids"] = None
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": stop,
                  "prompt_token_ids": None, "token_ids": None}  # fmt: skip
    body = head | {"choices": [choice]}
    if finish is not None and fingerprint:
        body["system_fingerprint"] = SYSTEM_FINGERPRINT
    if not (chat and index == 0):
        return _line(body)
    role = {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    return _line(head | {"choices": [role], "prompt_token_ids": None, "prompt_text": None}) + _line(body)


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("finish", ["length", "stop"])
def test_chunk_bytes_equal_json_dumps(chat: bool, finish: str) -> None:
    chunks = ChunkFormat(chat=chat, response_id=_ID, created=_CREATED, model=_MODEL, finish_reason=finish,
                         pieces=None, usage=None)  # fmt: skip
    tokens = 23
    for index in range(tokens):
        last = index == tokens - 1
        expected = _reference(chat, synthetic_text(index, 1), index, finish if last else None)
        assert chunks.token(index, last) == expected, index
    assert chunks.end == b"data: [DONE]\n\n"


@pytest.mark.parametrize("chat", [True, False])
def test_cut_text_and_usage_chunk(chat: bool) -> None:
    pieces = [" lorem", " ipsum", " "]  # a stop string ("dolor") cut the third token's text
    usage = {"prompt_tokens": 5, "total_tokens": 8, "completion_tokens": 3}
    chunks = ChunkFormat(chat=chat, response_id=_ID, created=_CREATED, model=_MODEL, finish_reason="stop",
                         pieces=pieces, usage=usage, stop_reason="dolor")  # fmt: skip
    got = [chunks.token(i, i == 2) for i in range(3)]
    expected = [
        _reference(
            chat, p, i, "stop" if i == 2 else None, stop="dolor" if i == 2 else None, fingerprint=False
        )
        for i, p in enumerate(pieces)
    ]
    assert got == expected
    kind = "chat.completion.chunk" if chat else "text_completion"
    final: dict[str, Any] = {"id": _ID, "object": kind, "created": _CREATED, "model": _MODEL, "choices": [],
                             "usage": usage, "system_fingerprint": SYSTEM_FINGERPRINT}  # fmt: skip
    assert chunks.end == _line(final) + b"data: [DONE]\n\n"


def test_fast_histogram_renders_like_prometheus_client() -> None:
    buckets = (0.001, 0.01, 0.5, 2560.0)
    values = [0.0005, 0.001, 0.002, 0.01, 0.3, 0.3, 0.3, 7.0, 3000.0]
    fast_registry, slow_registry = CollectorRegistry(), CollectorRegistry()
    fast = FastHistogram("x_seconds", "doc", buckets, {"model_name": "m"})
    fast_registry.register(fast)
    slow = Histogram("x_seconds", "doc", ("model_name",), buckets=buckets, registry=slow_registry).labels("m")
    for value in values[:4] + values[7:]:
        fast.observe(value)
    fast.observe_many(0.3, 3)
    for value in values:
        slow.observe(value)
    fast.created = slow._created  # the one value that differs: when each was made

    def lines(registry: CollectorRegistry) -> list[str]:
        return generate_latest(registry).decode().splitlines()

    assert lines(fast_registry) == lines(slow_registry)
    assert fast.count == len(values)


def test_a_suspended_send_keeps_token_order() -> None:
    """The first write blocks (the transport's buffer is full): later tokens wait and go out together, in order,
    and every token's lateness is recorded once."""
    chunks = ChunkFormat(chat=False, response_id=_ID, created=_CREATED, model=_MODEL, finish_reason="length",
                         pieces=None, usage=None)  # fmt: skip

    async def scenario() -> tuple[list[bytes], int, bool]:
        writable = asyncio.Event()
        bodies: list[bytes] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if not writable.is_set():
                await writable.wait()
            bodies.append(message["body"])

        lateness = FastHistogram("late_seconds", "doc", (0.5,), {})
        writer = SSEWriter(send, chunks, lateness)
        now = time.monotonic()
        for index in range(4):
            writer.push(index, index == 3, now)
        assert bodies == []  # nothing went out while the buffer was full
        writable.set()
        done = await asyncio.wait_for(writer.done, timeout=5)
        return bodies, lateness.count, done

    bodies, observed, done = asyncio.run(scenario())
    assert b"".join(bodies) == b"".join(chunks.token(i, i == 3) for i in range(4)) + chunks.end
    assert len(bodies) == 2  # the blocked first token, then the three that queued behind it in one write
    assert observed == 4 and done


def test_a_client_that_leaves_cancels_its_request(l4_config: SimulatorConfig) -> None:
    with serve_in_background(l4_config) as url:
        body = {"model": l4_config.served_model, "prompt": [1] * 16, "max_tokens": 2000, "stream": True}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    break
        deadline = time.monotonic() + 10
        running = 1.0
        while time.monotonic() < deadline:
            text = httpx.get(f"{url}/metrics").text
            running = next(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("vllm:num_requests_running{")
            )
            if running == 0:
                break
            time.sleep(0.02)
        assert running == 0
        success = {
            line.split('finished_reason="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("vllm:request_success_total{")
        }
        # cancelled, not finished; and, as in vLLM 0.32, a client's abort records no finished-request stats
        assert success["abort"] == 0 and success["length"] == 0
