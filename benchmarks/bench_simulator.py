"""How many concurrent streaming requests one simulator process sustains while its token timing stays within 5 ms
of the engine's schedule (target: ≥ 1,000).

Prints a table and appends it, with the date, the machine and its load, to docs/benchmarks.md. From the repository
root:

    python benchmarks/bench_simulator.py [--concurrency 250 500 1000 1500] [--runs 3] [--stack auto|pure-python]
                                         [--no-append]

Each run starts ``servewise simulate`` (Llama-3.1-8B on one H100-SXM, real time, ``--max-num-seqs`` = the row's
concurrency so every request runs at once) in its own process (``--stack pure-python``: the same app on asyncio's
loop and uvicorn's h11 parser), sends that many streaming ``/v1/completions`` requests at once from this process
(128 prompt tokens as token ids, 64 output tokens) and reads the server's ``servewise:token_emission_lateness_seconds``
histogram: for every token, how long after its scheduled wall time (simulated step end + frontend overhead) its
bytes were handed to the connection's transport. Lateness is bucketed (0.5, 1, 2, 3, 4, 5, 7.5, 10 ms …), so the p99
column is the upper edge of the bucket holding the 99th percentile. A row passes when p99 ≤ 5 ms and every stream
got all its tokens.

The client shares the cores with the server, so it is as light as it can be: raw HTTP/1.1 over asyncio protocols
(uvloop when installed), one ``bytes.count`` per read, no HTTP library; its CPU per token is a column, as is the
server's. The floor column measures the machine itself: bare ``transport.write`` calls to that many connections.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import asyncio
import datetime as dt
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, cast

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from machine import machine

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TARGET_LATENESS_S = 0.005
TARGET_CONCURRENCY = 1000
MODEL, GPU = "Llama-3.1-8B", "H100-SXM"
PROMPT_TOKENS, OUTPUT_TOKENS = 128, 64
LATENESS = "servewise:token_emission_lateness_seconds"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lateness_buckets(url: str) -> dict[float, float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        float(s.labels["le"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == LATENESS
        for s in family.samples
        if s.name.endswith("_bucket")
    }


class _Stream(asyncio.Protocol):
    """One streaming request over a raw HTTP/1.1 connection: counts the SSE ``data: {`` chunks until
    ``data: [DONE]``. No HTTP library: the client shares the machine's cores with the server, so it does as little
    per token as it can (one ``bytes.count`` per read)."""

    def __init__(self, request: bytes, done: asyncio.Future[int]) -> None:
        self.request = request
        self.done = done
        self.chunks = 0
        self.tail = b""
        self.head: bytes | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.head is None:
            self.head = data[:12]
            if self.head != b"HTTP/1.1 200":
                self._finish(RuntimeError(f"the simulator answered {data[:200]!r}"))
                return
        window = self.tail + data
        self.chunks += window.count(b"data: {") - self.tail.count(b"data: {")
        if b"data: [DONE]" in window:
            self._finish(None)
        self.tail = window[-11:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or RuntimeError("the connection closed before data: [DONE]"))

    def _finish(self, error: BaseException | None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(self.chunks)
            else:
                self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()


async def _load(port: int, model: str, n: int) -> tuple[int, int]:
    """``n`` streams at once; (completed requests, data chunks received)."""
    body = json.dumps(
        {"model": model, "prompt": [1] * PROMPT_TOKENS, "max_tokens": OUTPUT_TOKENS, "stream": True}
    ).encode()
    request = (
        f"POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()

    async def one() -> int:
        done: asyncio.Future[int] = loop.create_future()
        await loop.create_connection(lambda: _Stream(request, done), "127.0.0.1", port)
        return await done

    counts = await asyncio.gather(*(one() for _ in range(n)))
    return sum(1 for c in counts if c == OUTPUT_TOKENS), sum(counts)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_PURE_PYTHON_SERVER = """
import sys, uvicorn
from servewise.simulator import create_app, simulator_config
model, gpu, port, seqs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = simulator_config(model=model, gpu=gpu, max_num_seqs=seqs)
uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning", access_log=False,
            loop="asyncio", http="h11")
