"""What the gateway adds to a request's latency (targets: p50 ≤ 3 ms, p99 ≤ 15 ms at 200 RPS with budgets and the
ledger on) and how many requests per second one gateway process sustains.

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_gateway.py [--runs 3] [--rps 200] [--seconds 10] [--backends sql redis] [--no-append]

Set-up per run, all on loopback, each server in its own process: a zero-delay OpenAI-compatible upstream (a bare
ASGI app answering a fixed 16-token chat completion, so the upstream costs the same in both arms) and one gateway
process (``create_gateway_app`` under uvicorn) with that upstream as its only pool, a tenant whose org and key each
have a monthly hard budget far above what the run spends (every request reserves against both levels and is
settled through the ledger, which writes every row), the exact cache on (requests are sampled — no temperature — so
none is cacheable and every one goes upstream) and the queue poller on. ``sql`` keeps the budget counters in the
SQLite database; ``redis`` in Redis (skipped when Redis does not answer).

Measures, from this process (httpx, keep-alive connections, non-streaming ``/v1/chat/completions``):

* **added latency**: an open-loop load at ``--rps`` for ``--seconds`` straight to the upstream, then the same load
  through the gateway; added p50 = p50(gateway) − p50(direct), likewise p99 (a difference of percentiles, not the
  percentile of per-request differences);
* **server overhead**: the gateway's own ``servewise_gateway_overhead_seconds`` histogram over the same requests
  (time in the gateway minus upstream waits; docs/gateway-routing.md), p50/p99 interpolated within buckets as
  PromQL's ``histogram_quantile`` does;
* **max RPS**: a closed loop of 16 concurrent clients (one connection each), 3,000 requests, through the gateway
  (and direct, for scale).

The client, the upstream and the gateway share the machine's cores, so these are upper bounds of the overhead a
dedicated gateway host would add.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from machine import machine

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TARGET_P50_MS, TARGET_P99_MS = 3.0, 15.0
MODEL = "bench-model"
MAX_RPS_CONCURRENCY, MAX_RPS_REQUESTS = 16, 3000
WARMUP_REQUESTS = 200
OVERHEAD_TOP_MS = 1000.0  # the overhead histogram's last finite bucket
START_TIMEOUT_S = 60.0
REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "Hello, gateway!"}], "max_tokens": 16}
_COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok " * 16}, "logprobs": None,
                 "finish_reason": "length"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
}).encode()  # fmt: skip
_METRICS = (
    b"# TYPE vllm:num_requests_waiting gauge\n"
    b'vllm:num_requests_waiting{engine="0",model_name="bench-model"} 0.0\n'
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def upstream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A zero-delay upstream: a fixed completion (SSE when asked to stream), ``/metrics`` with an empty queue."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    content_type, payload = (
        b"application/json",
        b'{"object":"list","data":[{"id":"bench-model","object":"model"}]}',
    )
    if path.endswith("/metrics"):
        content_type, payload = b"text/plain; version=0.0.4", _METRICS
    elif path.endswith("/completions"):
        payload = _COMPLETION
        if body and json.loads(body).get("stream"):
            content_type, payload = b"text/event-stream", _sse_answer()
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _sse_answer() -> bytes:
    from servewise.gateway._cache import replay_sse

    return b"".join(replay_sse(json.loads(_COMPLETION), include_usage=True))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_gateway(config_path: str, port: int) -> None:
    from servewise.gateway import load_gateway_config
    from servewise.gateway import serve_gateway as serve

    serve(load_gateway_config(Path(config_path)), host="127.0.0.1", port=port, log_level="warning")


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.DEVNULL)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server for {url} exited with code {proc.returncode}")
            try:
                if client.get(f"{url}/v1/models", headers=headers).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {START_TIMEOUT_S:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _redis_url() -> str | None:
    url = os.environ.get("SERVEWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        from redis import Redis

        Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:
        return None
    return url


def _setup(folder: Path, upstream_url: str, backend: str, redis_url: str | None) -> tuple[Path, str]:
    """A gateway config with one pool, a tenant with org- and key-level budgets; returns (config path, API key)."""
    from servewise.gateway._budget_redis import RedisBudgetStore
    from servewise.gateway._budget_sql import SqlBudgetStore
    from servewise.gateway._budgets import BudgetStore
    from servewise.gateway._services import open_gateway_engine
    from servewise.gateway._tenancy import create_key

    db_url = f"sqlite:///{folder / f'gateway-{backend}.db'}"
    prefix = f"swbench-{uuid.uuid4().hex[:8]}"
    config = {
        "database_url": db_url,
        "redis_url": redis_url if backend == "redis" else None,
        "redis_prefix": prefix,
        "budget_backend": backend,
        "pools": [
            {
                "name": "local",
                "url": upstream_url,
                "models": [MODEL],
                "usd_per_hour": 4.0,
                "tokens_per_s": 2000,
            }
        ],
        "routing": {"poll_interval_s": 2.0},
        "cache": {"exact": True},
    }
    path = folder / f"gateway-{backend}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    engine = open_gateway_engine(db_url)
    key = create_key(engine, org="bench", team="load", name="bench")

    async def budgets() -> None:
        store: BudgetStore = (
            RedisBudgetStore(redis_url, engine, prefix=prefix) if backend == "redis" and redis_url
            else SqlBudgetStore(engine)
        )  # fmt: skip
        try:
            for scope, scope_id in (("org", "bench"), ("key", key.info.key_id)):
                await store.set_budget(scope=scope, scope_id=scope_id, window="monthly",
                                       soft_micro_usd=None, hard_micro_usd=10**12)  # fmt: skip
        finally:
            await store.close()

    asyncio.run(budgets())
    engine.dispose()
    return path, key.plaintext


async def _open_loop(
    url: str, headers: dict[str, str], rps: float, seconds: float
) -> tuple[list[float], int]:
    """Latencies (s) of requests started on a fixed schedule (open loop).

    Why no collector during the load: a full collection of this process (it imports the gateway for set-up) pauses
    it for ~100 ms, and the requests due meanwhile then leave together — a burst, not an open loop — which the
    gateway's one event loop queues (p99 ~40 ms instead of ~10 ms)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return await _open_loop_measured(url, headers, rps, seconds)
    finally:
        gc.enable()
        gc.unfreeze()


