"""``servewise mixed``: the pure plan next to a bulk pool plus a long-context pool or a hosted-API overflow."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from servewise.errors import InfeasibleError
from servewise.planner import (
    MixedOption,
    MixedPlan,
    Pool,
    infeasibility_message,
    make_mixed_plan,
    routing_rule,
)

from ._output import Column, OutputFormat, render, stdout_console
from ._plan import with_workload_options, workload_from_options, write_json_atomically

__all__ = ["mixed_command", "mixed_document"]

_COLUMNS = (
    Column("mark", ""),
    Column("option", "option"),
    Column("pools", "pools"),
    Column("gpus", "GPUs", numeric=True),
    Column("ttft_p95_ms", "TTFT p95 ms"),
    Column("e2e_p95_ms", "E2E p95 ms"),
    Column("share_local", "local", numeric=True),
    Column("usd_per_month", "$/month", numeric=True),
    Column("vs_pure", "vs pure", numeric=True),
)


def _ms(value: float) -> float | None:
    return round(value, 1) if math.isfinite(value) else None


def _pool_document(pool: Pool) -> dict[str, Any]:
    option = pool.option
    traffic = pool.workload.traffic
    chosen: dict[str, Any] | None = None
    if option is not None:
        c, perf, first = option.candidate, option.perf, option.cost.placements[0].offer
        chosen = {
            "model": c.model,
            "gpu": c.gpu,
            "tp": c.tp,
            "precision": str(c.precision),
            "replicas": option.replicas,
            "gpus_total": option.gpus_total,
            "max_qps_per_replica": perf.max_qps_per_replica,
            "usd_per_hour": option.cost.usd_per_hour,
            "usd_per_month": option.cost.usd_per_month,
            "ttft_p95_ms": _ms(perf.ttft.p95_ms),
            "itl_p95_ms": _ms(perf.itl.p95_ms),
            "e2e_p95_ms": _ms(perf.e2e.p95_ms),
            "provenance": str(perf.provenance),
            "offer": {
                "provider": first.provider,
                "instance_type": first.instance_type,
                "source": first.source,
                "as_of": first.as_of.isoformat() if first.as_of else None,
            },
        }
    return {
        "role": pool.role,
        "share": pool.share,
        "avg_qps": traffic.avg_qps,
        "peak_qps": traffic.peak_qps,
        "prompt_tokens": traffic.prompt_tokens.model_dump(mode="json"),
        "chosen": chosen,
        "infeasible_reason": None if option is not None else infeasibility_message(pool.plan),
    }


def _option_document(option: MixedOption, pure_usd: float | None) -> dict[str, Any]:
    api = option.api
    return {
        "name": option.name,
        "share_local": option.share_local,
        "usd_per_month": option.usd_per_month,
        "delta_vs_pure_usd_per_month": (
            None if option.usd_per_month is None or pure_usd is None else option.usd_per_month - pure_usd
        ),
        "gpus_total": option.gpus_total,
        "within_budget": option.within_budget,
        "infeasible_reason": option.infeasible_reason,
        "pools": [_pool_document(p) for p in option.pools],
        "api": None
        if api is None
        else {
            "provider": api.cost.provider,
            "model": api.cost.model,
            "share": api.share,
            "requests_per_month": api.requests_per_month,
            "input_tokens_per_month": api.input_tokens_per_month,
            "cached_input_tokens_per_month": api.cached_input_tokens_per_month,
            "output_tokens_per_month": api.output_tokens_per_month,
            "usd_per_month": api.usd_per_month,
            "over_context_share": api.over_context_share,
            "source": api.cost.source,
            "as_of": api.cost.as_of,
        },
    }


def mixed_document(plan: MixedPlan) -> dict[str, Any]:
    """The comparison as JSON (documented in docs/mixed-and-autoscale.md)."""
    pure = plan.options[0].usd_per_month
    split, rule = plan.split, plan.rule
    return {
        "workload": plan.workload.model_dump(mode="json"),
        "routing": {
            "threshold_tokens": rule.threshold_tokens,
            "local_ratio_target": rule.local_ratio_target,
            "overflow_api": rule.overflow_api,
        },
        "split": {
            "share_below": split.share_below,
            "share_above": split.share_above,
            "mean_below_tokens": split.mean_below_tokens,
            "cv_below": split.cv_below,
            "mean_above_tokens": split.mean_above_tokens,
            "cv_above": split.cv_above,
        },
        "options": [_option_document(o, pure) for o in plan.options],
        "chosen": plan.chosen,
        "assumptions": list(plan.assumptions),
    }


def _pool_text(pool: Pool) -> str:
    option = pool.option
    if option is None:
        return f"{pool.role} {pool.share:.1%}: infeasible"
    c = option.candidate
    return f"{pool.role} {pool.share:.1%}: {c.model} {c.precision} {c.tp}x{c.gpu} x{option.replicas}"


def _latency(option: MixedOption, metric: str) -> str:
    parts = []
    for pool in option.pools:
        if pool.option is not None:
            value = getattr(pool.option.perf, metric).p95_ms
            parts.append(f"{pool.role} {value:.0f}" if math.isfinite(value) else f"{pool.role} inf")
    if option.api is not None:
        parts.append("API n/a")
    return " / ".join(parts)


def _row(option: MixedOption, pure_usd: float | None, chosen: bool, fancy: bool) -> dict[str, object]:
    pools = [_pool_text(p) for p in option.pools]
    if option.api is not None:
        pools.append(f"API {option.api.share:.1%}: {option.api.cost.model}")
    usd = option.usd_per_month
    delta = None if usd is None or pure_usd is None or not pure_usd else f"{(usd - pure_usd) / pure_usd:+.0%}"
    return {
        "mark": ("★" if fancy else "*") if chosen else "",
        "option": option.name,
        "pools": " + ".join(pools),
        "gpus": option.gpus_total,
        "ttft_p95_ms": _latency(option, "ttft"),
        "e2e_p95_ms": _latency(option, "e2e"),
        "share_local": f"{option.share_local:.1%}",
        "usd_per_month": None if usd is None else round(usd, 2),
        "vs_pure": delta if option.infeasible_reason is None else "infeasible",
    }


def _print(plan: MixedPlan, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=mixed_document(plan))
        return
    fancy = fmt is OutputFormat.table
    pure = plan.options[0].usd_per_month
    rows = [_row(o, pure, i == plan.chosen, fancy) for i, o in enumerate(plan.options)]
    w = plan.workload
    title = (
        f"{w.name}: {w.traffic.peak_qps:.4g} req/s peak, split at {plan.rule.threshold_tokens:,} prompt tokens"
        f"{f', budget ${w.budget_usd_month:,.0f}/month' if w.budget_usd_month else ''}"
    )
    render(rows, _COLUMNS, fmt, title=title, marked_row=plan.chosen)
    if fmt is OutputFormat.csv:
        return
    lines = []
    chosen = plan.chosen_option
    if chosen is not None:
        lines.append(f"chosen: {chosen.name}, the cheapest feasible option{_budget_note(chosen)}")
    for option in plan.options:
        if option.infeasible_reason:
            lines.append(f"infeasible: {option.name}: {option.infeasible_reason}")
        if option.api is not None and option.api.over_context_share > 0:
            lines.append(
                f"warning: {option.api.over_context_share:.1%} of the API's requests in '{option.name}' exceed "
                "its input limit"
            )
    lines.extend(f"assumption: {a}" for a in plan.assumptions)
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(escape(line), style="bold" if line.startswith("chosen:") else "dim", highlight=False)


def _budget_note(option: MixedOption) -> str:
    notes = [] if option.within_budget else ["over the budget: no option fits it"]
    if option.api is not None:
        notes.append("the API's latency is not modelled: check it against the SLO")
    return f" ({'; '.join(notes)})" if notes else ""


@with_workload_options
def mixed_command(
    workload_options: dict[str, Any],
    threshold_tokens: Annotated[
        int | None,
        typer.Option(
            "--threshold-tokens", help="prompts longer than this leave the bulk pool [default: 4096]"
        ),
    ] = None,
    local_ratio: Annotated[
        float | None,
        typer.Option(
            "--local-ratio", help="share of requests kept on the bulk pool, e.g. 0.98 (sets the threshold)"
        ),
    ] = None,
    overflow_api: Annotated[
        str | None,
        typer.Option("--overflow-api", help="hosted API model for the overflow, e.g. gpt-4o-mini"),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the comparison as JSON")
    ] = None,
) -> None:
    """Compare one pool for everything with a bulk pool plus a long-context pool or hosted-API overflow."""
    workload, snapshot = workload_from_options(workload_options)
    rule = routing_rule(
        workload, threshold_tokens=threshold_tokens, local_ratio=local_ratio, overflow_api=overflow_api
    )
    plan = make_mixed_plan(workload, snapshot, rule)
    if plan.chosen is None:
        reasons = "; ".join(f"{o.name}: {o.infeasible_reason}" for o in plan.options)
        raise InfeasibleError(f"no option is feasible: {reasons}")
    if output is not None:
        write_json_atomically(output, mixed_document(plan), example="mixed.json")
    _print(plan, fmt)
