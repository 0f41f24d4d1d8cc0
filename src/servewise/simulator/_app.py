"""The OpenAI-compatible HTTP surface of the simulated replica (the subset ``vllm serve`` answers that clients and
load generators use): ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions`` (JSON or SSE streaming),
``/health`` and ``/metrics``.

Responses and errors have the JSON shape vLLM 0.32 gives them — every field, ``null`` where the simulator has
nothing to say (``token_ids``, ``prompt_logprobs``, ``kv_transfer_params`` …) — which tests/realvllm checks
against a real vLLM server. Errors are ``{"error": {"message", "type", "param", "code"}}`` with ``code`` the
HTTP status (an integer, as vLLM writes it): a body that does not parse or validate is 400 ``"Bad Request"``
with ``param`` the field's path (``body.messages``); an unknown model is 404 ``NotFoundError``; a bad value is
400 ``BadRequestError`` naming the parameter; a full queue (``max_waiting``) is 503 ``"Service Unavailable"``,
as vLLM's ``--max-num-queued-reqs`` answers. Unknown routes answer FastAPI's ``{"detail": "Not Found"}``.

Lengths follow vLLM: a prompt longer than ``max_model_len`` is refused (``param: input_tokens``), ``max_tokens``
above ``max_model_len`` too, and a ``max_tokens`` that does not fit after the prompt is cut to the room left
(``finish_reason: length``). Without ``max_tokens`` a completion stops after 16 tokens (the default of vLLM's and
OpenAI's completions API), a chat completion at its drawn natural length (``finish_reason: stop``) or the room
left. One difference remains: ``n`` > 1 is refused (one answer per request).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from ._config import SimulatorConfig
from ._live import LiveEngine, QueueFullError
from ._metrics import ReplicaMetrics
from ._sse import SYSTEM_FINGERPRINT, ChunkFormat, SSEResponse
from ._tokens import TOKEN_COUNT_METHOD, chat_prompt_tokens, synthetic_text, text_tokens

__all__ = ["create_app"]

_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
"""``max_tokens`` of a ``/v1/completions`` request that sets none (vLLM's ``CompletionRequest`` default)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    n: int = 1
    temperature: float | None = None
    seed: int | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatBody(_Body):
    messages: list[_Message]
    max_completion_tokens: int | None = None


class CompletionBody(_Body):
    prompt: str | list[int] | list[str] | list[list[int]] | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError", *, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def _bad_value(param: str, requirement: str, value: object) -> ApiError:
    """vLLM's wording for a parameter out of range: ``"<requirement>. (parameter=<param>, value=<value>)"``."""
    return ApiError(400, f"{requirement}. (parameter={param}, value={value})", param=param)


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated request: what to simulate and how to answer."""

    chat: bool
    model: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: str
    """``length`` when the output ends at its token limit, ``stop`` when it ends by itself (drawn length)."""
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool


def _content_text(message: _Message) -> str:
    if isinstance(message.content, str):
        return message.content
    if message.content is None:
        return ""
    return "".join(str(part.get("text", "")) for part in message.content if isinstance(part, dict))


def _completion_prompt_tokens(prompt: str | list[int] | list[str] | list[list[int]] | None) -> int:
    if prompt is None or len(prompt) == 0:
        raise ApiError(
            400,
            "Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)",
            param="prompt",
        )
    if isinstance(prompt, str):
        return max(1, text_tokens(prompt))
    if all(isinstance(x, int) for x in prompt):
        return len(prompt)
    if len(prompt) == 1:
        only = prompt[0]
        if isinstance(only, str):
            return max(1, text_tokens(only))
        if isinstance(only, list):
            return max(1, len(only))
    raise ApiError(400, "send one prompt per request (a string or a list of token ids)", param="prompt")


def _stop_cut(output_tokens: int, stops: tuple[str, ...]) -> tuple[int, int | None, str | None]:
    """(tokens generated, character position where the text ends, the stop string) when a stop string appears in
    the synthetic text; the stop string itself is not returned, as OpenAI and vLLM do."""
    text = synthetic_text(0, output_tokens)
    found = sorted((text.find(s), s) for s in stops if s and text.find(s) >= 0)
    if not found:
        return output_tokens, None, None
    cut, stop = found[0]
    end, position = cut + len(stop), 0
    for index in range(output_tokens):
        position += len(synthetic_text(index, 1))
        if position >= end:
            return index + 1, cut, stop
    return output_tokens, cut, stop  # pragma: no cover - the stop string lies inside the text


class _Answer:
    """Builds the response pieces of one job, with the fields vLLM's responses carry."""

    def __init__(self, job: _Job, cut: int | None, stop: str | None) -> None:
        self.job = job
        self.cut = cut
        self.stop = stop
        self.position = 0
        self.id = ("chatcmpl-" if job.chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())

    def piece(self, index: int) -> str:
        text = synthetic_text(index, 1)
        start, self.position = self.position, self.position + len(text)
        if self.cut is not None:
            text = text[: max(0, self.cut - start)]
        return text

    def finish_reason(self) -> str:
        return "stop" if self.cut is not None else self.job.finish_reason

    def chunks(self, generated: int) -> ChunkFormat:
        """The SSE bytes of this answer streamed (``generated`` tokens)."""
        pieces = None if self.cut is None else [self.piece(index) for index in range(generated)]
        return ChunkFormat(
            chat=self.job.chat,
            response_id=self.id,
            created=self.created,
            model=self.job.model,
            finish_reason=self.finish_reason(),
            pieces=pieces,
            usage=self.usage(generated) if self.job.include_usage else None,
            stop_reason=self.stop,
        )

    def usage(self, completion_tokens: int) -> dict[str, int]:
        prompt = self.job.prompt_tokens
        return {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion_tokens,
            "completion_tokens": completion_tokens,
        }

    def whole(self, text: str, completion_tokens: int) -> dict[str, Any]:
        ending = {"finish_reason": self.finish_reason(), "stop_reason": self.stop, "token_ids": None}
        body: dict[str, Any] = {"id": self.id}
        if self.job.chat:
            message = {"role": "assistant", "content": text, "refusal": None, "annotations": None,
                       "audio": None, "function_call": None, "reasoning": None}  # fmt: skip
            choice = {"index": 0, "message": message, "logprobs": None, **ending, "routed_experts": None}
            body |= {"object": "chat.completion", "created": self.created, "model": self.job.model}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, **ending, "prompt_logprobs": None,
                      "prompt_token_ids": None, "routed_experts": None}  # fmt: skip
            body |= {"object": "text_completion", "created": self.created, "model": self.job.model}
        usage = self.usage(completion_tokens) | {
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
        body |= {
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "usage": usage,
        }
        if self.job.chat:
            body |= {"prompt_logprobs": None, "prompt_token_ids": None, "prompt_text": None}
        return body | {"kv_transfer_params": None, "ec_transfer_params": None, "metrics": None}


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """vLLM's text for a body that does not validate (``N validation error(s):`` then each error) and the first
    error's location as ``param`` (``body.messages``)."""
    if not errors:
        return "Validation error", None
    label = "error" if len(errors) == 1 else "errors"
    lines = []
    for error in errors[:3]:
        shown = {key: error[key] for key in ("type", "loc", "msg") if key in error}
        shown["loc"] = ".".join(str(part) for part in error.get("loc", ()))
        lines.append(f"  {shown}")
    param = ".".join(str(part) for part in errors[0].get("loc", ())) or None
    return f"{len(errors)} validation {label}:\n" + "\n".join(lines), param


def create_app(config: SimulatorConfig) -> FastAPI:
    """A FastAPI app serving ``config``'s simulated replica; the engine runs while the app's lifespan does."""
    metrics = ReplicaMetrics(
        config.served_model, max_model_len=config.max_model_len, legacy=config.legacy_metrics
    )
    holder: dict[str, LiveEngine] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine = LiveEngine(config, metrics)
        engine.start()
        holder["engine"] = engine
        try:
            yield
        finally:
            await engine.stop()
            holder.clear()

    app = FastAPI(title="servewise simulator", lifespan=lifespan)
    headers = {"x-servewise-token-count": TOKEN_COUNT_METHOD, "x-servewise-simulated": config.describe()}

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, err.message, err.kind, err.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(list(err.errors()))
        return _error(400, message, "Bad Request", param)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if "engine" in holder else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=_PROMETHEUS_TEXT)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        now = int(time.time())
        permission = {
            "id": f"modelperm-{uuid.uuid4().hex[:16]}", "object": "model_permission", "created": now,
            "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
            "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False, "organization": "*",
            "group": None, "is_blocking": False,
        }  # fmt: skip
        card = {
            "id": config.served_model,
            "object": "model",
            "created": now,
            "owned_by": "servewise-simulator",
            "root": config.served_model,
            "parent": None,
            "max_model_len": config.max_model_len,
            "permission": [permission],
            "servewise": {
                "simulated": config.describe(),
                "catalog_model": config.model,
                "speed": config.speed,
                "max_num_seqs": config.engine.max_num_seqs,
                "max_num_batched_tokens": config.engine.max_num_batched_tokens,
                "kv_blocks": config.engine.kv_blocks,
                "block_size": config.engine.block_size,
                "provenance": config.provenance,
                "basis": config.basis,
                "token_count": TOKEN_COUNT_METHOD,
                "response_text": "synthetic",
            },
        }
        return JSONResponse({"object": "list", "data": [card]}, headers=headers)

    def job_for(body: _Body, prompt_tokens: int, max_tokens: int | None, default_max: int | None) -> _Job:
        """Check ``body`` in vLLM's order (model, sampling parameters, lengths) and size its output."""
        model = body.model or config.served_model
        if model not in config.names:
            raise ApiError(
                404,
                f"The model `{model}` does not exist. Valid aliases: {', '.join(config.names)}.",
                "NotFoundError",
                param="model",
            )
        if body.n != 1:
            raise _bad_value("n", "the simulator answers one choice per request; use n=1", body.n)
        if body.temperature is not None and not 0 <= body.temperature <= 2:
            raise _bad_value(
                "temperature", f"temperature must be in [0, 2], got {body.temperature}", body.temperature
            )
        limit = config.max_model_len
        if max_tokens is not None and max_tokens > limit:
            raise _bad_value(
                "max_tokens",
                f"max_tokens={max_tokens} cannot be greater than max_model_len={limit}. "
                "Please request fewer output tokens",
                max_tokens,
            )
        if prompt_tokens > limit:
            raise _bad_value(
                "input_tokens",
                f"This model's maximum context length is {limit} tokens. However, your prompt contains "
                f"{prompt_tokens} input tokens, which exceeds this limit even without any output tokens. Please "
                "reduce the length of the input prompt",
                prompt_tokens,
            )
        room = limit - prompt_tokens
        cap = min(room, max_tokens if max_tokens is not None else default_max or room)
        if cap < 1:
            raise _bad_value("max_tokens", f"max_tokens must be at least 1, got {cap}", cap)
        engine = holder.get("engine")
        if engine is None:
            raise ApiError(
                503, "the simulator is shutting down; retry on another replica", "Service Unavailable"
            )
        if max_tokens is not None:  # the simulated model never emits EOS before max_tokens
            output, finish = cap, "length"
        else:
            drawn = engine.draw_output_tokens()
            output, finish = (cap, "length") if drawn >= cap else (drawn, "stop")
        stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return _Job(isinstance(body, ChatBody), model, prompt_tokens, output, finish, stops, body.stream,
                    include_usage)  # fmt: skip

    async def run(job: _Job) -> Response:
        engine = holder["engine"]
        generated, cut, stop = _stop_cut(job.output_tokens, job.stops)
        answer = _Answer(job, cut, stop)
        try:
            stream = engine.submit(job.prompt_tokens, generated, answer.finish_reason())
        except QueueFullError:
            raise ApiError(
                503,
                "The engine is currently busy and cannot accept new requests. Please try again later or on a "
                "different instance.",
                "Service Unavailable",
            ) from None
        if job.stream:
            return SSEResponse(stream, answer.chunks(generated), metrics.lateness, headers)
        count = await stream.collect()
        text = "".join(answer.piece(index) for index in range(count))
        return JSONResponse(answer.whole(text, generated), headers=headers)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody) -> Response:
        if not body.messages:
            raise ApiError(
                400, "Cannot apply chat template to an empty conversation. Provide at least one message."
            )
        prompt = chat_prompt_tokens([_content_text(m) for m in body.messages])
        limit = body.max_tokens if body.max_completion_tokens is None else body.max_completion_tokens
        return await run(job_for(body, prompt, limit, None))

    @app.post("/v1/completions")
    async def completions(body: CompletionBody) -> Response:
        prompt = _completion_prompt_tokens(body.prompt)
        return await run(job_for(body, prompt, body.max_tokens, COMPLETIONS_DEFAULT_MAX_TOKENS))

    return app
