"""Talking to one upstream (a local vLLM-compatible pool or a hosted OpenAI-compatible API) over HTTP.

Why a protocol with two calls (``post`` and ``open_stream``): the proxy needs the whole JSON for non-streaming
requests and the server-sent events one by one for streaming ones, so it can count delivered tokens and stop the
upstream when the client goes away. Failures that another route could fix — no connection, 5xx, 429 — raise
``UpstreamError(retryable=True)`` so the proxy can fall back; a lost answer after the request was sent (read
timeout, connection dropped) raises ``UpstreamError(maybe_served=True)``: not retried, billed at its worst case;
any other 4xx is the client's problem and is passed back unchanged.

Why one ``httpx.AsyncClient`` per upstream with a large pool: connection reuse is most of the gateway's overhead
budget on loopback; the API key header is set on the client, so it never passes through the proxy's own code or
logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

__all__ = [
    "KEEPALIVE_EXPIRY_S",
    "HttpUpstream",
    "Upstream",
    "UpstreamError",
    "UpstreamReply",
    "UpstreamStream",
]

KEEPALIVE_EXPIRY_S = 2.0
"""Idle pooled connections are dropped after this, below the 5 s keep-alive of uvicorn (vLLM's and our
simulator's server): reusing a connection the server is closing at that instant fails the request."""

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)
"""Transport errors that happen before the upstream has the whole request: it cannot have served it."""


class UpstreamError(Exception):
    """The upstream did not answer usefully; ``retryable``: another route may (nothing was sent to the client).

    ``maybe_served``: the request reached the upstream and the answer was lost (read timeout, connection dropped
    mid-answer). The upstream may have generated — and a hosted API billed — the whole answer, so the proxy
    neither retries it elsewhere (that could pay twice) nor bills it $0: it charges the reserved worst case."""

    def __init__(
        self,
        route: str,
        message: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        maybe_served: bool = False,
    ) -> None:
        super().__init__(f"upstream {route}: {message}")
        self.route = route
        self.status = status
        self.body = body
        self.maybe_served = maybe_served
        self.retryable = not maybe_served and (status is None or status in _RETRYABLE_STATUS)


def _transport_error(route: str, err: httpx.HTTPError) -> UpstreamError:
    return UpstreamError(route, f"{type(err).__name__}: {err}", maybe_served=not isinstance(err, _NOT_SENT))


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    body: bytes
    content_type: str


class UpstreamStream(Protocol):
    """An open streaming answer (status 200): its SSE ``data:`` payloads in order, then ``aclose``."""

    def events(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    name: str

    async def post(self, path: str, body: dict[str, Any]) -> UpstreamReply: ...

    async def open_stream(self, path: str, body: dict[str, Any]) -> UpstreamStream: ...

    async def aclose(self) -> None: ...


class _HttpStream:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def events(self) -> AsyncIterator[str]:
        """The ``data:`` payload of each server-sent event (multi-line data joined by newlines)."""
        data: list[str] = []
        async for line in self._response.aiter_lines():
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            yield "\n".join(data)

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpUpstream:
    """``base_url`` ends in ``/v1`` (pools: the pool URL + ``/v1``); ``api_key`` becomes ``Authorization``."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 600.0,
        max_connections: int = 1000,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        )

    async def post(self, path: str, body: dict[str, Any]) -> UpstreamReply:
        try:
            response = await self._client.post(path, json=body)
        except httpx.HTTPError as err:
            raise _transport_error(self.name, err) from None
        if response.status_code in _RETRYABLE_STATUS:
            raise UpstreamError(
                self.name,
                f"answered {response.status_code}",
                status=response.status_code,
                body=response.content,
            )
        content_type = response.headers.get("content-type", "application/json")
        return UpstreamReply(response.status_code, response.content, content_type)

    async def open_stream(self, path: str, body: dict[str, Any]) -> UpstreamStream:
        request = self._client.build_request("POST", path, json=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as err:
            raise _transport_error(self.name, err) from None
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            raise UpstreamError(
                self.name, f"answered {response.status_code}", status=response.status_code, body=content
            )
        return _HttpStream(response)

    async def get(self, path: str) -> UpstreamReply:
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as err:
            raise UpstreamError(self.name, f"{type(err).__name__}: {err}") from None
        return UpstreamReply(response.status_code, response.content, response.headers.get("content-type", ""))

    async def aclose(self) -> None:
        await self._client.aclose()