async def _open_loop_measured(
    url: str, headers: dict[str, str], rps: float, seconds: float
) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(timeout=30.0, limits=limits, trust_env=False) as client:
        n = round(rps * seconds)
        start = time.perf_counter() + 0.05
        errors = 0

        async def one(i: int) -> float | None:
            nonlocal errors
            await asyncio.sleep(max(0.0, start + i / rps - time.perf_counter()))
            began = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/chat/completions", json=REQUEST, headers=headers)
            except httpx.HTTPError:
                errors += 1
                return None
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                errors += 1
                return None
            return elapsed

        results = await asyncio.gather(*(one(i) for i in range(n)))
    return [r for r in results if r is not None], errors


async def _closed_loop(url: str, headers: dict[str, str], requests: int, concurrency: int) -> float:
    """Requests per second of ``concurrency`` clients sending ``requests`` back to back. Each client has its own
    one-connection httpx client: one shared pool slows down sharply with many connections (1,500 → 180 req/s from
    8 to 64 connections on the zero-delay upstream here), which would measure the client, not the server."""
    left = requests

    async def worker() -> int:
        nonlocal left
        ok = 0
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=30.0, limits=limits, trust_env=False) as client:
            while left > 0:
                left -= 1
                try:
                    response = await client.post(f"{url}/v1/chat/completions", json=REQUEST, headers=headers)
                except httpx.HTTPError:
                    continue
                ok += response.status_code == 200
        return ok

    began = time.perf_counter()
    done = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
    return done / (time.perf_counter() - began)


