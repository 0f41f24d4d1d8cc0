"""``servewise calibrate --include-observed``: the catalog's rows measured by ``servewise watch`` in the fit, and how
far the predictions were from them before and after.

Which rows: catalog benchmark rows whose ``source`` starts with ``watch:`` (``watch.store_observed_rows`` writes
them for a drifted window). Rows saved by ``servewise bench --save`` are controlled closed-loop measurements and are
part of every catalog fit already; observed rows map an open-loop production window onto a closed-loop row (Little's
law for the concurrency, docs/watch.md), an approximation, so they enter the fit only when asked for.

Accuracy: median absolute percentage error of mean TTFT and TPOT over the observed rows, predicted with the packaged
calibration ("before") and with the refit ("after"), as ``servewise accuracy`` scores rows. The refit was fitted on
these rows, so "after" is an in-sample number: it says whether the fit moved towards the deployment, not how well it
predicts a window it has not seen (hold windows out and score them with ``servewise accuracy --calibration``). It
need not improve: among the catalog's thousands of rows a few observed ones barely move the shared levels and model
factors, and "before" is the packaged fit, made from the packaged rows when it was shipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from servewise.catalog import BenchmarkRow
from servewise.errors import UsageError
from servewise.perf._calibrate import CalibrationTable, features_for_rows

from ._calibrate import CatalogFacts, load_calibration
from ._output import Column

__all__ = [
    "ACCURACY_COLUMNS",
    "IN_SAMPLE_NOTE",
    "OBSERVED_PREFIX",
    "is_observed",
    "observed_accuracy",
    "select_rows",
]

OBSERVED_PREFIX = "watch:"
IN_SAMPLE_NOTE = (
    "in-sample: the observed rows are part of this refit, so 'after' is not a held-out error; pooled with many other "
    "rows a few observed ones move the fit little (a level needs 8 rows, and priors hold it near its parent)"
)
ACCURACY_COLUMNS = (
    Column("calibration", "calibration"),
    Column("rows", "observed rows", numeric=True),
    Column("ttft_median_ape", "TTFT median APE %", numeric=True),
    Column("tpot_median_ape", "TPOT median APE %", numeric=True),
)


def is_observed(row: BenchmarkRow) -> bool:
    """A row ``servewise watch`` stored (module docstring)."""
    return row.source.startswith(OBSERVED_PREFIX)


def select_rows(
    catalog_rows: Sequence[BenchmarkRow], data_rows: Sequence[BenchmarkRow] | None, *, include_observed: bool
) -> tuple[list[BenchmarkRow], list[BenchmarkRow]]:
    """(rows to fit, observed rows among them): ``data_rows`` when given (``--data``), else the catalog's rows;
    the catalog's observed rows added with ``include_observed``, left out otherwise."""
    observed = [r for r in catalog_rows if is_observed(r)]
    if include_observed and not observed:
        raise UsageError(
            "--include-observed: the catalog has no rows measured by `servewise watch` (source 'watch:...'); "
            "store a drifted window first (`servewise watch ... --store-observed`), or leave the flag out"
        )
    base = list(data_rows) if data_rows is not None else [r for r in catalog_rows if not is_observed(r)]
    return (base + observed if include_observed else base), (observed if include_observed else [])


def observed_accuracy(
    rows: Sequence[BenchmarkRow], facts: CatalogFacts, refit: CalibrationTable
) -> dict[str, Any]:
    """Median APE of TTFT/TPOT on the observed ``rows`` with the packaged calibration and with ``refit``."""
    from ._accuracy import errors_of, score_rows  # imports this package's _calibrate: late, to avoid a cycle

    features, skipped = features_for_rows(rows, facts.models, facts.accelerators, facts.aliases)
    baseline, label = load_calibration(None)

    def summary(name: str, table: CalibrationTable | None) -> dict[str, Any]:
        errors = errors_of(score_rows(features, table, held_out=False)).as_dict()
        return {
            "calibration": name,
            "rows": errors["rows"],
            "ttft_median_ape": errors["ttft_median_ape"],
            "tpot_median_ape": errors["tpot_median_ape"],
        }

    return {
        "rows": len(features),
        "skipped": len(skipped),
        "before": summary(f"before: {label}", baseline),
        "after": summary("after: this refit", refit),
        "in_sample": True,
        "note": IN_SAMPLE_NOTE,
    }
