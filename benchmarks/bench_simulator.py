"""How many concurrent streaming requests one simulator process sustains while its token timing stays within 5 ms
of the engine's schedule (target: ≥ 1,000).

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_simulator.py [--concurrency 250 500 1000 1500] [--no-append]

Each row starts ``servewise simulate`` (Llama-3.1-8B on one H100-SXM, real time, ``--max-num-seqs`` = the row's
concurrency so every request runs at once) in its own process, sends that many streaming ``/v1/completions``
requests at once from this process (httpx, 128 prompt tokens as token ids, 64 output tokens) and reads the server's
``servewise:token_emission_lateness_seconds`` histogram: for every token, how long after its scheduled wall time
(simulated step end + frontend overhead) it reached its response stream. Lateness is bucketed (0.5, 1, 2, 5, 10 ms …),
so the p99 column is the upper edge of the bucket holding the 99th percentile. A row passes when p99 ≤ 5 ms.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import asyncio
import datetime as dt
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


async def _load(url: str, model: str, n: int) -> tuple[int, int]:
    """``n`` streams at once; (completed requests, data chunks received)."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def one() -> int:
            body = {
                "model": model,
                "prompt": [1] * PROMPT_TOKENS,
                "max_tokens": OUTPUT_TOKENS,
                "stream": True,
            }
            chunks = 0
            async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        chunks += 1
            return chunks

        counts = await asyncio.gather(*(one() for _ in range(n)))
    return sum(1 for c in counts if c == OUTPUT_TOKENS), sum(counts)


def run_row(n: int) -> dict[str, float]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-c", "from servewise.cli import main; main()", "simulate", "--model", MODEL,
               "--gpu", GPU, "--port", str(port), "--max-num-seqs", str(n)]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )
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
        start = time.perf_counter()
        completed, tokens = asyncio.run(_load(url, MODEL, n))
        wall = time.perf_counter() - start
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
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[250, 500, 1000, 1500])
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    rows = [run_row(n) for n in args.concurrency]
    headers = (
        "concurrent streams",
        "completed",
        "tokens",
        "wall s",
        "tokens ≤ 5 ms late",
        "p99 lateness",
        "pass",
    )
    cells = []
    for row in rows:
        p99 = "> 1 s" if math.isinf(row["p99_s"]) else f"≤ {row['p99_s'] * 1000:g} ms"
        ok = row["p99_s"] <= TARGET_LATENESS_S and row["completed"] == row["concurrency"]
        cells.append((f"{row['concurrency']:,}", f"{row['completed']:,}", f"{row['tokens']:,}", f"{row['wall_s']:.2f}",
                      f"{row['within_share']:.2%}", p99, "yes" if ok else "no"))  # fmt: skip
    table = Table(title=f"simulator token timing: {MODEL} on {GPU}, {PROMPT_TOKENS}->{OUTPUT_TOKENS} tokens")
    for header in headers:
        table.add_column(header)
    for cell in cells:
        table.add_row(*cell)
    Console().print(table)
    sustained = max((int(r["concurrency"]) for r in rows if r["p99_s"] <= TARGET_LATENESS_S), default=0)
    verdict = (
        f"sustained: {sustained:,} concurrent streams within 5 ms at p99 (target ≥ {TARGET_CONCURRENCY:,})"
    )
    print(verdict)
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        lines = [
            f"\n## bench_simulator — {stamp}\n",
            f"Machine: {machine()}. One `servewise simulate` process ({MODEL} on {GPU}, real time) and one client "
            f"process (httpx, all streams at once), {PROMPT_TOKENS}->{OUTPUT_TOKENS} tokens; lateness = when each "
            "token reached its stream minus its scheduled time (server histogram, bucket edges). "
            f"{verdict}.\n",
            "| " + " | ".join(headers) + " |",
            "|" + "---:|" * len(headers),
            *("| " + " | ".join(cell) + " |" for cell in cells),
        ]
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"appended to {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
