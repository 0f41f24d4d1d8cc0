"""Money on the edges of the request flow, against real HTTP upstreams: embeddings, a true cost above the
reservation, an answer lost after the request was sent, a client that hangs up on a non-streamed request, n > 1."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI, Request

from servewise.gateway import GatewayConfig
from tests.gateway.conftest import (
    MICRO_USD_PER_TOKEN,
    MODEL,
    RunningGateway,
    config_document,
    free_port,
    serve_gateway,
)

EMBED_MODEL = "tiny-embed"


def _embeddings_app() -> FastAPI:
    """A minimal OpenAI-compatible embeddings server. It counts one prompt token per character — more than the
    gateway's ⌈characters / 4⌉ estimate, like a real tokenizer on text the estimate gets wrong."""
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5, -0.25]}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app


@pytest.fixture(scope="module")
def embeddings_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_embeddings_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with httpx.Client() as client:
        for _ in range(400):  # poll until it answers (≤ 20 s)
            try:
                client.post(f"{url}/v1/embeddings", json={"model": "x", "input": "x"})
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


class _DropAfterRequest:
    """A TCP server that reads one HTTP request and closes the connection without answering: the request
    reached the upstream, the answer is lost (what a crashed or overloaded upstream looks like)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.received = 0
        """POSTs read to the end (each one an upstream that may have served the request)."""
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                sizes = [int(v.split(b":")[1]) for v in lines if v.lower().startswith(b"content-length")]
                length = sizes[0] if sizes else 0
                while len(body) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                if head.startswith(b"POST"):  # not the queue poller's GET /metrics
                    self.received += 1


def _gateway(url: str, sqlite_url: str, models: list[str]) -> Iterator[RunningGateway]:
    pool = {"name": "local", "url": url, "models": models, "usd_per_hour": 3.6, "tokens_per_s": 1}
    document = config_document(url, database_url=sqlite_url, pools=[pool])
    yield from serve_gateway(GatewayConfig.model_validate(document))


@pytest.fixture
def embed_gateway(embeddings_url: str, sqlite_url: str) -> Iterator[RunningGateway]:
    yield from _gateway(embeddings_url, sqlite_url, [EMBED_MODEL])


def test_embeddings_are_proxied_and_billed_from_the_upstream_usage(embed_gateway: RunningGateway) -> None:
    key = embed_gateway.new_key()
    reply = embed_gateway.client(key).embeddings.create(model=EMBED_MODEL, input=["hello world", "bye"])
    assert [d.embedding[0] for d in reply.data] == [11.0, 3.0]
    (row,) = embed_gateway.wait_for_rows(1)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 14, 0)
    assert row["micro_usd"] == 14 * MICRO_USD_PER_TOKEN


def test_a_true_cost_above_the_reservation_is_recorded_in_full_and_then_refuses(
    embed_gateway: RunningGateway,
) -> None:
    key = embed_gateway.new_key()
    text = "x" * 400  # estimated ⌈400 / 4⌉ = 100 tokens; the upstream counts 400
    embed_gateway.set_budget(scope="org", scope_id="acme", hard_micro_usd=150 * MICRO_USD_PER_TOKEN)
    client = embed_gateway.client(key)
    client.embeddings.create(model=EMBED_MODEL, input=text)  # reserves 100 tokens' worth: admitted
    (row,) = embed_gateway.wait_for_rows(1)
    assert row["micro_usd"] == 400 * MICRO_USD_PER_TOKEN  # the true cost, not the reservation
    (usage,) = embed_gateway.usage()
    assert usage.spent_micro_usd == 400 * MICRO_USD_PER_TOKEN > usage.budget.hard_micro_usd
    metrics = httpx.get(f"{embed_gateway.url}/metrics").text
    assert 'servewise_gateway_over_reservation_usd_total{route="local"} 0.3' in metrics
    with pytest.raises(openai.RateLimitError, match="would be exceeded"):
        client.embeddings.create(model=EMBED_MODEL, input="y")


def test_an_answer_lost_after_sending_is_billed_its_worst_case_and_not_retried(sqlite_url: str) -> None:
    upstream = _DropAfterRequest()
    try:
        for running in _gateway(upstream.url, sqlite_url, [MODEL]):
            key = running.new_key()
            with pytest.raises(openai.APIStatusError) as caught:
                running.client(key).chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=50
                )
            assert caught.value.status_code == 502
            (row,) = running.wait_for_rows(1)
            prompt = 4 + 1
            assert (row["status"], row["micro_usd"]) == ("error", (prompt + 50) * MICRO_USD_PER_TOKEN)
            assert (
                upstream.received == 1
            )  # sent once: a lost answer is never re-sent (it could be paid twice)
    finally:
        upstream.sock.close()


def test_a_client_that_hangs_up_on_a_whole_answer_pays_for_what_the_upstream_generated(
    slow_simulator_url: str, sqlite_url: str
) -> None:
    for running in _gateway(slow_simulator_url, sqlite_url, [MODEL]):
        key = running.new_key()
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Count."}], "max_tokens": 8}
        with pytest.raises(httpx.ReadTimeout):  # the client gives up long before 8 tokens at real speed
            httpx.post(
                f"{running.url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(5.0, read=0.05),
            )
        (row,) = running.wait_for_rows(1)
        # the upstream kept generating: the gateway waited for its usage and billed all of it
        assert (row["status"], row["completion_tokens"]) == ("ok", 8)
        assert row["micro_usd"] == (4 + 2 + 8) * MICRO_USD_PER_TOKEN


def test_n_choices_reserve_max_tokens_for_each(gateway: RunningGateway) -> None:
    key = gateway.new_key()
    prompt = 4 + 1
    # room for one choice of 100 tokens, not for two
    gateway.set_budget(scope="org", scope_id="acme", hard_micro_usd=(prompt + 150) * MICRO_USD_PER_TOKEN)
    with pytest.raises(openai.RateLimitError, match=r"needs up to \$0\.205"):
        gateway.client(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=100, n=2
        )
    with pytest.raises(openai.BadRequestError, match="`n` must be an integer from 1 to 128"):
        gateway.client(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=100, n=0
        )


def test_over_reservation_is_logged_once_a_minute_per_route_and_counted_every_time(
    embed_gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A prompt estimate that is systematically low must not log a line per request on the event loop."""
    client = embed_gateway.client(embed_gateway.new_key())
    with caplog.at_level("WARNING", logger="servewise.gateway.proxy"):
        for _ in range(3):
            client.embeddings.create(model=EMBED_MODEL, input="x" * 400)  # estimated 100 tokens, counted 400
        embed_gateway.wait_for_rows(3)
    warnings = [r for r in caplog.records if "more than its reservation" in r.getMessage()]
    assert len(warnings) == 1 and "on local" in warnings[0].getMessage()
    metrics = httpx.get(f"{embed_gateway.url}/metrics").text
    counted = re.search(r'servewise_gateway_over_reservation_usd_total\{route="local"\} (\S+)', metrics)
    assert counted is not None and float(counted.group(1)) == pytest.approx(0.9)
