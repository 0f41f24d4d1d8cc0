"""Chart data for the Plan page: plotly figure specs (``{"data": [...], "layout": {...}}``) built from a plan document.

Why plain dicts from the plan document: the page embeds them as JSON and ``static/app.js`` hands them to the
plotly.js bundled in the ``plotly`` wheel, so every number drawn is one the downloadable plan JSON also holds (or,
for the replicas and break-even charts, one ``servewise.cost`` computes from it the way the ``autoscale`` and
``tco`` commands do). Each spec also carries a ``meta`` dict for tests and captions; plotly ignores it.

Charts:

* ``scatter`` — every option kept in the plan: x = predicted E2E p95 ms, y = $/month. The Pareto front is the set
  of options no other option beats on both (cost ≤ and latency ≤, one strictly <).
* ``breakdown`` — the chosen option's cost line items, $/h × 730 h = $/month.
* ``replicas`` — one weekday (Monday) of ``autoscale_week`` over the built-in ``weekly`` traffic shape scaled to
  the workload's average QPS, with the chosen option's max QPS per replica and $/replica-hour = plan $/h ÷ replicas.
* ``breakeven`` — the TCO document's cost-vs-volume series (self-hosting in the plan's pricing mode, as a
  staircase, and each hosted API, a line), with x converted from requests to tokens per month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from servewise.cost import HOURS_PER_MONTH, SHAPES, ScalingPolicy, autoscale_week, shape_multipliers
from servewise.workload import Traffic

__all__ = [
    "DEFAULT_SHAPE",
    "breakdown_spec",
    "breakeven_spec",
    "chosen_option",
    "option_label",
    "pareto_indices",
    "replicas_day_spec",
    "scatter_spec",
]

DEFAULT_SHAPE = "weekly"
Doc = Mapping[str, Any]


def chosen_option(document: Doc) -> Doc | None:
    """The option the plan chose, or ``None`` for a plan with no feasible option."""
    chosen = document.get("chosen")
    options = document.get("options") or []
    return options[chosen] if isinstance(chosen, int) and 0 <= chosen < len(options) else None


def option_label(option: Doc) -> str:
    """``Qwen2.5-7B fp8 on 1xGH200`` — the same words as ``Candidate.label()``."""
    c = option["candidate"]
    if c.get("cpu"):
        return f"{c['model']} {c['precision']} on {c['cpu']} (CPU, {c.get('vcpus')} vCPU)"
    return f"{c['model']} {c['precision']} on {c['tp']}x{c['gpu']}"


def pareto_indices(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates when both coordinates are to be minimised.

    p dominates q when p.x ≤ q.x and p.y ≤ q.y with at least one strict; sorting by (x, y) and keeping each
    point whose y is below every y seen so far finds them in O(n log n). Exact duplicates are all kept.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best_y = math.inf
    last: tuple[float, float] | None = None
    for i in order:
        x, y = points[i]
        if y < best_y or (last is not None and (x, y) == last and y == best_y):
            front.append(i)
            best_y = min(best_y, y)
            last = (x, y)
    return sorted(front)


def scatter_spec(document: Doc) -> dict[str, Any]:
    """Cost vs E2E p95 latency of every option, the Pareto front joined by a line, the chosen option starred."""
    options = [o for o in document.get("options") or [] if o["perf"]["e2e"].get("p95_ms") is not None]
    points = [(float(o["perf"]["e2e"]["p95_ms"]), float(o["cost"]["usd_per_month"])) for o in options]
    front = set(pareto_indices(points))
    chosen = chosen_option(document)

    def trace(indices: list[int], name: str, **style: Any) -> dict[str, Any]:
        return {
            "type": "scatter",
            "name": name,
            "x": [points[i][0] for i in indices],
            "y": [points[i][1] for i in indices],
            "customdata": [options[i]["rank"] for i in indices],
            "text": [f"#{options[i]['rank']} {option_label(options[i])}" for i in indices],
            "hovertemplate": "%{text}<br>E2E p95 %{x:,.0f} ms<br>$%{y:,.0f}/month<extra></extra>",
            **style,
        }

    others = [i for i in range(len(options)) if i not in front]
    on_front = sorted(front, key=lambda i: points[i])
    data = [
        trace(others, "options", mode="markers", marker={"color": "#9aa5b8", "size": 8}),
        trace(on_front, "Pareto front", mode="lines+markers", marker={"color": "#2457c5", "size": 10}),
    ]
    if chosen is not None and chosen in options:
        data.append(
            trace(
                [options.index(chosen)],
                "chosen ★",
                mode="markers",
                marker={"color": "#d97706", "size": 18, "symbol": "star"},
            )
        )
    return {
        "data": data,
        "layout": {
            "xaxis": {"title": {"text": "predicted E2E p95 latency (ms)"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": "USD per month"}, "rangemode": "tozero", "tickprefix": "$"},
        },
        "meta": {
            "option_ranks": [o["rank"] for o in options],
            "pareto_ranks": [options[i]["rank"] for i in on_front],
        },
    }


def breakdown_spec(option: Doc) -> dict[str, Any]:
    """The chosen option's monthly cost by line item (each ``usd_per_hour`` × 730 h)."""
    items = option["cost"].get("line_items") or []
    labels = [str(item["label"]) for item in items]
    usd = [float(item["usd_per_hour"]) * HOURS_PER_MONTH for item in items]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "$/month",
                "x": usd,
                "y": labels,
                "text": [f"${value:,.0f}" for value in usd],
                "textposition": "auto",
                "customdata": [str(item.get("detail", "")) for item in items],
                "hovertemplate": "%{y}: $%{x:,.0f}/month<br>%{customdata}<extra></extra>",
                "marker": {"color": "#2457c5"},
            }
        ],
        "layout": {
            "xaxis": {"title": {"text": "USD per month (730 h)"}, "tickprefix": "$", "rangemode": "tozero"},
            "yaxis": {"automargin": True},
            "showlegend": False,
        },
        "meta": {"total_usd_per_month": sum(usd), "plan_usd_per_month": option["cost"]["usd_per_month"]},
    }


