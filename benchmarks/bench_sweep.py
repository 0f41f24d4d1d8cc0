"""Time a full-catalog plan sweep and a 1,000-sample Monte Carlo, in-process and on a local Ray.

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root
(Ray is an optional extra: ``pip install -e '.[ray]'``):

    python benchmarks/bench_sweep.py [--repeats 3] [--samples 1000] [--top-k 5] [--no-append]

Both executors must give identical results (checked on every run); Ray's start-up is timed apart, since a cluster
that is already running does not pay it. The local Ray gets every core of the machine.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from machine import machine, time_runs
from servewise.catalog import load_packaged
from servewise.planner import RayExecutor, make_plan, monte_carlo, plan_document
from servewise.types import Precision
from servewise.workload import build_workload

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("Ray is not installed: pip install -e '.[ray]'", file=sys.stderr)
        return 2

    snapshot = load_packaged(benchmarks=False).snapshot()
    template = next(u for u in snapshot.use_cases if u.name == "chatbot_conversational")
    workload = build_workload(
        template=template,
        overrides={
            "traffic": {"qps": 20},
            "budget_usd_month": 5000,
            "constraints": {"min_params_b": 0, "precisions": [str(p) for p in Precision]},
        },
    )
    plan = make_plan(workload, snapshot)

    def carlo(executor: RayExecutor | None) -> object:
        return monte_carlo(
            plan, snapshot, samples=args.samples, top_k=args.top_k, seed=1, executor=executor
        ).options

    sweep_in = time_runs(lambda: make_plan(workload, snapshot), args.repeats)
    mc_in = time_runs(lambda: carlo(None), args.repeats)

    cores = os.cpu_count() or 1
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    try:
        executor = RayExecutor()
        same_plan = plan_document(make_plan(workload, snapshot, executor=executor)) == plan_document(plan)
        same_mc = carlo(executor) == carlo(None)
        sweep_ray = time_runs(lambda: make_plan(workload, snapshot, executor=executor), args.repeats)
        mc_ray = time_runs(lambda: carlo(executor), args.repeats)
    finally:
        ray.shutdown()
    if not (same_plan and same_mc):
        print(
            f"executors disagree: plan identical {same_plan}, Monte Carlo identical {same_mc}",
            file=sys.stderr,
        )
        return 1

    rows = [
        ("plan sweep, full catalog", "in-process", sweep_in),
        ("plan sweep, full catalog", f"Ray local, {cores} CPUs", sweep_ray),
        (f"Monte Carlo, {args.samples} samples x top {args.top_k}", "in-process", mc_in),
        (f"Monte Carlo, {args.samples} samples x top {args.top_k}", f"Ray local, {cores} CPUs", mc_ray),
    ]
    scope = (
        f"{len(snapshot.models)} models x {len(snapshot.accelerators)} GPUs x TP 1/2/4/8 x {len(Precision)} "
        f"precisions: {plan.candidates_evaluated} configurations evaluated, {len(plan.options)} options "
        f"(sweep in model chunks of 6 on Ray; the simulation of the best options runs in the driver); Monte Carlo "
        f"in chunks of 100 samples; results identical on both executors (checked); Ray start-up "
        f"{ray_start:.1f} s, not included"
    )
    header = "| what | executor | median s | min s | max s | speed-up |\n|---|---|---:|---:|---:|---:|"
    baseline = {name: statistics.median(s) for name, where, s in rows if where == "in-process"}
    lines = [
        f"| {name} | {where} | {statistics.median(s):.3f} | {min(s):.3f} | {max(s):.3f} "
        f"| {baseline[name] / statistics.median(s):.2f}x |"
        for name, where, s in rows
    ]
    table = "\n".join([header, *lines])
    print(scope)
    print(table)
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        note = (
            f"Only {cores} cores, shared with other processes while it ran: the Ray speed-up is bounded by "
            f"{cores}x and the numbers are noisy; on a cluster (`--address`) the chunks spread over more machines."
            if cores <= 4
            else ""
        )
        section = (
            f"\n## bench_sweep — {stamp}\n\nMachine: {machine()}. Repeats: {args.repeats}.\n"
            f"Scope: {scope}.\n{note}\n\n{table}\n"
        )
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(section)
        print(f"appended to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
