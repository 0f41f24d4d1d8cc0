"""Time ``servewise bench``'s client: requests/s and per-token cost it sustains against a zero-delay endpoint.

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_bench.py [--requests 300] [--no-append]

The endpoint is a FastAPI/uvicorn server in a separate process that streams OpenAI SSE chunks with no delay at all
(one token per chunk, then a usage chunk), so every millisecond measured is the client's, the server's or the
loopback's. Client CPU is ``time.process_time`` of this process only (the server's CPU is not in it), divided by
the requests or tokens it handled: the cost of measuring, the number that bounds how much load one client process
can generate. TTFT p50 and ITL p50 against a zero-delay server are the floor of what the client can resolve.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from rich.console import Console
from rich.table import Table

from machine import machine
from servewise.bench import Level, LoadMode, LoadPlan, OpenAIStreamClient, run_plan
from servewise.perf._arrivals import uniform_lengths

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
PROMPT_TOKENS = 64


@dataclass(frozen=True)
class Scenario:
    what: str
    concurrency: int
    output_tokens: int
    requests: int


def _serve(port: int) -> None:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/completions")
    async def completions(request: Request) -> StreamingResponse:
        body = await request.json()
        n = int(body["max_tokens"])

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(n):
                yield b'data: {"choices": [{"index": 0, "text": " tok"}]}\n\n'
            usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n}
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"the zero-delay server at {url} did not start")


def _measure(url: str, scenario: Scenario) -> dict[str, float]:
    plan = LoadPlan(
        levels=(Level(LoadMode.closed, concurrency=scenario.concurrency),),
        sampler=uniform_lengths(PROMPT_TOKENS, scenario.output_tokens),
        requests=scenario.requests,
        warmup=scenario.concurrency,
    )

    async def go():
        async with OpenAIStreamClient(url, model="zero") as client:
            cpu, wall = time.process_time(), time.perf_counter()
            results = await run_plan(plan, client)
            return results, time.process_time() - cpu, time.perf_counter() - wall

    results, cpu_s, _ = asyncio.run(go())
    stats = results[0].stats
    if stats.completed < scenario.requests:
        raise SystemExit(f"{scenario}: {stats.failed} request(s) failed: {stats.errors}")
    handled = scenario.requests + scenario.concurrency  # warm-up requests cost CPU too
    tokens = handled * scenario.output_tokens
    return {
        "ok": stats.completed,
        "req_per_s": stats.requests_per_s,
        "tok_per_s": stats.output_tokens_per_s,
        "cpu_ms_per_req": cpu_s / handled * 1000,
        "cpu_us_per_tok": cpu_s / tokens * 1e6,
        "ttft_p50_ms": stats.ttft.p50_ms or 0.0,
        "itl_p50_us": float("nan") if stats.itl.p50_ms is None else stats.itl.p50_ms * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per 1-token scenario")
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    scenarios = (
        Scenario("1 output token", 1, 1, args.requests),
        Scenario("1 output token", 8, 1, args.requests),
        Scenario("1 output token", 32, 1, args.requests),
        Scenario("512 output tokens", 1, 512, max(10, args.requests // 15)),
        Scenario("512 output tokens", 8, 512, max(16, args.requests // 10)),
    )
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url)
        rows = [(s, _measure(url, s)) for s in scenarios]
    finally:
        server.terminate()
        server.join(10)

    columns = ("scenario", "clients", "requests ok", "req/s", "output tok/s", "client CPU ms/req",
               "client CPU µs/token", "TTFT p50 ms", "ITL p50 µs")  # fmt: skip
    cells = [
        (
            s.what,
            str(s.concurrency),
            f"{m['ok']:.0f}/{s.requests}",
            f"{m['req_per_s']:,.0f}",
            f"{m['tok_per_s']:,.0f}",
            f"{m['cpu_ms_per_req']:.2f}",
            f"{m['cpu_us_per_tok']:.1f}",
            f"{m['ttft_p50_ms']:.2f}",
            "n/a" if m["itl_p50_us"] != m["itl_p50_us"] else f"{m['itl_p50_us']:.0f}",
        )
        for s, m in rows
    ]
    table = Table(title="servewise bench client against a zero-delay endpoint (server in another process)")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for line in cells:
        table.add_row(*line)
    Console(width=max(Console().width, 140)).print(table)

    scope = (
        f"closed loop against a zero-delay FastAPI/uvicorn SSE server in a separate process (one token per chunk), "
        f"{PROMPT_TOKENS}-token synthetic prompts, warm-up = one request per client (left out); req/s and tok/s "
        "are the client's measured throughput; client CPU = this process's CPU time per request / per output "
        "token (the server's CPU not included); TTFT/ITL p50 = the floor the client resolves (ITL n/a: one token, "
        "no gap); 2 cores shared by client and server, so the numbers are a lower bound of what one client process "
        "sustains"
    )
    header = "| " + " | ".join(columns) + " |\n|---|" + "---:|" * (len(columns) - 1)
    markdown = "\n".join([header, *("| " + " | ".join(line) + " |" for line in cells)])
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        section = f"\n## bench_bench — {stamp}\n\nMachine: {machine()}.\nScope: {scope}.\n\n{markdown}\n"
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(section)
        print(f"appended to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