def replicas_day_spec(document: Doc, *, shape: str = DEFAULT_SHAPE, day: int = 0) -> dict[str, Any] | None:
    """Replicas the chosen option needs hour by hour on one day (0 = Monday) of the ``shape`` week, autoscaled.

    ``None`` when the plan has no chosen option. Scaling policy: ``ScalingPolicy()`` defaults (min 1 replica,
    5 min scale-up lag, 10 min cold start), the same assumptions as ``servewise autoscale``.
    """
    option = chosen_option(document)
    if option is None:
        return None
    avg_qps = Traffic.model_validate(document["workload"]["traffic"]).avg_qps
    policy = ScalingPolicy()
    result = autoscale_week(
        [avg_qps * m for m in shape_multipliers(shape)],
        max_qps_per_replica=float(option["perf"]["max_qps_per_replica"]),
        usd_per_replica_hour=float(option["cost"]["usd_per_hour"]) / int(option["replicas"]),
        policy=policy,
    )
    hours = result.hours[day * 24 : day * 24 + 24]
    peak_replicas = max([int(option["replicas"]), *(h.target_replicas for h in hours)])
    replicas_axis: dict[str, Any] = {"title": {"text": "replicas"}, "rangemode": "tozero"}
    if peak_replicas <= 10:
        replicas_axis["dtick"] = 1
    x = [f"{h.hour % 24:02d}:00" for h in hours]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": "#2457c5", "width": 3},
                "name": "replicas (autoscaled)",
                "x": x,
                "y": [h.target_replicas for h in hours],
                "hovertemplate": "%{x}: %{y} replica(s)<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"dash": "dot", "color": "#9aa5b8"},
                "name": f"plan: {option['replicas']} replica(s) static",
                "x": x,
                "y": [option["replicas"]] * len(hours),
                "hoverinfo": "skip",
            },
            {
                "type": "bar",
                "name": "demand (req/s)",
                "x": x,
                "y": [round(h.qps, 4) for h in hours],
                "yaxis": "y2",
                "opacity": 0.25,
                "marker": {"color": "#18794e"},
                "hovertemplate": "%{x}: %{y:,.2f} req/s<extra></extra>",
            },
        ],
        "layout": {
            "xaxis": {"title": {"text": "hour of a weekday (Monday)"}},
            "yaxis": replicas_axis,
            "yaxis2": {
                "title": {"text": "req/s"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
            },
        },
        "meta": {
            "shape": shape,
            "shape_text": SHAPES[shape],
            "policy": {
                "min_replicas": policy.min_replicas,
                "scale_up_lag_min": policy.scale_up_lag_min,
                "cold_start_min": policy.cold_start_min,
            },
            "avg_qps": avg_qps,
            "max_qps_per_replica": result.max_qps_per_replica,
            "autoscaled_usd_per_month": result.usd_per_month,
            "static_usd_per_month": result.static_usd_per_month,
            "peak_replicas_day": max(h.target_replicas for h in hours),
            "day": day,
        },
    }


