"""The OpenAI-compatible HTTP surface of the simulated replica (the subset ``vllm serve`` answers that clients and
load generators use): ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions`` (JSON or SSE streaming),
``/health`` and ``/metrics``. Errors use OpenAI's body ``{"error": {"message", "type", "param", "code"}}``.
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
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._config import SimulatorConfig
from ._live import LiveEngine, QueueFullError
from ._metrics import ReplicaMetrics
from ._sse import ChunkFormat, SSEResponse
from ._tokens import TOKEN_COUNT_METHOD, chat_prompt_tokens, synthetic_text, text_tokens

__all__ = ["create_app"]

_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    n: int = 1
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatBody(_Body):
    messages: list[_Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionBody(_Body):
    prompt: str | list[int] | list[str] | list[list[int]]


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, kind: str, *, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code


def _error(
    status: int, message: str, kind: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated request: what to simulate and how to answer."""

    chat: bool
    model: str
    prompt_tokens: int
    output_tokens: int
    max_tokens: int | None
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool


def _content_text(message: _Message) -> str:
    if isinstance(message.content, str):
        return message.content
    if message.content is None:
        return ""
    return "".join(str(part.get("text", "")) for part in message.content if isinstance(part, dict))


def _completion_prompt_tokens(prompt: str | list[int] | list[str] | list[list[int]]) -> int:
    if isinstance(prompt, str):
        return max(1, text_tokens(prompt))
    if all(isinstance(x, int) for x in prompt):
        return max(1, len(prompt))
    if len(prompt) == 1:
        only = prompt[0]
        if isinstance(only, str):
            return max(1, text_tokens(only))
        if isinstance(only, list):
            return max(1, len(only))
    raise ApiError(
        400,
        "send one prompt per request (a string or a list of token ids)",
        "BadRequestError",
        param="prompt",
    )


def _stop_cut(output_tokens: int, stops: tuple[str, ...]) -> tuple[int, int | None]:
    """(tokens generated, character position where the text ends) when a stop string appears in the synthetic text;
    the stop string itself is not returned, as OpenAI and vLLM do."""
    text = synthetic_text(0, output_tokens)
    found = sorted((text.find(s), s) for s in stops if s and text.find(s) >= 0)
    if not found:
        return output_tokens, None
    cut, stop = found[0]
    end, position = cut + len(stop), 0
    for index in range(output_tokens):
        position += len(synthetic_text(index, 1))
        if position >= end:
            return index + 1, cut
    return output_tokens, cut  # pragma: no cover - the stop string lies inside the text


class _Answer:
    """Builds the response pieces of one job."""

    def __init__(self, job: _Job, cut: int | None) -> None:
        self.job = job
        self.cut = cut
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
        if (
            self.cut is None
            and self.job.max_tokens is not None
            and self.job.output_tokens >= self.job.max_tokens
        ):
            return "length"
        return "stop"

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
        )

    def usage(self, completion_tokens: int) -> dict[str, int]:
        prompt = self.job.prompt_tokens
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }

    def whole(self, text: str, completion_tokens: int) -> dict[str, Any]:
        finish = self.finish_reason()
        if self.job.chat:
            message = {"role": "assistant", "content": text}
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            kind = "text_completion"
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.job.model,
            "choices": [choice],
            "usage": self.usage(completion_tokens),
        }


def create_app(config: SimulatorConfig) -> FastAPI:
    """A FastAPI app serving ``config``'s simulated replica; the engine runs while the app's lifespan does."""
    metrics = ReplicaMetrics(config.served_model)
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
        return _error(err.status, err.message, err.kind, err.param, err.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p != "body"]
        message = f"{'.'.join(where) or 'body'}: {first.get('msg', 'invalid request body')}"
        return _error(400, message, "BadRequestError", param=".".join(where) or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "NotFoundError" if err.status_code == 404 else "invalid_request_error"
        return _error(err.status_code, str(err.detail), kind)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if "engine" in holder else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=_PROMETHEUS_TEXT)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        card = {
            "id": config.served_model,
            "object": "model",
            "created": 0,
            "owned_by": "servewise-simulator",
            "root": config.served_model,
            "parent": None,
            "max_model_len": config.max_model_len,
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

    def job_for(body: _Body, prompt_tokens: int, max_tokens: int | None, param: str) -> _Job:
        if body.model not in config.names:
            raise ApiError(
                404,
                f"The model `{body.model}` does not exist.",
                "NotFoundError",
                param="model",
                code="model_not_found",
            )
        if body.n != 1:
            raise ApiError(400, f"n={body.n} is not supported; use n=1", "BadRequestError", param="n")
        room = config.max_model_len - prompt_tokens
        if room < 1 or (max_tokens is not None and max_tokens > room):
            asked = prompt_tokens + (max_tokens or 1)
            raise ApiError(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens. However, you requested "
                f"{asked} tokens ({prompt_tokens} in the {param}, {max_tokens or 1} in the completion). "
                f"Please reduce the length of the {param} or completion.",
                "BadRequestError",
                param=param,
                code="context_length_exceeded",
            )
        engine = holder.get("engine")
        if engine is None:
            raise ApiError(
                503, "the simulator is shutting down; retry on another replica", "ServiceUnavailable"
            )
        output = max_tokens if max_tokens is not None else min(engine.draw_output_tokens(), room)
        stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return _Job(isinstance(body, ChatBody), body.model, prompt_tokens, output, max_tokens, stops, body.stream,
                    include_usage)  # fmt: skip

    async def run(job: _Job) -> Response:
        engine = holder["engine"]
        generated, cut = _stop_cut(job.output_tokens, job.stops)
        try:
            stream = engine.submit(job.prompt_tokens, generated)
        except QueueFullError as err:
            raise ApiError(
                429,
                f"the server is overloaded: {err}; retry later",
                "rate_limit_exceeded",
                code="rate_limit_exceeded",
            ) from None
        answer = _Answer(job, cut)
        if job.stream:
            return SSEResponse(stream, answer.chunks(generated), metrics.lateness, headers)
        count = await stream.collect()
        text = "".join(answer.piece(index) for index in range(count))
        return JSONResponse(answer.whole(text, generated), headers=headers)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody) -> Response:
        prompt = chat_prompt_tokens([_content_text(m) for m in body.messages])
        return await run(job_for(body, prompt, body.max_completion_tokens or body.max_tokens, "messages"))

    @app.post("/v1/completions")
    async def completions(body: CompletionBody) -> Response:
        return await run(job_for(body, _completion_prompt_tokens(body.prompt), body.max_tokens, "prompt"))

    return app
