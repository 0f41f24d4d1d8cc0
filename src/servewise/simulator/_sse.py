"""Streaming responses on the hot path: Server-Sent Events written straight from the engine's token callback.

Why not Starlette's ``StreamingResponse`` over an async generator: at 1,000 streams an H100 replica's step hands
1,000 tokens out at the same instant, and every token then cost a queue put, a task wake-up, a generator step,
``json.dumps`` of the whole chunk and a ``send`` through three middleware wrappers — about 20 µs before the bytes
reached the socket, so the last tokens of a step were handed over tens of milliseconds late. Here:

* ``ChunkFormat`` pre-encodes each request's chunk lines once (the ten synthetic words cycle, so a middle token is
  a list lookup); the bytes equal ``json.dumps(chunk, separators=(",", ":"))`` of the same OpenAI chunk
  (tests/simulator/test_sse.py checks them against the reference builder);
* ``SSEWriter.push`` runs inside the engine's callback, with no task switch: it formats the token and drives the
  ASGI ``send`` coroutine synchronously (``_drive``). ``send`` only suspends when the connection's write buffer is
  full (a client that stopped reading); the rest of that send then finishes in a task and later tokens queue
  behind it, joined into one write, so bytes never reorder;
* ``SSEResponse`` sends the headers, attaches the writer to the request's stream and waits until the last chunk is
  written or the client disconnects (then the request is cancelled in the engine, as vLLM aborts it).

Lateness (``servewise:token_emission_lateness_seconds``) is taken after ``send`` returned, i.e. when the token's
bytes were handed to the connection's transport, against the token's scheduled wall time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ._metrics import FastHistogram
from ._tokens import TOKEN_TEXTS

__all__ = ["SYSTEM_FINGERPRINT", "ChunkFormat", "SSEResponse", "SSEWriter", "TokenSink"]

SYSTEM_FINGERPRINT = "servewise-simulator"
"""What the simulator puts where vLLM writes ``vllm-<version>-<hash>``."""

_DONE = b"data: [DONE]\n\n"


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class ChunkFormat:
    """The SSE bytes of one streamed answer, shaped as vLLM 0.32 shapes them (tests/realvllm checks the shape
    against a real server): chat opens with a role chunk (``delta: {role, content: ""}``, sent together with the
    first token, as vLLM sends it once the first output arrives), each token chunk carries ``token_ids: null``
    (completions also ``stop_reason`` and ``prompt_token_ids``), the last one ``finish_reason`` and
    ``stop_reason``; then the usage chunk (``choices: []``) when asked for, and ``[DONE]``. The
    ``system_fingerprint`` rides on the usage chunk, or on the last token chunk when there is none."""

    def __init__(
        self,
        *,
        chat: bool,
        response_id: str,
        created: int,
        model: str,
        finish_reason: str,
        pieces: list[str] | None,
        usage: dict[str, int] | None,
        stop_reason: str | None = None,
        fingerprint: str = SYSTEM_FINGERPRINT,
    ) -> None:
        """``pieces``: each token's text when a stop string cut the output (else the synthetic words cycle);
        ``usage``: the final usage chunk's numbers when the client asked for it (``stream_options``);
        ``stop_reason``: the stop string that ended the output, if one did."""
        kind = "chat.completion.chunk" if chat else "text_completion"
        self.head = (
            b'data: {"id":' + _dump(response_id) + b',"object":"' + kind.encode() + b'","created":'
            + str(created).encode() + b',"model":' + _dump(model) + b',"choices":'
        )  # fmt: skip
        self.chat = chat
        self.finish = _dump(finish_reason)
        self.stop_reason = _dump(stop_reason)
        self.pieces = None if pieces is None else [_dump(p) for p in pieces]
        self.plain = [self.line(_dump(word), finish=None) for word in TOKEN_TEXTS]
        self.role = (
            self.head + b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
            b'"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}\n\n'
        )  # fmt: skip
        fingerprint_json = b',"system_fingerprint":' + _dump(fingerprint)
        self.last_tail = b"}\n\n" if usage is not None else fingerprint_json + b"}\n\n"
        self.end = (
            _DONE
            if usage is None
            else self.head + b'[],"usage":' + _dump(usage) + fingerprint_json + b"}\n\n" + _DONE
        )

    def line(self, text_json: bytes, *, finish: bytes | None) -> bytes:
        """One token chunk line: ``text_json`` is the token's text as JSON; ``finish``: the finish reason as JSON
        on the last token (None on the others)."""
        if self.chat:
            choice = b'{"index":0,"delta":{"content":' + text_json + b'},"logprobs":null,'
            if finish is None:
                choice += b'"finish_reason":null,"token_ids":null}'
            else:
                choice += (
                    b'"finish_reason":'
                    + finish
                    + b',"stop_reason":'
                    + self.stop_reason
                    + b',"token_ids":null}'
                )
        else:
            reason = b"null" if finish is None else finish
            stop = b"null" if finish is None else self.stop_reason
            choice = (
                b'{"index":0,"text":' + text_json + b',"logprobs":null,"finish_reason":' + reason
                + b',"stop_reason":' + stop + b',"prompt_token_ids":null,"token_ids":null}'
            )  # fmt: skip
        return self.head + b"[" + choice + b"]" + (b"}\n\n" if finish is None else self.last_tail)

    def token(self, index: int, finished: bool) -> bytes:
        """Token ``index``'s bytes (0 is the first output token; chat: with the role chunk before it);
        ``finished``: it is the last one."""
        if self.pieces is None:
            if index and not finished:
                return self.plain[index % len(TOKEN_TEXTS)]
            text = _dump(TOKEN_TEXTS[index % len(TOKEN_TEXTS)])
        else:
            text = self.pieces[index]
        data = self.line(text, finish=self.finish if finished else None)
        return self.role + data if self.chat and index == 0 else data


class TokenSink(Protocol):
    """Where a request's tokens go as they become due (``RequestStream.attach``)."""

    def push(self, index: int, finished: bool, due_s: float) -> None:
        """Token ``index`` (0 first) is due at ``due_s`` (``time.monotonic`` seconds); ``finished``: the last one."""


