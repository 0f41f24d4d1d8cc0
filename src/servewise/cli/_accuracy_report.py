"""The documents ``servewise accuracy`` writes: a Markdown report (``--report``) and a scatter plot (``--plot``).

Why apart from the command: the report's wording and the plot's drawing are long and change for other reasons than
the scoring does. Both are pure: a summary document in, text or PNG bytes out; the command writes them atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["PUBLISHED", "TARGETS", "plot_png", "report_markdown"]

TARGETS = {"ttft_median_ape": 20.0, "tpot_median_ape": 10.0}
"""Servewise's accuracy targets: median absolute percentage error of TTFT ≤ 20 %, of TPOT ≤ 10 %."""

PUBLISHED: tuple[tuple[str, str, str], ...] = (
    ("AIConfigurator", "~650 %", "~15–20 % (E2E and ITL)"),
    ("BentoML llm-optimizer", "~620 %", "~46–57 % (E2E and ITL)"),
    ("pure roofline", "—", "55–90 %"),
)
"""(predictor, TTFT median APE, ITL median APE): errors from an independent sim-to-real study of vLLM on H100,
measured on that study's workloads."""

BAND = 0.2
"""The plot's shaded band: predictions within ±20 % of the measurement."""


def _pct(value: float | None, target: float | None = None) -> str:
    if value is None:
        return "—"
    shown = f"{value:.1f} %"
    if target is None:
        return shown
    return f"{shown} {'✓' if value <= target else '✗'}"


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _version() -> str:
    try:
        return metadata.version("servewise")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def _anatomy_lines(anatomy: dict[str, dict[str, Any]]) -> list[str]:
    """The "where the error is" section: each metric's error split into group bias and within-group shape."""
    if not anatomy:
        return []
    lines = [
        "## Where the error is",
        "",
        "A group (model, backend, system, precision) can be off by one factor on all its rows, or right on average "
        "and wrong in how latency moves with load and lengths. The group bias is the median of log(predicted / "
        "measured) over a group's rows; the last column divides every row by its own group's bias and measures "
        "what is left. That column is an oracle, not a prediction (the bias is read off the measurements "
        "themselves): it is the error a predictor that got every group's scale exactly right would still have.",
        "",
        "| metric | groups | median APE | typical group bias (median over groups) | median APE with each "
        "group's bias removed |",
        "|---|---:|---:|---:|---:|",
    ]
    for metric, values in anatomy.items():
        lines.append(
            f"| {metric.upper()} | {values['groups']} | {_pct(values['median_ape'])} | "
            f"{_pct(values['group_bias_median_pct'])} | {_pct(values['within_group_median_ape'])} |"
        )
    return [*lines, ""]


