"""Reading an OpenAI request body: the fields the gateway needs, checked, and the prompt's token estimate.

Why an estimate: admission must know a request's worst-case cost before any upstream has seen it, and no tokenizer
runs offline here (``servewise.simulator._tokens`` explains why); the gateway uses the simulator's estimate
(⌈characters / 4⌉ per text + 4 per chat message). Settlement uses the upstream's ``usage`` when it reports one,
so the estimate only sizes the reservation. A request without ``max_tokens`` gets ``default_max_tokens`` sent
upstream, so the reserved completion worst case really is the worst case (``max_tokens`` × ``n``, or × ``best_of``
on ``/v1/completions``). The prompt side is an estimate: a prompt that really has more tokens than estimated
settles at its true cost, which may take a budget past its hard limit by that difference (docs/gateway-budgets.md,
"When the true cost exceeds the reservation").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from servewise.simulator import text_tokens
from servewise.simulator._tokens import chat_prompt_tokens

__all__ = ["BadRequest", "Endpoint", "ParsedRequest", "parse_request"]

Endpoint = Literal["chat", "completions", "embeddings"]
PATHS: dict[Endpoint, str] = {
    "chat": "chat/completions",
    "completions": "completions",
    "embeddings": "embeddings",
}


class BadRequest(Exception):
    """A body the gateway cannot serve: answered 400 in the OpenAI error format, naming ``param``."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: Endpoint
    body: dict[str, Any]
    model: str
    prompt_tokens: int
    max_tokens: int
    """Completion tokens at most (0 for embeddings): what the reservation covers."""
    stream: bool
    include_usage: bool
    """The client asked for the final usage chunk (the gateway always asks upstream for it)."""
    user: str | None
    choices: int = 1
    """Completions the upstream generates per request: ``n`` (``best_of`` for ``/v1/completions`` when larger)."""

    @property
    def worst_completion_tokens(self) -> int:
        """The most completion tokens the request can be billed for: ``max_tokens`` per generated choice."""
        return self.max_tokens * self.choices

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def _messages_tokens(messages: object) -> int:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` must be a non-empty array of {role, content} objects", "messages")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("every item of `messages` must be an object with a string `role`", "messages")
    return chat_prompt_tokens([_content_text(m.get("content")) for m in messages])


def _texts_tokens(value: object, param: str) -> int:
    """Tokens of a ``prompt``/``input``: a string, an array of strings, or token ids (one token each)."""
    if isinstance(value, str):
        return max(1, text_tokens(value))
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return sum(max(1, text_tokens(v)) for v in value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return len(value)
        if all(isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value):
            return sum(len(v) for v in value)
    raise BadRequest(f"`{param}` must be a string, an array of strings or an array of token ids", param)


MAX_CHOICES = 128
"""OpenAI's documented upper bound for ``n``."""


def _choices(body: dict[str, Any], endpoint: Endpoint) -> int:
    """How many completions the upstream generates (and bills): ``n``, or ``best_of`` when that is larger."""
    if endpoint == "embeddings":
        return 1
    found = 1
    for name in ("n", "best_of") if endpoint == "completions" else ("n",):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CHOICES:
            raise BadRequest(f"`{name}` must be an integer from 1 to {MAX_CHOICES} (got {value!r})", name)
        found = max(found, value)
    return found


def _max_tokens(body: dict[str, Any], default_max_tokens: int) -> tuple[int, dict[str, Any]]:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"`{name}` must be an integer >= 1 (got {value!r})", name)
        return value, body
    return default_max_tokens, {**body, "max_tokens": default_max_tokens}


def parse_request(endpoint: Endpoint, raw: bytes, *, default_max_tokens: int) -> ParsedRequest:
    """The checked request; ``BadRequest`` for a body that is not a JSON object or misses what it needs."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"the request body is not valid JSON ({err}); send a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(body).__name__}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("`model` is required: the name of a model from GET /v1/models", "model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("`stream` must be true or false", "stream")
    choices = _choices(body, endpoint)
    user = body.get("user")
    user = user if isinstance(user, str) and user else None
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    if endpoint == "embeddings":
        if stream:
            raise BadRequest("embeddings cannot stream; drop `stream`", "stream")
        return ParsedRequest(
            endpoint, body, model, _texts_tokens(body.get("input"), "input"), 0, False, False, user
        )
    if endpoint == "chat":
        prompt_tokens = _messages_tokens(body.get("messages"))
    else:
        prompt_tokens = _texts_tokens(body.get("prompt"), "prompt")
    max_tokens, body = _max_tokens(body, default_max_tokens)
    return ParsedRequest(
        endpoint, body, model, prompt_tokens, max_tokens, stream, include_usage, user, choices
    )
