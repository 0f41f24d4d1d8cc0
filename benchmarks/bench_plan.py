"""Time a plan over the whole catalog: every model x every GPU x TP {1,2,4,8} x every precision.

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_plan.py [--repeats 5] [--no-append]

The plan includes the scheduler simulation of the best-ranked options (perf/_simcapacity.py).
Measures the planner alone (catalog already in memory, as ``servewise plan`` holds it after one query) and the whole
``servewise plan`` command in-process, catalog database included.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import datetime as dt
import statistics
import sys
import tempfile
from pathlib import Path

from machine import machine, time_runs
from servewise.catalog import load_packaged, open_catalog
from servewise.planner import make_plan
from servewise.types import Precision
from servewise.workload import build_workload

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
TARGET_S = 10.0
"""Issue #4: a full-catalog plan whose best options are sized by the scheduler simulation."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--no-append", action="store_true", help="print only; do not touch docs/benchmarks.md"
    )
    args = parser.parse_args(argv)

    snapshot = load_packaged(benchmarks=False).snapshot()
    template = next(u for u in snapshot.use_cases if u.name == "chatbot_conversational")
    workload = build_workload(
        template=template,
        overrides={
            "traffic": {"qps": 20},
            "constraints": {"min_params_b": 0, "precisions": [str(p) for p in Precision]},
        },
    )
    plan = make_plan(workload, snapshot)
    sweep = time_runs(lambda: make_plan(workload, snapshot), args.repeats)

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/catalog.db"
        with open_catalog(url):  # first use: migrate + import, not timed
            pass

        def whole_command() -> None:
            with open_catalog(url) as catalog:
                make_plan(workload, catalog.snapshot())

        command = time_runs(whole_command, args.repeats)

    rows = [
        ("planner, full catalog (in memory)", sweep),
        ("open SQLite catalog + snapshot + planner", command),
    ]
    scope = (
        f"{len(snapshot.models)} models x {len(snapshot.accelerators)} GPUs x TP 1/2/4/8 x {len(Precision)} "
        f"precisions: {plan.candidates_evaluated} configurations evaluated, {len(plan.options)} options, "
        f"{len(plan.rejected)} rejections"
    )
    header = "| what | median s | min s | max s | target |\n|---|---:|---:|---:|---|"
    lines = [
        f"| {name} | {statistics.median(s):.3f} | {min(s):.3f} | {max(s):.3f} | < {TARGET_S:g} s |"
        for name, s in rows
    ]
    table = "\n".join([header, *lines])
    print(scope)
    print(table)
    if not args.no_append:
        stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        section = (
            f"\n## bench_plan — {stamp}\n\nMachine: {machine()}. Repeats: {args.repeats}.\n"
            f"Scope: {scope}.\n\n{table}\n"
        )
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        if not DOCS.exists():
            DOCS.write_text(
                "# Benchmarks\n\nNumbers appended by the scripts in `benchmarks/`; newest last.\n"
            )
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(section)
        print(f"appended to {DOCS}")
    return 0 if statistics.median(sweep) < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
