"""Passing a streamed answer through chunk by chunk while metering what the client actually received.

Why count chunks: a cancelled stream must be billed for the tokens delivered, and the upstream's ``usage`` only
arrives in the last chunk, which a client that hangs up never reaches. vLLM (and the simulator) send one token per
chunk by default, so the gateway counts one completion token per chunk that carries content; when the stream ends
normally the upstream's ``usage`` (the gateway always asks for it) replaces the count. A chunk being written when
the client hangs up is counted: the bill may include that one chunk in flight.

Why a response subclass with a shielded ``finally``: when the client disconnects, Starlette cancels the body
iterator, possibly before it ever started; the settlement (ledger row, counters, metrics) must run exactly once
in every case, so it runs after the response, whatever happened, shielded from that cancellation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ._cache import StreamAssembler
from ._metrics import OverheadTimer
from ._schema_checks import collect_content
from ._upstream import UpstreamStream

__all__ = ["MeteredStreamingResponse", "StreamMeter", "metered_events"]

_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class StreamMeter:
    """What one stream delivered; ``outcome`` stays ``cancelled`` unless the upstream's end was passed on."""

    delivered_tokens: int = 0
    usage: dict[str, Any] | None = None
    outcome: Literal["ok", "cancelled", "error"] = "cancelled"
    error: str | None = None
    assembler: StreamAssembler | None = field(default=None)
    content: dict[int, list[str]] | None = field(default=None)
    """Each choice's content deltas by index, collected only when the request's ``response_format`` asks for a JSON
    check."""


def _content_tokens(chunk: dict[str, Any]) -> int:
    tokens = 0
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if text:
            tokens += 1
    return tokens


def _sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


async def metered_events(
    stream: UpstreamStream, meter: StreamMeter, timer: OverheadTimer, *, client_wants_usage: bool
) -> AsyncIterator[bytes]:
    """The upstream's SSE events re-emitted one by one; the usage-only chunk is dropped unless the client asked."""
    events = stream.events().__aiter__()
    while True:
        try:
            with timer.upstream():
                payload = await events.__anext__()
        except StopAsyncIteration:
            break
        except Exception as err:  # the upstream broke mid-stream: tell the client in-band, bill what was sent
            meter.outcome = "error"
            meter.error = f"{type(err).__name__}: {err}"
            body = {
                "error": {
                    "message": f"upstream failed mid-stream ({type(err).__name__}); retry the request",
                    "type": "upstream_error",
                    "param": None,
                    "code": "upstream_error",
                }
            }
            yield _sse(json.dumps(body))
            return
        if payload.strip() == "[DONE]":
            meter.outcome = "ok"
            yield _DONE
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            yield _sse(payload)
            continue
        if not isinstance(chunk, dict):
            yield _sse(payload)
            continue
        if chunk.get("usage"):
            meter.usage = chunk["usage"]
        if meter.assembler is not None:
            meter.assembler.feed(chunk)
        if meter.content is not None:
            collect_content(chunk, meter.content)
        if not client_wants_usage and "usage" in chunk:
            if not chunk.get("choices"):
                continue  # the usage-only chunk the gateway asked for on its own behalf
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
            payload = json.dumps(chunk, separators=(",", ":"))
        meter.delivered_tokens += _content_tokens(chunk)
        yield _sse(payload)
    meter.outcome = "ok"  # an upstream that ends without [DONE] still ended normally


class MeteredStreamingResponse(StreamingResponse):
    """A ``StreamingResponse`` that runs ``on_close`` exactly once after the response, even when cancelled."""

    def __init__(
        self, content: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]], headers: dict[str, str]
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()
