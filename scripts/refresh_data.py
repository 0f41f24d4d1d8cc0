"""Refresh the package's copy of the shared facts (``../shared/data``) into ``src/servewise/catalog/data``.

Why a copy: a clone must install and run without ``../shared``. Only files that exist in the shared folder are
overwritten; Servewise's own sourced additions (``additions/``) are left alone. Run from the repository root:

    python scripts/refresh_data.py [--shared ../shared/data] [--check]

``--check`` exits 1 when the copy differs from the shared folder (CI can use it where ``../shared`` exists).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DATA = REPO / "src" / "servewise" / "catalog" / "data"
SHARED_FILES = (
    "catalog/README.md",
    "catalog/gpus.csv",
    "catalog/models.csv",
    "catalog/cloud_prices.csv",
    "catalog/api_prices.csv",
    "benchmarks/README.md",
    "benchmarks/calibration.csv",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--check", action="store_true", help="report differences, copy nothing")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(
            f"error: {args.shared} is not a folder; pass --shared PATH to the shared data folder",
            file=sys.stderr,
        )
        return 2
    changed = []
    for rel in SHARED_FILES:
        src, dst = args.shared / rel, PACKAGE_DATA / rel
        if not src.is_file():
            print(f"error: {src} is missing from the shared folder", file=sys.stderr)
            return 2
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            continue
        changed.append(rel)
        if not args.check:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    verb = "differ" if args.check else "refreshed"
    print(f"{len(changed)} file(s) {verb}: {', '.join(changed) or 'none'}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
