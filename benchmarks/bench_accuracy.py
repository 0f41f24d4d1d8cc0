"""Time ``servewise accuracy`` over the whole packaged calibration set (simulate every row, predict, score).

Prints a table and appends it, with the date and the machine, to docs/benchmarks.md. Run from the repository root:

    python benchmarks/bench_accuracy.py [--no-append]
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from machine import machine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
DATA = ROOT / "src" / "servewise" / "catalog" / "data" / "benchmarks" / "calibration.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    command = [str(Path(sys.executable).parent / "servewise"), "accuracy", str(DATA), "--format", "json"]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    seconds = time.perf_counter() - start
    doc = json.loads(out)
    table = (
        "| what | rows | skipped | wall s | TTFT median APE % | TPOT median APE % |\n|---|---:|---:|---:|---:|---:|\n"
        f"| `servewise accuracy` (in-sample, packaged fit) | {doc['rows']} | {doc['skipped']} | {seconds:.1f} | "
        f"{doc['ttft_median_ape']:.1f} | {doc['tpot_median_ape']:.1f} |"
    )
    print(table)
    if not args.no_append:
        with DOCS.open("a", encoding="utf-8") as handle:
            handle.write(
                f"\n## accuracy over the calibration set — {dt.date.today()} — {machine()}\n\n{table}\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