"""


def _start_server(n: int, port: int, stack: str) -> subprocess.Popen[bytes]:
    if stack == "auto":  # the command as users run it: uvicorn picks uvloop and httptools when installed
        command = [sys.executable, "-c", "from servewise.cli import main; main()", "simulate", "--model", MODEL,
                   "--gpu", GPU, "--port", str(port), "--max-num-seqs", str(n)]  # fmt: skip
    else:  # the same app on the standard-library event loop and uvicorn's pure-Python HTTP parser
        command = [sys.executable, "-c", _PURE_PYTHON_SERVER, MODEL, GPU, str(port), str(n)]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )


def run_row(n: int, stack: str = "auto") -> dict[str, float]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(n, port, stack)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        server_cpu0, client_cpu0 = _cpu_s(server.pid), time.process_time()
        start = time.perf_counter()
        completed, tokens = _run(_load(port, MODEL, n))
        wall = time.perf_counter() - start
        server_cpu, client_cpu = _cpu_s(server.pid) - server_cpu0, time.process_time() - client_cpu0
        buckets = _lateness_buckets(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    total = buckets.get(math.inf, 0.0)
    within = buckets.get(TARGET_LATENESS_S, 0.0)
    p99 = next((edge for edge, count in sorted(buckets.items()) if count >= 0.99 * total), math.inf)
    return {
        "concurrency": n,
        "completed": completed,
        "tokens": tokens,
        "wall_s": wall,
        "within_share": within / total if total else math.nan,
        "p99_s": p99,
        "server_cpu_us_per_token": server_cpu / tokens * 1e6 if tokens else math.nan,
        "client_cpu_us_per_token": client_cpu / tokens * 1e6 if tokens else math.nan,
    }


def _run(load: Coroutine[Any, Any, tuple[int, int]]) -> tuple[int, int]:
    """The client on uvloop when installed (less CPU per read, leaving more to the server), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(load)
    return uvloop.run(load)