class _Resume:
    """The rest of a ``send`` coroutine that suspended while driven synchronously, as an awaitable a task can run:
    it hands the future the coroutine waits on to the task, then resumes the coroutine."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: object) -> None:
        self.coro = coro
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, None, None]:
        signal = self.waiting_on
        while True:
            try:
                yield signal
            except BaseException as exc:  # cancellation reaches the coroutine where it waits
                try:
                    signal = self.coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                signal = self.coro.send(None)
            except StopIteration:
                return


def _drive(awaitable: Awaitable[None]) -> asyncio.Future[None] | None:
    """Run ``awaitable`` now, without a task switch; None when it completed, else the task finishing it."""
    if not isinstance(awaitable, Coroutine):  # an ASGI server whose send is not a coroutine function
        return asyncio.ensure_future(awaitable)
    coro = awaitable
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_Resume(coro, waiting_on))


class SSEWriter:
    """A ``TokenSink`` writing each token's chunk to the response as soon as it is pushed."""

    def __init__(self, send: Send, chunks: ChunkFormat, lateness: FastHistogram) -> None:
        self.send = send
        self.chunks = chunks
        self.lateness = lateness
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        """True once the last chunk is written; False when the client went away first."""
        self._busy: asyncio.Future[None] | None = None
        self._backlog: list[tuple[bytes, bool, float]] = []

    def push(self, index: int, finished: bool, due_s: float) -> None:
        if self.done.done():
            return
        data = self.chunks.token(index, finished)
        if finished:
            data += self.chunks.end
        if self._busy is not None:
            self._backlog.append((data, finished, due_s))
            return
        self._write(data, finished, (due_s,))

    def _write(self, data: bytes, last: bool, dues_s: tuple[float, ...]) -> None:
        message: Message = {"type": "http.response.body", "body": data, "more_body": not last}
        try:
            pending = _drive(self.send(message))
        except Exception as exc:  # the response coroutine re-raises it
            self._fail(exc)
            return
        if pending is None:
            self._written(last, dues_s)
        else:
            self._busy = pending
            pending.add_done_callback(lambda task: self._resumed(task, last, dues_s))

    def _written(self, last: bool, dues_s: tuple[float, ...]) -> None:
        now = time.monotonic()
        observe = self.lateness.observe
        for due in dues_s:
            observe(max(0.0, now - due))
        if last and not self.done.done():
            self.done.set_result(True)

    def _resumed(self, task: asyncio.Future[None], last: bool, dues_s: tuple[float, ...]) -> None:
        self._busy = None
        if task.cancelled() or task.exception() is not None:
            self._fail(task.exception() or asyncio.CancelledError())
            return
        self._written(last, dues_s)
        if self._backlog and not self.done.done():
            backlog, self._backlog = self._backlog, []
            data = b"".join(item[0] for item in backlog)
            self._write(data, backlog[-1][1], tuple(item[2] for item in backlog))

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class _Stream(Protocol):
    def attach(self, sink: TokenSink) -> None: ...

    def close(self) -> None: ...


class SSEResponse(Response):
    """``text/event-stream`` response fed by ``SSEWriter`` (same headers as Starlette's ``StreamingResponse``)."""

    media_type = "text/event-stream"

    def __init__(
        self, stream: _Stream, chunks: ChunkFormat, lateness: FastHistogram, headers: dict[str, str]
    ) -> None:
        self.status_code = 200
        self.background = None
        self.stream = stream
        self.chunks = chunks
        self.lateness = lateness
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        writer = SSEWriter(send, self.chunks, self.lateness)
        watcher = asyncio.ensure_future(_watch_disconnect(receive, writer.done))
        try:
            self.stream.attach(writer)
            await writer.done
        finally:
            watcher.cancel()
            self.stream.close()


async def _watch_disconnect(receive: Receive, done: asyncio.Future[bool]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not done.done():
                done.set_result(False)
            return
