"""A tiny real OpenAI-compatible server for the bench tests: FastAPI + uvicorn on a free port in a thread, streaming
SSE in OpenAI's format with fixed delays, and counting what it saw (bodies, requests in flight).

Behaviour per request: wait ``ttft_s`` then stream ``max_tokens`` content chunks ``itl_s`` apart (chat: a role-only
chunk first, at once), then a usage chunk (when asked for) and ``[DONE]``. ``tokens_per_chunk`` > 1 packs several
tokens in a chunk, as a server with a stream interval does. A model named ``broken`` answers HTTP 500; a prompt
containing ``FAIL`` answers 400.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

MODEL = "tiny/model-1"


@dataclass
class TinyState:
    ttft_s: float = 0.02
    itl_s: float = 0.005
    tokens_per_chunk: int = 1
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, **changes: Any) -> None:
        with self.lock:
            self.bodies.clear()
            self.in_flight = 0
            self.max_in_flight = 0
        for key, value in changes.items():
            setattr(self, key, value)


def _app(state: TinyState) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL, "object": "model"}, {"id": "other", "object": "model"}],
        }

    async def stream(body: dict[str, Any], chat: bool) -> AsyncIterator[bytes]:
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            n = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
            if chat:
                role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
                yield f"data: {json.dumps(role)}\n\n".encode()
            await asyncio.sleep(state.ttft_s)
            sent = 0
            while sent < n:
                if sent:
                    await asyncio.sleep(state.itl_s)
                k = min(state.tokens_per_chunk, n - sent)
                text = " tok" * k
                choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
                yield f"data: {json.dumps({'choices': [choice]})}\n\n".encode()
                sent += k
            if (body.get("stream_options") or {}).get("include_usage"):
                prompt = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
                usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": n}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            with state.lock:
                state.in_flight -= 1

    async def handle(request: Request, chat: bool) -> Response:
        body = await request.json()
        with state.lock:
            state.bodies.append(body)
        if body.get("model") == "broken":
            return JSONResponse(
                {"error": {"message": "engine died", "type": "server_error"}}, status_code=500
            )
        text = body.get("prompt") or json.dumps(body.get("messages"))
        if "FAIL" in str(text):
            return JSONResponse(
                {"error": {"message": "bad prompt", "type": "invalid_request"}}, status_code=400
            )
        return StreamingResponse(stream(body, chat), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await handle(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await handle(request, chat=True)

    return app


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TinyServer:
    url: str
    state: TinyState


@contextmanager
def running_tiny_server() -> Iterator[TinyServer]:
    """Start the server in a daemon thread; poll /health with a deadline; stop and join on exit."""
    state = TinyState()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(state), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15.0
    try:
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the tiny test server did not start")
                time.sleep(0.01)
        yield TinyServer(url, state)
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