def _floor_us_per_write(n: int, chunk_bytes: int = 190, bursts: int = 40) -> float:
    """What this machine allows, without any HTTP or Python server code: one child process writes a
    ``chunk_bytes`` chunk to each of ``n`` loopback connections at once (a step's tokens) every 47 ms with uvloop's
    ``transport.write``, this process reads them as the benchmark client does; the median burst's µs per write.
    A step's burst of ``n`` tokens cannot be handed out faster than ``n`` times this."""
    port = _free_port()
    child = subprocess.Popen([sys.executable, "-c", _FLOOR_WRITER, str(port), str(n), str(chunk_bytes), str(bursts)],
                             stdout=subprocess.PIPE, env=dict(os.environ))  # fmt: skip

    async def read_all() -> None:
        loop = asyncio.get_running_loop()
        closed = [loop.create_future() for _ in range(n)]

        class Reader(asyncio.Protocol):
            def __init__(self, done: asyncio.Future[None]) -> None:
                self.done = done

            def data_received(self, data: bytes) -> None:
                pass

            def connection_lost(self, exc: Exception | None) -> None:
                self.done.set_result(None)

        deadline = time.monotonic() + 30
        for done in closed:
            while True:
                try:
                    await loop.create_connection(lambda done=done: Reader(done), "127.0.0.1", port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        await asyncio.gather(*closed)

    _run(read_all())
    out, _ = child.communicate(timeout=60)
    return float(out.decode().strip())


_FLOOR_WRITER = """
import asyncio, statistics, sys, time, uvloop
port, n, size, bursts = (int(a) for a in sys.argv[1:5])
async def main():
    conns, ready = [], asyncio.Event()
    class P(asyncio.Protocol):
        def connection_made(self, transport):
            conns.append(transport)
            if len(conns) == n: ready.set()
    await asyncio.get_running_loop().create_server(P, "127.0.0.1", port, backlog=4096)
    await ready.wait()
    chunk, per = b"x" * size, []
    for _ in range(bursts):
        await asyncio.sleep(0.047)
        start = time.perf_counter()
        for transport in conns:
            transport.write(chunk)
        per.append((time.perf_counter() - start) / n * 1e6)
    for transport in conns:
        transport.close()
    print(statistics.median(per))
uvloop.run(main())
"""


def _p99(seconds: float) -> str:
    return "> 1 s" if math.isinf(seconds) else f"≤ {seconds * 1000:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[250, 500, 1000, 1500])
    parser.add_argument("--runs", type=int, default=3, help="runs per concurrency (fresh server each)")
    parser.add_argument(
        "--stack",
        choices=("auto", "pure-python"),
        default="auto",
        help="auto: `servewise simulate` as shipped (uvloop + httptools when installed); pure-python: the same "
        "app on asyncio's loop and uvicorn's h11 parser",
    )
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    groups = [[run_row(n, args.stack) for _ in range(args.runs)] for n in args.concurrency]
    floors = [_floor_us_per_write(n) for n in args.concurrency]
    headers = (
        "concurrent streams",
        "runs passed",
        "completed",
        "tokens",
        "wall s",
        "tokens ≤ 5 ms late",
        "p99 lateness ms (each run)",
        "server CPU µs/token",
        "client CPU µs/token",
        "floor: 1 write µs (burst ms)",
    )
    cells = []
    for rows, floor in zip(groups, floors, strict=True):
        n = int(rows[0]["concurrency"])
        passed = sum(1 for r in rows if r["p99_s"] <= TARGET_LATENESS_S and r["completed"] == n)
        shares = [r["within_share"] for r in rows]

        def spread(key: str, fmt: str, rows: list[dict[str, float]] = rows) -> str:
            values = [r[key] for r in rows]
            low, high = format(min(values), fmt), format(max(values), fmt)
            return low if low == high else f"{low}–{high}"

        cells.append((f"{n:,}", f"{passed}/{len(rows)}", f"{min(r['completed'] for r in rows):,.0f}",
                      f"{min(r['tokens'] for r in rows):,.0f}", spread("wall_s", ".2f"),
                      f"{min(shares):.2%}" if min(shares) == max(shares) else f"{min(shares):.2%}–{max(shares):.2%}",
                      " / ".join(_p99(r["p99_s"]) for r in rows), spread("server_cpu_us_per_token", ".1f"),
                      spread("client_cpu_us_per_token", ".1f"), f"{floor:.1f} ({floor * n / 1000:.1f})"))  # fmt: skip
    stack = "uvloop + httptools" if args.stack == "auto" else "asyncio + h11"
    title = f"simulator token timing: {MODEL} on {GPU}, {PROMPT_TOKENS}->{OUTPUT_TOKENS} tokens, {stack}"
    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for cell in cells:
        table.add_row(*cell)
    Console().print(table)
    sustained = 0  # the largest concurrency below which every row passed in every run
    for rows in groups:
        if not all(r["p99_s"] <= TARGET_LATENESS_S and r["completed"] == r["concurrency"] for r in rows):
            break
        sustained = int(rows[0]["concurrency"])
    verdict = (
        f"sustained in every run (and every smaller row): {sustained:,} concurrent streams within 5 ms at p99 "
        f"(target ≥ {TARGET_CONCURRENCY:,})"
    )
    print(verdict)
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        lines = [
            f"\n## bench_simulator — {stamp}\n",
            f"Machine: {machine()}; load average before the run {LOAD_BEFORE}, after {load} (other jobs share "
            f"the cores). One `servewise simulate` process ({MODEL} on {GPU}, real time, {stack}) and one client "
            f"process (raw asyncio connections, all streams at once, uvloop), {PROMPT_TOKENS}->{OUTPUT_TOKENS} "
            f"tokens, {args.runs} runs per row, a fresh server each. Lateness = when each token's bytes were "
            "handed to the connection's transport minus the token's scheduled wall time (server histogram; p99 is "
            "the upper edge of the bucket holding it); CPU = process CPU time during the load / tokens; floor = "
            "median µs of one bare uvloop `transport.write` of a 190-byte chunk to each of that many loopback "
            "connections at once (no HTTP, no server code: the least a step's burst of tokens costs), and that "
            f"burst in ms. {verdict}.\n",
            "| " + " | ".join(headers) + " |",
            "|" + "---:|" * len(headers),
            *("| " + " | ".join(cell) + " |" for cell in cells),
        ]
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"appended to {DOCS}")
    return 0


LOAD_BEFORE = " / ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
