"""``servewise compare``: two workloads, or one with ``--set`` what-ifs, planned side by side with deltas.

Sides: each workload file given (positional, after ``--file`` if any), or the workload ``plan``'s options describe;
then one more side per ``--set`` (assignments within one ``--set`` separated by ``;``), each a variation of the first
side. ``plan``'s workload options apply to every side, so ``compare a.yaml b.yaml --gpu H100`` compares both on H100.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from servewise.catalog import CatalogSnapshot, open_catalog
from servewise.errors import UsageError
from servewise.planner import (
    METRICS,
    Comparison,
    ExecutorName,
    Plan,
    compare_plans,
    comparison_document,
    make_plan,
    open_executor,
)
from servewise.workload import Workload, apply_overrides, parse_variation

from ._output import Column, OutputFormat, progress_bar, render, stdout_console
from ._plan import (
    AddressOption,
    ExecutorOption,
    resolve_workload_names,
    with_workload_options,
    workload_from_options,
)

__all__ = ["compare_command", "comparison_document"]


def _number(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric == "usd_per_month":
        return f"${value:,.0f}"
    if metric in ("gpus_total", "replicas"):
        return f"{value:.0f}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _delta_text(absolute: float | None, percent: float | None, metric: str) -> str:
    if absolute is None:
        return "—"
    shown = _number(abs(absolute), metric)
    sign = "+" if absolute > 0 else "-" if absolute < 0 else "±"
    pct = f" ({percent:+.1f}%)" if percent is not None else ""
    return f"{sign}{shown}{pct}"


def _print(comparison: Comparison, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], (), fmt, json_document=comparison_document(comparison))
        return
    sides = comparison.sides
    if fmt is OutputFormat.csv:
        columns = (
            Column("side", "side"),
            Column("metric", "metric"),
            Column("value", "value"),
            Column("base", "base"),
            Column("delta", "delta"),
            Column("delta_pct", "delta_pct"),
        )
        rows: list[dict[str, object]] = []
        base = sides[0]
        for side in sides:
            for metric, _ in METRICS:
                delta = next(
                    (d for d in comparison.deltas if d.side == side.label and d.metric == metric), None
                )
                rows.append(
                    {
                        "side": side.label,
                        "metric": metric,
                        "value": getattr(side, metric),
                        "base": getattr(base, metric),
                        "delta": None if delta is None else delta.absolute,
                        "delta_pct": None if delta is None else delta.percent,
                    }
                )
        render(rows, columns, fmt)
        return
    columns_list = [Column("what", "")]
    for index, side in enumerate(sides):
        base_mark = " (base)" if index == 0 and side.label != "base" else ""
        columns_list.append(Column(f"side{index}", side.label + base_mark))
        if index:
            columns_list.append(Column(f"delta{index}", f"Δ {side.label}"))
    table_rows: list[dict[str, object]] = [
        {
            "what": "model",
            **{f"side{i}": f"{s.model} {s.precision}" if s.feasible else "—" for i, s in enumerate(sides)},
        },
        {
            "what": "GPUs x replicas",
            **{
                f"side{i}": f"{s.tp}x{s.gpu} x{s.replicas}" if s.feasible else "—"
                for i, s in enumerate(sides)
            },
        },
    ]
    for metric, name in METRICS:
        row: dict[str, object] = {"what": name}
        for i, side in enumerate(sides):
            row[f"side{i}"] = _number(getattr(side, metric), metric)
            if i:
                d = next(d for d in comparison.deltas if d.side == side.label and d.metric == metric)
                row[f"delta{i}"] = _delta_text(d.absolute, d.percent, metric)
        table_rows.append(row)
    render(table_rows, columns_list, fmt, title="what-if: chosen option per side, deltas against the base")
    notes = [f"{s.label}: {'why: ' if s.feasible else 'no feasible option: '}{s.reason}" for s in sides]
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in notes))
        return
    console = stdout_console()
    for line in notes:
        console.print(line, style="dim", highlight=False, markup=False)


def _sides(
    workload_options: dict[str, Any], files: list[Path], sets: list[str]
) -> tuple[list[tuple[str, Workload]], CatalogSnapshot]:
    paths = ([workload_options["file"]] if workload_options.get("file") else []) + files
    sides: list[tuple[str, Workload]] = []
    snapshot: CatalogSnapshot | None = None
    targets: list[Path | None] = [*paths] if paths else [None]
    for path in targets:
        workload, snapshot = workload_from_options({**workload_options, "file": path})
        sides.append((path.name if path is not None else "base", workload))
    assert snapshot is not None
    variations = [(text, parse_variation(text)) for text in sets]
    if len(sides) + len(variations) < 2:
        raise UsageError(
            "nothing to compare: give a second workload file, or a what-if such as --set traffic.qps=40"
        )
    if variations:
        base = sides[0][1]
        with open_catalog(workload_options.get("db_url")) as catalog:
            for text, overrides in variations:
                sides.append((text, resolve_workload_names(apply_overrides(base, overrides), catalog)))
    labels = [label for label, _ in sides]
    for index, label in enumerate(labels):
        if label in labels[:index]:
            sides[index] = (f"{label} #{index + 1}", sides[index][1])
    return sides, snapshot


@with_workload_options
def compare_command(
    workload_options: dict[str, Any],
    files: Annotated[
        list[Path] | None, typer.Argument(help="workload YAML/JSON files to compare (the first is the base)")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="a what-if of the base: KEY=VALUE (dotted path, e.g. traffic.qps=40); ';' joins several in one "
            "side; repeat for more sides",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    executor: ExecutorOption = ExecutorName.inprocess,
    address: AddressOption = None,
) -> None:
    """Compare plans side by side: two workload files, or one workload and --set what-ifs; deltas against the first."""
    sides, snapshot = _sides(workload_options, files or [], set_ or [])
    plans: list[tuple[str, Plan]] = []
    with open_executor(executor, address) as runner, progress_bar("planning sides", len(sides)) as advance:
        for label, workload in sides:
            plans.append(
                (
                    label,
                    make_plan(workload, snapshot, executor=runner if executor is ExecutorName.ray else None),
                )
            )
            advance(1)
    _print(compare_plans(plans), fmt)
