"""Time the scheduler simulation: simulated requests per second of wall time, 10,000-request open-loop runs.

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_sim.py [--requests 10000] [--repeats 3] [--no-append]

Each scenario is one replica from the packaged catalog (vLLM defaults on the GPU, KV cache from the memory plan)
under Poisson arrivals at a share of the analytical saturation rate (``saturation_qps``), chat-like lengths drawn
uniformly from [0.8 × len, len]. Only ``simulate`` is timed; building the workload is not. The target is 10,000
simulated requests per second, ten times Vidur's ~1,000 (Agrawal et al., MLSys 2024), so a capacity search of a
few dozen simulated points stays within seconds.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import datetime as dt
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from machine import machine
from servewise.catalog import load_packaged
from servewise.perf import (
    ANALYTICAL_PARAMS,
    RequestShape,
    build_step_model,
    default_engine_settings,
    memory_plan,
    saturation_qps,
)
from servewise.perf._arrivals import poisson_arrivals, uniform_lengths
from servewise.perf._scheduler import SimEngine, SimResult, simulate
from servewise.types import Precision

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TARGET_REQ_PER_S = 10_000.0
PROMPT_TOKENS, OUTPUT_TOKENS, RANGE_RATIO = 1000, 300, 0.8
MAX_MODEL_LEN = 4096


@dataclass(frozen=True)
class Scenario:
    model: str
    gpu: str
    load: float
    """Arrival rate as a share of the analytical saturation rate."""


SCENARIOS = (
    Scenario("Llama-3.1-8B", "H100-SXM", 0.25),
    Scenario("Llama-3.1-8B", "H100-SXM", 0.50),
    Scenario("Llama-3.1-8B", "H100-SXM", 0.80),
    Scenario("Llama-3.1-8B", "H100-SXM", 0.95),
    Scenario("Llama-3.1-8B", "H100-SXM", 1.20),
    Scenario("Qwen3-30B-A3B", "H200", 0.50),  # MoE; H200 so the KV cache (~650k tokens) does not bind first
    Scenario("Qwen3-30B-A3B", "H200", 0.90),
)


@dataclass(frozen=True)
class Measured:
    scenario: Scenario
    rate_qps: float
    seconds: list[float]
    result: SimResult

    def req_per_s(self, requests: int) -> float:
        return requests / statistics.median(self.seconds)


def _measure(scenario: Scenario, requests: int, repeats: int) -> Measured:
    snapshot = load_packaged(benchmarks=False).snapshot()
    model = next(m for m in snapshot.models if m.name == scenario.model)
    gpu = next(g for g in snapshot.accelerators if g.name == scenario.gpu)
    step = build_step_model(model, gpu, 1, Precision.bf16, ANALYTICAL_PARAMS)
    settings = default_engine_settings(gpu)
    prompt_mean = PROMPT_TOKENS * (1 + RANGE_RATIO) / 2
    output_mean = OUTPUT_TOKENS * (1 + RANGE_RATIO) / 2
    memory = memory_plan(
        model,
        gpu,
        1,
        Precision.bf16,
        settings,
        mean_seq_tokens=prompt_mean + output_mean,
        max_model_len=MAX_MODEL_LEN,
    )
    engine = SimEngine(
        settings.max_num_seqs,
        settings.max_num_batched_tokens,
        memory.kv_capacity_tokens // settings.block_size_tokens,
        settings.block_size_tokens,
    )
    shape = RequestShape(prompt_mean, output_mean, (prompt_mean,) * 4, (output_mean,) * 4)
    rate = scenario.load * saturation_qps(step, shape)
    workload = poisson_arrivals(
        rate, requests, uniform_lengths(PROMPT_TOKENS, OUTPUT_TOKENS, RANGE_RATIO), seed=0
    )
    result = simulate(step, engine, workload)  # warm-up, and the run whose statistics are shown
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        simulate(step, engine, workload)
        seconds.append(time.perf_counter() - start)
    return Measured(scenario, rate, seconds, result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    rows = [_measure(s, args.requests, args.repeats) for s in SCENARIOS]

    columns = ("model / GPU (1x, bf16)", "load", "req/s in", "sim req/s", "slowest", "steps", "preempted",
               "TTFT p95 s")  # fmt: skip
    cells = []
    for row in rows:
        s, result = row.scenario, row.result
        cells.append(
            (
                f"{s.model} / {s.gpu}",
                f"{s.load:.0%}",
                f"{row.rate_qps:.1f}",
                f"{row.req_per_s(args.requests):,.0f}",
                f"{args.requests / max(row.seconds):,.0f}",
                f"{result.steps:,}",
                f"{result.preemptions:,}",
                f"{result.percentile('ttft', 95):,.2f}",
            )
        )
    table = Table(
        title=f"Scheduler simulation: {args.requests:,} Poisson requests per run; "
        f"sim req/s = median of {args.repeats}, target >= {TARGET_REQ_PER_S:,.0f}"
    )
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for line in cells:
        table.add_row(*line)
    Console(width=max(Console().width, 120)).print(table)

    scope = (
        f"{args.requests:,} open-loop Poisson requests per run, {PROMPT_TOKENS}→{OUTPUT_TOKENS} tokens "
        f"(uniform from {RANGE_RATIO:g}× len), vLLM defaults, KV cache from the memory plan; load = share of the "
        f"analytical saturation rate (`saturation_qps`); sim req/s = simulated requests per wall second, median "
        f"of the repeats (slowest: the worst repeat); target >= {TARGET_REQ_PER_S:,.0f}; only `simulate` is timed"
    )
    header = "| " + " | ".join(columns) + " |\n|---|" + "---:|" * (len(columns) - 1)
    markdown = "\n".join([header, *("| " + " | ".join(line) + " |" for line in cells)])
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        section = (
            f"\n## bench_sim — {stamp}\n\nMachine: {machine()}. Repeats: {args.repeats}.\n"
            f"Scope: {scope}.\n\n{markdown}\n"
        )
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(section)
        print(f"appended to {DOCS}")
    slowest = min(row.req_per_s(args.requests) for row in rows)
    return 0 if slowest >= TARGET_REQ_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