def breakeven_spec(document: Doc, tco: Doc, *, apis: int = 3) -> dict[str, Any] | None:
    """Self-hosting (the plan's pricing mode) vs the ``apis`` hosted APIs cheapest at this workload's volume.

    ``tco`` is a ``servewise.tco/1`` document priced against the catalog's APIs; its chart x is requests per month,
    converted here to tokens with the deployment's mean prompt + output tokens per request. ``None`` when it has
    nothing to draw.
    """
    chart = tco.get("chart") or {}
    volumes = [float(v) for v in chart.get("volumes") or []]
    series: Mapping[str, Sequence[float | None]] = chart.get("series") or {}
    deployment = tco["deployment"]
    tokens_per_request = float(deployment["prompt_tokens"]) + float(deployment["output_tokens"])
    mode = str(document["workload"].get("constraints", {}).get("pricing", "on-demand"))
    self_host = mode if mode in series else "on-demand"
    cheapest = sorted(tco.get("apis") or [], key=lambda a: (a["usd_per_month"], a["model"]))[:apis]
    kept = [label for label in (self_host, *(f"API {a['model']}" for a in cheapest)) if label in series]
    if not volumes or not kept:
        return None
    break_evens = {
        b["api_model"]: b["first_requests_per_month"]
        for b in tco.get("break_evens") or []
        if b["option"] == self_host
    }
    x = [v * tokens_per_request / 1e6 for v in volumes]
    data: list[dict[str, Any]] = []
    for label in kept:
        is_api = label.startswith("API ")
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label if is_api else f"self-host {deployment['model']} ({label})",
                "x": x,
                "y": list(series[label]),
                "line": {
                    "shape": "linear" if is_api else "hv",
                    "dash": "dash" if is_api else "solid",
                    "width": 2 if is_api else 3,
                },
                "hovertemplate": "%{x:,.0f}M tokens/month: $%{y:,.0f}<extra>" + label + "</extra>",
            }
        )
    workload_tokens_m = float(tco["monthly_requests"]) * tokens_per_request / 1e6
    return {
        "data": data,
        "layout": {
            "xaxis": {
                "title": {"text": "tokens per month (millions, prompt + output)"},
                "rangemode": "tozero",
            },
            "yaxis": {"title": {"text": "USD per month"}, "tickprefix": "$", "rangemode": "tozero"},
            "shapes": [
                {
                    "type": "line",
                    "x0": workload_tokens_m,
                    "x1": workload_tokens_m,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dot", "color": "#5b6475"},
                }
            ],
            "annotations": [
                {
                    "x": workload_tokens_m,
                    "yref": "paper",
                    "y": 1,
                    "text": "this workload",
                    "showarrow": False,
                    "xanchor": "left",
                    "font": {"size": 11, "color": "#5b6475"},
                }
            ],
        },
        "meta": {
            "workload_tokens_per_month_m": workload_tokens_m,
            "series": kept,
            "self_host_mode": self_host,
            "apis_priced": len(tco.get("apis") or []),
            "break_even_tokens_per_month_m": {
                a["model"]: None
                if break_evens.get(a["model"]) is None
                else float(break_evens[a["model"]]) * tokens_per_request / 1e6
                for a in cheapest
            },
        },
    }
