"""Refit the packaged calibration table (``src/servewise/perf/data/calibration_fit.json``) on the packaged rows.

Why a script: the fit ships in the package so that ``predict``, ``plan`` and ``accuracy`` need no fitting at run
time; it must be redone whenever ``calibration.csv`` (``scripts/refresh_data.py``), the models or GPUs, or the step
model change. The table records ``data_sha256`` (``perf._calibrate.data_fingerprint`` of every packaged row), so
``--check`` can tell, without fitting, whether the packaged fit is stale. Run from the repository root:

    python scripts/refresh_calibration.py [--fitted-on YYYY-MM-DD] [--output PATH] [--check]

It does what ``servewise calibrate`` does, on the packaged data instead of a catalog database (~15 s for all rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from servewise.catalog import load_packaged
from servewise.cli._calibrate import CatalogFacts, calibrate_rows, skipped_summary
from servewise.cli._plan import write_json_atomically
from servewise.errors import ServewiseError
from servewise.perf._calibrate import data_fingerprint

REPO = Path(__file__).resolve().parent.parent
PACKAGED_FIT = REPO / "src" / "servewise" / "perf" / "data" / "calibration_fit.json"


def _check(path: Path, expected: str) -> int:
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("data_sha256")
    except (OSError, ValueError) as err:
        print(
            f"stale: cannot read {path} ({err}); run python scripts/refresh_calibration.py", file=sys.stderr
        )
        return 1
    if recorded != expected:
        print(
            f"stale: {path} was fitted on data {str(recorded)[:12]}…, the packaged rows are {expected[:12]}…; "
            "run python scripts/refresh_calibration.py",
            file=sys.stderr,
        )
        return 1
    print(f"up to date: {path} was fitted on the packaged rows ({expected[:12]}…)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fitted-on", type=date.fromisoformat, default=date.today(), help="date recorded")
    parser.add_argument("--output", type=Path, default=PACKAGED_FIT, help="where to write the table")
    parser.add_argument("--check", action="store_true", help="exit 1 when the fit is stale; fit nothing")
    args = parser.parse_args(argv)
    data = load_packaged()
    if args.check:
        return _check(args.output, data_fingerprint(data.benchmarks))
    facts = CatalogFacts(data.models, data.accelerators, data.aliases)
    try:
        table, skipped = calibrate_rows(data.benchmarks, facts, fitted_on=args.fitted_on.isoformat())
        write_json_atomically(args.output, table.to_json(), flag="--output", example="calibration_fit.json")
    except ServewiseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fitted = sum(1 for level in table.levels.values() if level.fitted)
    print(f"wrote {args.output}: {fitted} of {len(table.levels)} levels fitted on {table.rows} rows")
    summary = skipped_summary(skipped)
    if summary:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