def report_markdown(document: dict[str, Any], command: str, *, today: date | None = None) -> str:
    """The accuracy report for the JSON ``document`` of ``servewise accuracy`` and the command that made it."""
    held_out = document["mode"] == "held-out"
    what = (
        "held-out: each (model, system) group is predicted by a calibration fitted on all the other groups of the "
        "data (rows of the same model on the same system under another checkpoint name are held out with it), so "
        "no prediction has seen its own group's measurements; the fold's per-model correction (step-time and prefill "
        "factors, applied inside the step model exactly as `predict`, `plan` and `simulate` apply the shipped one) "
        "comes only from the model's rows on other systems"
        if held_out
        else f"made with the {document['calibration']}; rows that calibration was fitted on are in-sample, so "
        "this is not a held-out error (`--cross-validate` gives that)"
    )
    label = "Servewise, held-out" if held_out else "Servewise, in-sample"
    lines = [
        "# Servewise prediction accuracy",
        "",
        f"Generated {(today or date.today()).isoformat()} by servewise {_version()} from `{document['data']}` "
        f"(data sha256 `{document['data_sha256'][:16]}…`): {document['rows']} measured rows predicted, "
        f"{document['skipped']} skipped. Predictions are {what}.",
        "",
        "Each row is one closed-loop benchmark point (concurrency C, prompt and output lengths, mean TTFT and mean "
        "TPOT as measured); Servewise simulates that benchmark and compares its means. The error of a row is the "
        "absolute percentage error APE = |predicted − measured| / measured × 100.",
        "",
        "## Overall",
        "",
        "| predictor | evaluated on | TTFT median APE | TTFT p90 APE | TPOT / ITL median APE | TPOT p90 APE |",
        "|---|---|---:|---:|---:|---:|",
        f"| **{label}** | these {document['rows']} rows | "
        f"{_pct(document['ttft_median_ape'], TARGETS['ttft_median_ape'])} | {_pct(document['ttft_p90_ape'])} | "
        f"{_pct(document['tpot_median_ape'], TARGETS['tpot_median_ape'])} | {_pct(document['tpot_p90_ape'])} |",
        f"| Servewise target | | ≤ {TARGETS['ttft_median_ape']:g} % | | ≤ {TARGETS['tpot_median_ape']:g} % | |",
    ]
    lines += [
        f"| {name} | vLLM on H100 (published) | {ttft} | — | {itl} | — |" for name, ttft, itl in PUBLISHED
    ]
    lines += [
        "",
        "Published figures are median errors from an independent sim-to-real study of vLLM on H100, measured on that "
        "study's workloads rather than on these rows, and for per-request E2E latency and ITL rather than per-point "
        "mean TPOT: compare orders of magnitude, not digits.",
        "",
    ]
    lines += _anatomy_lines(document.get("anatomy", {}))
    lines += [
        "## Per group",
        "",
        "| model | backend | system | precision | rows | TTFT median APE | TTFT p90 APE | TPOT median APE | "
        "TPOT p90 APE | provenance |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for g in document["groups"]:
        cells = [
            g["model"], g["backend"], g["system"], g["precision"], g["rows"], _pct(g["ttft_median_ape"]),
            _pct(g["ttft_p90_ape"]), _pct(g["tpot_median_ape"]), _pct(g["tpot_p90_ape"]), g["provenance"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    skipped: Sequence[dict[str, str]] = document["skipped_rows"]
    if skipped:
        counts: dict[str, int] = {}
        for item in skipped:
            counts[item["reason"]] = counts.get(item["reason"], 0) + 1
        lines += ["", "## Skipped rows", "", "| reason | rows |", "|---|---:|"]
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"| {_md_cell(reason)} | {n} |")
    lines += [
        "",
        "## How to reproduce",
        "",
        "From a clone of the repository (`pip install .`):",
        "",
        "```bash",
        command,
        "```",
        "",
        "`--format json` prints the same numbers as a document, `-o rows.csv` every row's prediction, and `--plot "
        "accuracy.png` the predicted-vs-measured scatter. The packaged calibration is rebuilt with "
        "`python scripts/refresh_calibration.py`; `servewise calibrate --data DATA.csv -o fit.json` fits one on "
        "other rows and `--calibration fit.json` scores with it.",
        "",
    ]
    return "\n".join(lines)


def plot_png(
    ttft: tuple[np.ndarray, np.ndarray],
    tpot: tuple[np.ndarray, np.ndarray],
    labels: Sequence[str],
    *,
    title: str,
) -> bytes:
    """A log-log scatter of predicted vs measured (ms) for TTFT and TPOT, with y = x and a ±20 % band; PNG bytes.

    ``ttft`` and ``tpot`` are (measured, predicted) arrays; ``labels`` colour the points (one per row, e.g. the
    backend). Matplotlib's object API on the Agg canvas: no pyplot state, no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    names = np.array(labels, dtype=object)
    figure = Figure(figsize=(11, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for ax, (name, (measured, predicted)) in zip(axes, (("TTFT", ttft), ("TPOT", tpot)), strict=True):
        keep = np.isfinite(measured) & np.isfinite(predicted) & (measured > 0) & (predicted > 0)
        x, y = measured[keep], predicted[keep]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{name} (ms), {int(keep.sum())} rows")
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted")
        if x.size:
            low = float(min(x.min(), y.min())) / 1.5
            high = float(max(x.max(), y.max())) * 1.5
            line = np.geomspace(low, high, 50)
            band = f"±{BAND:.0%}"
            ax.fill_between(
                line, line * (1 - BAND), line * (1 + BAND), color="tab:green", alpha=0.15, label=band
            )
            ax.plot(line, line, color="black", linewidth=0.8, label="y = x")
            for label in sorted(set(names[keep])):
                mine = names[keep] == label
                ax.scatter(x[mine], y[mine], s=9, alpha=0.6, label=str(label))
            within = float(np.mean(np.abs(y - x) <= BAND * x))
            ax.text(0.02, 0.97, f"{within:.0%} of rows within {band}", transform=ax.transAxes, va="top")
            ax.set_xlim(low, high)
            ax.set_ylim(low, high)
            ax.legend(loc="lower right")
        lo, hi = ax.get_xlim()
        decades = np.log10(hi / lo)
        subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4 else (1.0,)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(subs=subs))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="major", alpha=0.25)
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