def _histogram(url: str, name: str) -> list[tuple[float, float]]:
    text = httpx.get(f"{url}/metrics", timeout=5.0, trust_env=False).text
    return sorted(
        (float(s.labels["le"]), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == f"{name}_bucket"
    )


def _quantile(buckets: list[tuple[float, float]], q: float, before: list[tuple[float, float]]) -> float:
    """``histogram_quantile`` over the observations between two scrapes (linear within the bucket)."""
    counts = [(le, c - b) for (le, c), (_, b) in zip(buckets, before, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= rank:
            if le == float("inf"):
                return float("inf")  # beyond the last finite bucket
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = le, cumulative
    return lower


def _ms_pair(p50_ms: float, p99_ms: float) -> str:
    def one(ms: float) -> str:
        return f"> {OVERHEAD_TOP_MS:g}" if ms == float("inf") else f"{ms:.2f}"

    return f"{one(p50_ms)} / {one(p99_ms)}"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_once(backend: str, rps: float, seconds: float, redis_url: str | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="swbench-") as tmp:
        up_port, gw_port = _free_port(), _free_port()
        upstream = _spawn("--serve-upstream", str(up_port))
        gateway: subprocess.Popen[bytes] | None = None
        try:
            up_url = f"http://127.0.0.1:{up_port}"
            _wait_ready(up_url, upstream)
            config, key = _setup(Path(tmp), up_url, backend, redis_url)
            headers = {"authorization": f"Bearer {key}"}
            gateway = _spawn("--serve-gateway", str(config), str(gw_port))
            gw_url = f"http://127.0.0.1:{gw_port}"
            _wait_ready(gw_url, gateway, headers)
            asyncio.run(_closed_loop(up_url, {}, WARMUP_REQUESTS, 8))
            direct, direct_err = asyncio.run(_open_loop(up_url, {}, rps, seconds))
            asyncio.run(_closed_loop(gw_url, headers, WARMUP_REQUESTS, 8))
            before = _histogram(gw_url, "servewise_gateway_overhead_seconds")
            via, via_err = asyncio.run(_open_loop(gw_url, headers, rps, seconds))
            after = _histogram(gw_url, "servewise_gateway_overhead_seconds")
            max_gw = asyncio.run(_closed_loop(gw_url, headers, MAX_RPS_REQUESTS, MAX_RPS_CONCURRENCY))
            max_direct = asyncio.run(_closed_loop(up_url, {}, MAX_RPS_REQUESTS, MAX_RPS_CONCURRENCY))
        finally:
            if gateway is not None:
                _stop(gateway)
            _stop(upstream)
    return {
        "direct_p50_ms": _pct(direct, 0.5) * 1e3,
        "direct_p99_ms": _pct(direct, 0.99) * 1e3,
        "gw_p50_ms": _pct(via, 0.5) * 1e3,
        "gw_p99_ms": _pct(via, 0.99) * 1e3,
        "added_p50_ms": (_pct(via, 0.5) - _pct(direct, 0.5)) * 1e3,
        "added_p99_ms": (_pct(via, 0.99) - _pct(direct, 0.99)) * 1e3,
        "server_p50_ms": _quantile(after, 0.5, before) * 1e3,
        "server_p99_ms": _quantile(after, 0.99, before) * 1e3,
        "errors": float(direct_err + via_err),
        "requests": float(len(via)),
        "max_rps": max_gw,
        "max_rps_direct": max_direct,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per backend (fresh processes each)")
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each open-loop load")
    parser.add_argument("--backends", nargs="+", choices=["sql", "redis"], default=["sql", "redis"])
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_upstream:
        _serve(upstream_app, args.serve_upstream)
        return 0
    if args.serve_gateway:
        serve_gateway(args.serve_gateway[0], int(args.serve_gateway[1]))
        return 0

    redis_url = _redis_url()
    backends = [b for b in args.backends if b != "redis" or redis_url]
    skipped = [b for b in args.backends if b not in backends]
    rows: list[tuple[str, int, dict[str, float]]] = []
    for backend in backends:
        for run in range(1, args.runs + 1):
            rows.append((backend, run, run_once(backend, args.rps, args.seconds, redis_url)))
            print(f"{backend} run {run}: {json.dumps({k: round(v, 3) for k, v in rows[-1][2].items()})}")

    columns = ("budgets", "run", "requests", "errors", "direct p50/p99 ms", "via gateway p50/p99 ms",
               "added p50 ms", "added p99 ms", "server overhead p50/p99 ms", "max RPS (direct)")  # fmt: skip
    cells = []
    for backend, run, r in rows:
        cells.append((
            backend, str(run), f"{r['requests']:,.0f}", f"{r['errors']:.0f}",
            f"{r['direct_p50_ms']:.2f} / {r['direct_p99_ms']:.2f}", f"{r['gw_p50_ms']:.2f} / {r['gw_p99_ms']:.2f}",
            f"{r['added_p50_ms']:.2f}", f"{r['added_p99_ms']:.2f}",
            _ms_pair(r["server_p50_ms"], r["server_p99_ms"]), f"{r['max_rps']:,.0f} ({r['max_rps_direct']:,.0f})",
        ))  # fmt: skip
    verdicts = []
    for backend in backends:
        mine = [r for b, _, r in rows if b == backend]
        p50 = statistics.median(r["added_p50_ms"] for r in mine)
        p99 = statistics.median(r["added_p99_ms"] for r in mine)
        ok = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
        verdicts.append(
            f"{backend}: median added p50 {p50:.2f} ms (target ≤ {TARGET_P50_MS:g}), p99 {p99:.2f} ms "
            f"(target ≤ {TARGET_P99_MS:g}), max {statistics.median(r['max_rps'] for r in mine):,.0f} RPS — "
            f"{'meets' if ok else 'misses'} the targets"
        )

    table = Table(title=f"gateway overhead at {args.rps:g} RPS (loopback)")
    for column in columns:
        table.add_column(column, justify="left" if column == "budgets" else "right")
    for row in cells:
        table.add_row(*row)
    console = Console(width=220)
    console.print(table)
    for line in verdicts:
        console.print(line)
    if skipped:
        console.print(f"skipped: {', '.join(skipped)} (Redis does not answer; set SERVEWISE_TEST_REDIS_URL)")

    if not args.no_append:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            f"\n## bench_gateway — {stamp}\n",
            f"Machine: {machine()}. Runs: {args.runs} per backend.",
            f"Scope: open loop at {args.rps:g} RPS for {args.seconds:g} s per arm (after {WARMUP_REQUESTS} warm-up "
            "requests), non-streaming chat completions, 16 output tokens, against a zero-delay upstream process; one "
            "gateway process (uvicorn) with org- and key-level hard budgets (reserve + settle per request), ledger "
            "on, exact cache on (sampled requests: no hits), queue poller on. added = percentile via gateway − same "
            "percentile direct; server overhead = the gateway's own histogram (time in the gateway minus upstream "
            f"waits). Max RPS: {MAX_RPS_CONCURRENCY} closed-loop clients, {MAX_RPS_REQUESTS:,} requests. The "
            "client, the upstream and the gateway share the cores (and other jobs ran on this machine), so the "
            "numbers are upper bounds for a dedicated gateway host.",
            "",
            "| " + " | ".join(columns) + " |",
            "|---|" + "---:|" * (len(columns) - 1),
            *("| " + " | ".join(row) + " |" for row in cells),
            "",
            *(f"- {line}" for line in verdicts),
        ]
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"appended to {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
