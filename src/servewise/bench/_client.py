"""One streamed request to an OpenAI-compatible endpoint, timed chunk by chunk.

Why httpx with an injectable transport: the HTTP client is the one piece that touches the network, so it takes an
``httpx.AsyncBaseTransport`` (httpx's one-method interface) and everything above it — scheduling, statistics,
reports — works on the plain ``RequestRecord`` it returns.

What a request looks like (the fields vLLM's own ``vllm bench serve`` sends): ``stream: true`` with
``stream_options.include_usage`` so the last chunk carries ``usage.prompt_tokens`` / ``usage.completion_tokens``,
``max_tokens`` = the wanted output length and, unless turned off, vLLM's ``ignore_eos: true`` and
``min_tokens`` so the server generates exactly that many tokens (OpenAI itself rejects these two fields).

Timestamps (``time.perf_counter`` seconds, taken when a parsed SSE ``data:`` line arrives):
``start_s`` just before the request is sent; ``token_times_s`` one entry per chunk whose text is non-empty
(a chunk may carry several tokens; an empty first chunk — a role header in chat — is not a token);
``end_s`` the last content chunk, or the moment of failure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from servewise.errors import UsageError

from ._prompts import prompt_for_chat, synthetic_prompt

__all__ = ["Endpoint", "OpenAIStreamClient", "RequestRecord", "RequestShape", "list_models", "model_cards"]

DEFAULT_TIMEOUT_S = 600.0
_ERROR_CHARS = 200


class Endpoint(StrEnum):
    """Which OpenAI API the load goes to."""

    completions = "completions"
    chat = "chat"

    @property
    def path(self) -> str:
        return "/v1/completions" if self is Endpoint.completions else "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class RequestShape:
    """What one request asks for: prompt and output lengths in tokens."""

    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What one request measured; times in seconds of one monotonic clock (``time.perf_counter``)."""

    shape: RequestShape
    start_s: float
    token_times_s: tuple[float, ...]
    """Arrival of every chunk that carried text, the first one included."""
    end_s: float
    prompt_tokens: int | None = None
    """``usage.prompt_tokens`` when the server reported it."""
    output_tokens: int | None = None
    """``usage.completion_tokens`` when the server reported it."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.token_times_s)

    @property
    def output_token_count(self) -> int:
        """Output tokens: the server's ``usage`` count, else the number of content chunks."""
        return self.output_tokens if self.output_tokens is not None else len(self.token_times_s)

    @property
    def prompt_token_count(self) -> int:
        """Prompt tokens: the server's ``usage`` count, else the requested length."""
        return self.prompt_tokens if self.prompt_tokens is not None else self.shape.prompt_tokens


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _chunk_text(data: Mapping[str, Any], endpoint: Endpoint) -> str | None:
    """The text of a streamed chunk, or None when it has no choices (the trailing usage chunk)."""
    choices = data.get("choices")
    if not choices:
        return None
    choice = choices[0]
    if endpoint is Endpoint.completions:
        return str(choice.get("text") or "")
    delta = choice.get("delta") or {}
    return str(delta.get("content") or delta.get("reasoning_content") or "")


class OpenAIStreamClient:
    """Send streamed completions to ``base_url`` and time them.

    Construction touches nothing; the connection pool opens on the first request and closes with ``aclose`` (or
    ``async with``). The pool has no connection limit, so a benchmark's clients never queue inside the client.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        endpoint: Endpoint = Endpoint.completions,
        prompt_for: Callable[[int, int], str] | None = None,
        ignore_eos: bool = True,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.endpoint = endpoint
        self.ignore_eos = ignore_eos
        default = synthetic_prompt if endpoint is Endpoint.completions else prompt_for_chat
        self._prompt_for = prompt_for or default
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            transport=transport,
        )

    async def __aenter__(self) -> OpenAIStreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def payload(self, shape: RequestShape, index: int = 0) -> dict[str, Any]:
        """The JSON body of one request."""
        prompt = self._prompt_for(shape.prompt_tokens, index)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": shape.output_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.0,
        }
        if self.endpoint is Endpoint.completions:
            body["prompt"] = prompt
        else:
            body["messages"] = [{"role": "user", "content": prompt}]
        if self.ignore_eos:
            body["ignore_eos"] = True
            body["min_tokens"] = shape.output_tokens
        return body

    async def send(self, shape: RequestShape, index: int = 0) -> RequestRecord:
        """One streamed request; never raises for what the server or the network does (the record says)."""
        body = self.payload(shape, index)
        times: list[float] = []
        usage: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            async with self._client.stream("POST", self.endpoint.path, json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace")
                    return RequestRecord(
                        shape,
                        start,
                        (),
                        time.perf_counter(),
                        error=f"HTTP {response.status_code}: {_short(text)}",
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, SSE comments (": ping"), event names
                    data_text = line[5:].strip()
                    if data_text == "[DONE]":
                        break
                    now = time.perf_counter()
                    data = json.loads(data_text)
                    if "error" in data and not data.get("choices"):
                        message = (
                            data["error"].get("message") if isinstance(data["error"], dict) else data["error"]
                        )
                        return RequestRecord(
                            shape, start, tuple(times), now, error=f"stream error: {_short(str(message))}"
                        )
                    content = _chunk_text(data, self.endpoint)
                    if content:
                        times.append(now)
                    if data.get("usage"):
                        usage = data["usage"]
        except httpx.HTTPError as err:
            return RequestRecord(
                shape,
                start,
                tuple(times),
                time.perf_counter(),
                error=f"{type(err).__name__}: {_short(str(err))}",
            )
        except (json.JSONDecodeError, AttributeError, TypeError) as err:
            return RequestRecord(
                shape, start, tuple(times), time.perf_counter(), error=f"malformed stream: {_short(str(err))}"
            )
        end = times[-1] if times else time.perf_counter()
        error = None if times else "the stream carried no content (no token arrived)"
        return RequestRecord(
            shape,
            start,
            tuple(times),
            end,
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            output_tokens=_int_or_none(usage.get("completion_tokens")),
            error=error,
        )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def list_models(
    base_url: str,
    *,
    api_key: str | None = None,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[str]:
    """Model ids the endpoint serves (``GET /v1/models``), in its order; a one-line ``UsageError`` when the
    endpoint cannot be reached or does not answer as an OpenAI-compatible server."""
    cards = await model_cards(base_url, api_key=api_key, timeout_s=timeout_s, transport=transport)
    return [str(card["id"]) for card in cards]


async def model_cards(
    base_url: str,
    *,
    api_key: str | None = None,
    timeout_s: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[dict[str, Any]]:
    """The entries of ``GET /v1/models`` as the endpoint gives them (each has an ``id``; the Servewise simulator's
    also say what it simulates), with ``list_models``'s errors."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    hint = "check the URL and that the server is running, or name the model with --model"
    try:
        async with httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        ) as client:
            response = await client.get("/v1/models")
    except httpx.HTTPError as err:
        raise UsageError(
            f"cannot reach {base_url}: {type(err).__name__}: {_short(str(err))}; {hint}"
        ) from None
    if response.status_code != 200:
        raise UsageError(
            f"GET {base_url}/v1/models answered HTTP {response.status_code}: {_short(response.text)}; {hint}"
        )
    try:
        entries = response.json()["data"]
        return [dict(entry) for entry in entries if entry["id"] is not None]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"GET {base_url}/v1/models did not return an OpenAI model list; {hint}") from None
