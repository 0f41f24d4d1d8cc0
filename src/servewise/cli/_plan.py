"""``servewise plan``: a workload in, a costed and ranked plan out (table, JSON, CSV or Markdown; ``-o plan.json``)."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.catalog import CatalogSnapshot, open_catalog
from servewise.cost import CostEstimate
from servewise.errors import UsageError
from servewise.planner import (
    ExecutorName,
    Plan,
    PlanOption,
    make_plan,
    open_executor,
    plan_document,
    rejection_counts,
    require_feasible,
    resolve_workload_names,
    workload_from_layers,
)
from servewise.types import Precision, PricingMode, Priority
from servewise.workload import Workload, load_workload_file

from ._output import Column, OutputFormat, render, stderr_console, stdout_console, write_atomically

__all__ = [
    "WORKLOAD_OPTIONS",
    "AddressOption",
    "ExecutorOption",
    "plan_command",
    "resolve_workload_names",
    "with_workload_options",
    "workload_from_options",
    "write_json_atomically",
]

ExecutorOption = Annotated[
    ExecutorName,
    typer.Option("--executor", help="where the sweep runs: inprocess, or ray (pip install 'servewise[ray]')"),
]
AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster to join (ray://host:10001 or auto); default: a local Ray"),
]

_FLAG_FOR_FIELD = {
    "traffic.qps": "--qps",
    "traffic.users": "--users",
    "traffic.requests_per_user_hour": "--requests-per-user-hour",
    "traffic.peak_factor": "--peak-factor",
    "traffic.prompt_tokens.mean": "--prompt-tokens",
    "traffic.output_tokens.mean": "--output-tokens",
    "traffic.prefix_share": "--prefix-share",
    "slo.ttft_p95_ms": "--ttft-p95-ms",
    "slo.itl_p95_ms": "--itl-p95-ms",
    "slo.e2e_p95_ms": "--e2e-p95-ms",
    "budget_usd_month": "--budget-usd-month",
    "constraints.max_gpus": "--max-gpus",
    "constraints.min_params_b": "--min-params-b",
    "constraints.cpu": "--cpu",
}


def _set(tree: dict[str, Any], path: str, value: object) -> None:
    if value is None:
        return
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _overrides(values: dict[str, object]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for field, flag in _FLAG_FOR_FIELD.items():
        _set(tree, field, values.get(flag))
    for flag, field in (
        ("--gpu", "constraints.gpus"),
        ("--model", "constraints.models"),
        ("--provider", "constraints.providers"),
        ("--precision", "constraints.precisions"),
    ):
        if values.get(flag):
            _set(tree, field, values[flag])
    _set(tree, "constraints.pricing", values.get("--pricing"))
    _set(tree, "priority", values.get("--priority"))
    return tree


def _flag_message(message: str) -> str:
    """Name the flag rather than the field when a flag set it: "--qps: must be > 0 (got -5.0)"."""
    for field, flag in _FLAG_FOR_FIELD.items():
        marker = f"workload: {field}: "
        if message.startswith(marker):
            return f"{flag}: {message.removeprefix(marker)}"
    return message


def write_json_atomically(
    path: Path, document: object, *, flag: str = "-o", example: str = "plan.json"
) -> None:
    """Write the whole file or nothing: a temporary file in the same folder, then a rename."""
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    write_atomically(path, text, flag=flag, example=example)


def _offer_text(cost: CostEstimate) -> str:
    first = cost.placements[0].offer
    kinds = " + ".join(f"{p.instances}x {p.offer.instance_type}" for p in cost.placements)
    return (
        f"{first.provider} {kinds}" if len(cost.placements) > 1 else f"{first.provider} {first.instance_type}"
    )


_COLUMNS = (
    Column("mark", ""),
    Column("rank", "#", numeric=True),
    Column("model", "model"),
    Column("precision", "prec"),
    Column("gpus", "GPUs x replicas"),
    Column("ttft_p95", "TTFT p95/SLO ms"),
    Column("itl_p95", "ITL p95/SLO ms"),
    Column("e2e_p95", "E2E p95/SLO ms"),
    Column("usd_per_hour", "$/h", numeric=True),
    Column("usd_per_month", "$/month", numeric=True),
    Column("usd_per_1m_output_tokens", "$/1M out tok", numeric=True),
    Column("provenance", "provenance"),
    Column("offer", "offer"),
)


def _slo_cell(option: PlanOption, metric: str, fancy: bool) -> str:
    value = getattr(option.perf, metric).p95_ms
    check = next((c for c in option.slo if c.name == f"{metric}_p95_ms"), None)
    if check is None:
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    mark = ("✓" if check.met else "✗") if fancy else (" ok" if check.met else " MISS")
    shown = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return f"{shown}/{check.target_ms:g}{mark}"


def _row(option: PlanOption, chosen: bool, fancy: bool) -> dict[str, object]:
    c, cost = option.candidate, option.cost
    return {
        "mark": ("★" if fancy else "*") if chosen else "",
        "rank": option.rank,
        "model": c.model,
        "gpus": f"{c.cpu} {c.vcpus} vCPU x{option.replicas}"
        if c.cpu
        else f"{c.tp}x{c.gpu} x{option.replicas}",
        "tp": c.tp,
        "precision": str(c.precision),
        "replicas": option.replicas,
        "ttft_p95": _slo_cell(option, "ttft", fancy),
        "itl_p95": _slo_cell(option, "itl", fancy),
        "e2e_p95": _slo_cell(option, "e2e", fancy),
        "usd_per_hour": round(cost.usd_per_hour, 4),
        "usd_per_month": round(cost.usd_per_month, 2),
        "usd_per_1m_output_tokens": round(cost.usd_per_1m_output_tokens, 4),
        "provenance": str(option.perf.provenance)
        + (" + sim" if option.perf.capacity_method == "simulated" else ""),
        "offer": _offer_text(cost),
    }


def _print_plan(plan: Plan, fmt: OutputFormat, top: int, show_rejected: bool) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=plan_document(plan))
        return
    fancy = fmt is OutputFormat.table
    options = plan.options if fmt is OutputFormat.csv else plan.options[:top]
    rows = [_row(o, index == plan.chosen, fancy) for index, o in enumerate(options)]
    w = plan.workload
    title = (
        f"{w.name}: {w.traffic.peak_qps:.4g} req/s peak, "
        f"{w.traffic.prompt_tokens.mean:g}->{w.traffic.output_tokens.mean:g} tokens"
        f"{f', budget ${w.budget_usd_month:,.0f}/month' if w.budget_usd_month else ''}"
    )
    shown = f"top {len(options)} of {len(plan.options)}" if len(options) < len(plan.options) else "all"
    caption = f"{shown} options; {len(plan.rejected)} rejected"
    render(rows, _COLUMNS, fmt, title=title, marked_row=plan.chosen, caption=caption if fancy else None)
    if fmt is OutputFormat.csv:
        return
    chosen = plan.chosen_option
    lines = []
    if chosen is not None:
        lines.append(f"why: {plan.why}")
        for placement in chosen.cost.placements:
            offer = placement.offer
            lines.append(
                f"price: {offer.provider} {offer.instance_type} ${offer.instance_usd_per_hour:.4g}/h {offer.pricing}; "
                f"source {offer.source}; as of {offer.as_of or 'unknown (see `servewise catalog health`)'}"
            )
    lines.extend(f"assumption: {a}" for a in plan.assumptions)
    if show_rejected:
        lines.extend(_rejected_lines(plan))
    elif plan.rejected:
        counts = ", ".join(f"{count} {stage}" for stage, count in rejection_counts(plan.rejected))
        lines.append(f"rejected: {counts} (--show-rejected lists them)")
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        style = "bold" if line.startswith("why:") else "dim"
        console.print(escape(line), style=style, highlight=False)


def _rejected_lines(plan: Plan) -> list[str]:
    lines = [f"rejected ({len(plan.rejected)}):"]
    for r in sorted(plan.rejected, key=lambda r: (r.stage, r.model, r.gpu, r.tp or 0, str(r.precision))):
        lines.append(f"  [{r.stage}] {r.model} {r.precision or '*'} on {r.tp or '*'}x{r.gpu}: {r.reason}")
    return lines


WORKLOAD_OPTIONS = (
    "use_case",
    "file",
    "qps",
    "users",
    "requests_per_user_hour",
    "peak_factor",
    "prompt_tokens",
    "output_tokens",
    "prefix_share",
    "ttft_p95_ms",
    "itl_p95_ms",
    "e2e_p95_ms",
    "budget_usd_month",
    "gpu",
    "model",
    "provider",
    "precision",
    "pricing",
    "priority",
    "max_gpus",
    "min_params_b",
    "cpu",
    "db_url",
)
"""Parameters of ``plan_command`` that describe the workload: other commands (``mixed``, ``autoscale``) take the
same options by reusing these parameters of its signature, so a flag means the same thing everywhere."""


def workload_from_options(options: dict[str, Any]) -> tuple[Workload, CatalogSnapshot]:
    """The validated workload (template < file < flags) and the catalog snapshot; ``options`` maps the names in
    ``WORKLOAD_OPTIONS`` to the values given (absent means not given)."""
    o = {name: options.get(name) for name in WORKLOAD_OPTIONS}
    precision, pricing, priority = o["precision"], o["pricing"], o["priority"]
    flags: dict[str, object] = {
        "--qps": o["qps"],
        "--users": o["users"],
        "--requests-per-user-hour": o["requests_per_user_hour"],
        "--peak-factor": o["peak_factor"],
        "--prompt-tokens": o["prompt_tokens"],
        "--output-tokens": o["output_tokens"],
        "--prefix-share": o["prefix_share"],
        "--ttft-p95-ms": o["ttft_p95_ms"],
        "--itl-p95-ms": o["itl_p95_ms"],
        "--e2e-p95-ms": o["e2e_p95_ms"],
        "--budget-usd-month": o["budget_usd_month"],
        "--gpu": o["gpu"],
        "--model": o["model"],
        "--provider": o["provider"],
        "--precision": [str(p) for p in precision] if precision else None,
        "--pricing": str(pricing) if pricing else None,
        "--priority": str(priority) if priority else None,
        "--max-gpus": o["max_gpus"],
        "--min-params-b": o["min_params_b"],
        "--cpu": o["cpu"],
    }
    use_case, file = o["use_case"], o["file"]
    if use_case is None and file is None and o["prompt_tokens"] is None:
        raise UsageError(
            "describe the workload: --use-case NAME, --file workload.yaml, or --prompt-tokens/--output-tokens"
        )
    file_data = load_workload_file(file) if file is not None else None
    with open_catalog(o["db_url"]) as catalog:
        try:
            workload = workload_from_layers(
                catalog,
                use_case=use_case,
                data=file_data,
                overrides=_overrides(flags),
                source=str(file) if file is not None else "workload",
            )
        except UsageError as err:
            err.args = (_flag_message(str(err)),)
            raise
        snapshot = catalog.snapshot()
    return workload, snapshot


def with_workload_options(command: Callable[..., None]) -> Callable[..., None]:
    """A Typer command taking ``plan``'s workload options (``WORKLOAD_OPTIONS``, same names, help and types) before
    ``command``'s own; ``command`` receives them as one dict, ``workload_options``, for ``workload_from_options``."""
    plan_parameters = inspect.signature(plan_command, eval_str=True).parameters
    own = inspect.signature(command, eval_str=True).parameters
    parameters = [plan_parameters[name] for name in WORKLOAD_OPTIONS] + [
        p for name, p in own.items() if name != "workload_options"
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name in WORKLOAD_OPTIONS}
        command(workload_options=options, **kwargs)

    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def plan_command(
    use_case: Annotated[
        str | None, typer.Option("--use-case", "-u", help="use-case template, e.g. chatbot_conversational")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="workload YAML or JSON file")] = None,
    qps: Annotated[float | None, typer.Option("--qps", help="average requests per second")] = None,
    users: Annotated[
        int | None, typer.Option("--users", help="number of users (with --requests-per-user-hour)")
    ] = None,
    requests_per_user_hour: Annotated[
        float | None,
        typer.Option("--requests-per-user-hour", help="requests per user per hour (with --users)"),
    ] = None,
    peak_factor: Annotated[float | None, typer.Option("--peak-factor", help="peak / average QPS")] = None,
    prompt_tokens: Annotated[float | None, typer.Option("--prompt-tokens", help="mean prompt tokens")] = None,
    output_tokens: Annotated[float | None, typer.Option("--output-tokens", help="mean output tokens")] = None,
    prefix_share: Annotated[
        float | None, typer.Option("--prefix-share", help="share of prompt tokens cached")
    ] = None,
    ttft_p95_ms: Annotated[
        float | None, typer.Option("--ttft-p95-ms", help="p95 time to first token target, ms")
    ] = None,
    itl_p95_ms: Annotated[
        float | None, typer.Option("--itl-p95-ms", help="p95 inter-token latency target, ms")
    ] = None,
    e2e_p95_ms: Annotated[
        float | None, typer.Option("--e2e-p95-ms", help="p95 end-to-end latency target, ms")
    ] = None,
    budget_usd_month: Annotated[
        float | None, typer.Option("--budget-usd-month", help="reject options costing more per month (730 h)")
    ] = None,
    gpu: Annotated[list[str] | None, typer.Option("--gpu", help="allowed GPU or family (repeatable)")] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="allowed model or HF id (repeatable)")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option("--provider", help="allowed provider (repeatable)")
    ] = None,
    precision: Annotated[
        list[Precision] | None, typer.Option("--precision", help="allowed precision (repeatable)")
    ] = None,
    pricing: Annotated[
        PricingMode | None,
        typer.Option(
            "--pricing",
            help="on-demand (default), spot (listed price), reserved-1y or reserved-3y (see `servewise tco`)",
        ),
    ] = None,
    priority: Annotated[
        Priority | None, typer.Option("--priority", help="rank by cost (default), latency or balanced")
    ] = None,
    max_gpus: Annotated[int | None, typer.Option("--max-gpus", help="GPUs across all replicas")] = None,
    min_params_b: Annotated[
        float | None, typer.Option("--min-params-b", help="quality floor, billions of params")
    ] = None,
    cpu: Annotated[
        bool | None,
        typer.Option(
            "--cpu/--no-cpu",
            help="CPU serving options for every model / for none (default: models <= 4B active params)",
            show_default=False,
        ),
    ] = None,
    show_rejected: Annotated[
        bool, typer.Option("--show-rejected", help="list every rejected candidate")
    ] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="options shown in table/markdown")] = 10,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the full plan as JSON")] = None,
    db_url: Annotated[
        str | None, typer.Option("--db-url", help="catalog database (default: SERVEWISE_DB_URL)")
    ] = None,
    executor: ExecutorOption = ExecutorName.inprocess,
    address: AddressOption = None,
) -> None:
    """Plan a deployment: which model on which GPUs, how many replicas, what it costs, whether it meets the SLO."""
    workload, snapshot = workload_from_options(
        {name: value for name, value in locals().items() if name in WORKLOAD_OPTIONS}
    )
    with open_executor(executor, address) as runner:
        plan = make_plan(workload, snapshot, executor=runner if executor is ExecutorName.ray else None)
    if plan.chosen is None and show_rejected:
        for line in _rejected_lines(plan):
            stderr_console().print(escape(line), highlight=False)
    require_feasible(plan)
    if output is not None:
        write_json_atomically(output, plan_document(plan))
    _print_plan(plan, fmt, top, show_rejected)
