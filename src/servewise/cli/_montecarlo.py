"""``servewise montecarlo``: how likely the plan's best options are to meet the SLO and the budget when traffic,
request lengths and prices are not what the workload says (model and formulas: planner/_montecarlo.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from servewise.planner import (
    SAMPLES_PER_CHUNK,
    ExecutorName,
    MonteCarloResult,
    Uncertainty,
    make_plan,
    monte_carlo,
    open_executor,
)

from ._output import Column, OutputFormat, progress_bar, render, stdout_console
from ._plan import AddressOption, ExecutorOption, with_workload_options, workload_from_options

__all__ = ["montecarlo_command", "montecarlo_document"]

_DEFAULTS = Uncertainty()

_COLUMNS = (
    Column("mark", ""),
    Column("rank", "#", numeric=True),
    Column("option", "option"),
    Column("replicas", "replicas", numeric=True),
    Column("gpus_total", "GPUs", numeric=True),
    Column("usd_per_month", "$/month planned", numeric=True),
    Column("p_slo_met", "P(SLO met)", numeric=True),
    Column("p_over_budget", "P(over budget)", numeric=True),
    Column("usd_per_month_p50", "$/month p50", numeric=True),
    Column("usd_per_month_p95", "$/month p95", numeric=True),
    Column("most_missed", "most missed"),
)


def montecarlo_document(result: MonteCarloResult) -> dict[str, Any]:
    u = result.uncertainty
    return {
        "samples": result.samples,
        "seed": result.seed,
        "executor": result.executor,
        "uncertainty": {
            "qps_sigma": u.qps_sigma,
            "length_sigma": u.length_sigma,
            "price_sigma": u.price_sigma,
        },
        "budget_usd_month": result.budget_usd_month,
        "options": [
            {
                "rank": o.rank,
                "option": o.label,
                "replicas": o.replicas,
                "gpus_total": o.gpus_total,
                "usd_per_month": o.usd_per_month,
                "p_slo_met": o.p_slo_met,
                "p_over_budget": o.p_over_budget,
                "usd_per_month_p50": o.usd_per_month_p50,
                "usd_per_month_p95": o.usd_per_month_p95,
                "misses": {name: share for name, share in o.misses},
                "load_scale": o.load_scale,
            }
            for o in result.options
        ],
    }


def _assumptions(result: MonteCarloResult) -> list[str]:
    u = result.uncertainty
    return [
        f"samples: {result.samples}, seed {result.seed} (same seed, same numbers on any executor); "
        f"ran {result.executor}",
        f"assumption: average QPS lognormal around the workload's (median), σ of the log {u.qps_sigma:g} "
        "(--qps-sigma); replicas fixed as planned, provisioned for the peak factor",
        f"assumption: mean prompt and output lengths each × lognormal(median 1, σ {u.length_sigma:g}) "
        "(--length-sigma), every quantile scaled with its mean",
        f"assumption: price × lognormal(median 1, σ {u.price_sigma:g}) (--price-sigma)",
        "latency at each sample from the queueing approximation at the same share of capacity as the plan's "
        "(simulated) capacity; P(SLO met) = every target met and no overload",
    ]


def _print(result: MonteCarloResult, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        render([], _COLUMNS, fmt, json_document=montecarlo_document(result))
        return
    csv = fmt is OutputFormat.csv
    rows = []
    for index, o in enumerate(result.options):
        rows.append(
            {
                "mark": ("★" if fmt is OutputFormat.table else "*") if index == 0 else "",
                "rank": o.rank,
                "option": o.label,
                "replicas": o.replicas,
                "gpus_total": o.gpus_total,
                "usd_per_month": round(o.usd_per_month, 2),
                "p_slo_met": o.p_slo_met if csv else f"{o.p_slo_met:.1%}",
                "p_over_budget": o.p_over_budget
                if csv
                else ("no budget" if o.p_over_budget is None else f"{o.p_over_budget:.1%}"),
                "usd_per_month_p50": round(o.usd_per_month_p50, 2),
                "usd_per_month_p95": round(o.usd_per_month_p95, 2),
                "most_missed": f"{o.misses[0][0]} ({o.misses[0][1]:.1%})" if o.misses else "",
            }
        )
    title = f"Monte Carlo over {result.samples} samples: the plan's top {len(result.options)} options"
    render(rows, _COLUMNS, fmt, title=title, marked_row=0)
    if csv:
        return
    lines = _assumptions(result)
    if fmt is OutputFormat.markdown:
        print("\n" + "\n".join(f"- {line}" for line in lines))
        return
    console = stdout_console()
    for line in lines:
        console.print(line, style="dim", highlight=False, markup=False)


@with_workload_options
def montecarlo_command(
    workload_options: dict[str, Any],
    samples: Annotated[int, typer.Option("--samples", min=1, help="samples to draw")] = 1000,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="best plan options to assess")] = 5,
    seed: Annotated[int, typer.Option("--seed", min=0, help="random seed; same seed, same numbers")] = 0,
    qps_sigma: Annotated[
        float, typer.Option("--qps-sigma", help="σ of log(average QPS) (assumption; 0.25 ≈ ±25 %)")
    ] = _DEFAULTS.qps_sigma,
    length_sigma: Annotated[
        float, typer.Option("--length-sigma", help="σ of log(mean prompt/output length) (assumption)")
    ] = _DEFAULTS.length_sigma,
    price_sigma: Annotated[
        float, typer.Option("--price-sigma", help="σ of log(price multiplier) (assumption)")
    ] = _DEFAULTS.price_sigma,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
    executor: ExecutorOption = ExecutorName.inprocess,
    address: AddressOption = None,
) -> None:
    """Risk of the best plans when traffic, lengths and prices vary: P(SLO met), P(over budget), $/month p50/p95."""
    uncertainty = Uncertainty(qps_sigma, length_sigma, price_sigma)
    uncertainty.check()
    workload, snapshot = workload_from_options(workload_options)
    chunks = -(-samples // SAMPLES_PER_CHUNK)
    with open_executor(executor, address) as runner:
        plan = make_plan(workload, snapshot, executor=runner if executor is ExecutorName.ray else None)
        with progress_bar("sampling", chunks) as advance:
            result = monte_carlo(
                plan,
                snapshot,
                samples=samples,
                top_k=top_k,
                seed=seed,
                uncertainty=uncertainty,
                executor=runner,
                on_done=advance,
            )
    _print(result, fmt)
