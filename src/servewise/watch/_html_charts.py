"""Plotly chart specs of a ``WatchReport`` (``{"data", "layout", "meta"}``, as ``servewise.web._charts``): the
charts of the standalone HTML report and of the web *Watch* page, built once here for both (``_html``).

Charts (x: time, UTC, from ``Observation.started_at`` + each ``Sample``'s ``t_s``):

* ``latency`` — TTFT, ITL and E2E p95 per interval (ms), one panel each, with the plan's p95 target as a dashed line;
  an interval where nothing finished is a gap, never 0.
* ``load`` — replicas answering per interval (a step held over the interval ``(t_s − interval_s, t_s]``) vs finished
  requests per second (a bar in the middle of its interval), with the plan's replica count and its capacity
  ``replicas × max_qps_per_replica`` (req/s at which the plan still meets the SLO).
* ``spend`` — $/hour per interval: the GPU cost of the replicas up, ``replicas × usd_per_hour / plan replicas`` (plan
  pricing), and the gateway-metered spend when gateway metrics were read, against the budget pace
  ``budget_usd_month / 730 h`` (when the workload has a budget) and the plan's own $/hour.

A chart with nothing to draw is left out (``report_charts``), and the page says "not observed" in its place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from servewise.cost import HOURS_PER_MONTH
from servewise.watch._observation import WatchReport, WatchTarget

__all__ = [
    "CHARTS",
    "budget_pace_usd_per_hour",
    "latency_spec",
    "load_spec",
    "replica_usd_per_hour",
    "report_charts",
    "spend_spec",
]

LATENCY_METRICS = (("ttft", "TTFT", "#2457c5"), ("itl", "ITL", "#18794e"), ("e2e", "E2E", "#b54708"))


# -- pure numbers ------------------------------------------------------------------------------------------------
def budget_pace_usd_per_hour(target: WatchTarget) -> float | None:
    """The budget spent evenly over a month: ``budget_usd_month / 730 h``; ``None`` without a budget."""
    if target.budget_usd_month is None:
        return None
    return target.budget_usd_month / HOURS_PER_MONTH


def replica_usd_per_hour(target: WatchTarget) -> float | None:
    """One replica-hour at the plan's pricing: ``usd_per_hour / replicas`` (``None`` for a plan of 0 replicas)."""
    return target.usd_per_hour / target.replicas if target.replicas > 0 else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None or not math.isfinite(seconds) else round(seconds * 1000.0, 3)


def _times(started_at: str, offsets_s: Sequence[float]) -> list[str] | list[float]:
    """ISO timestamps ``started_at + offset``; the offsets (seconds) when ``started_at`` does not parse."""
    try:
        start = datetime.fromisoformat(started_at)
    except ValueError:
        return list(offsets_s)
    return [(start + timedelta(seconds=offset)).isoformat(timespec="milliseconds") for offset in offsets_s]


def _ends(report: WatchReport) -> list[str] | list[float]:
    """x of each sample: the end of its interval."""
    return _times(report.observation.started_at, [s.t_s for s in report.observation.samples])


def _steps(report: WatchReport, values: Sequence[float]) -> tuple[list[str] | list[float], list[float]]:
    """(x, y) of a ``vh`` step line holding each sample's value over its own interval ``(t_s − interval_s, t_s]``:
    the first interval's start is prepended with the first value."""
    samples = report.observation.samples
    offsets = [samples[0].t_s - samples[0].interval_s, *(s.t_s for s in samples)]
    return _times(report.observation.started_at, offsets), [values[0], *values]


def _x_axis(x: Sequence[object]) -> dict[str, Any]:
    if x and isinstance(x[0], str):
        return {"title": {"text": "time (UTC)"}, "type": "date"}
    return {"title": {"text": "seconds since the window started"}}


def _flat(x: Sequence[object], value: float, name: str, color: str, **extra: Any) -> dict[str, Any]:
    """A horizontal reference line over the whole window, drawn as a trace so it has a legend entry."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [x[0], x[-1]],
        "y": [value, value],
        "line": {"dash": "dash", "color": color, "width": 1.5},
        "hovertemplate": f"{name}: %{{y:,.3f}}<extra></extra>",
        **extra,
    }


# -- charts ------------------------------------------------------------------------------------------------------
def latency_spec(report: WatchReport) -> dict[str, Any] | None:
    """TTFT / ITL / E2E p95 per interval (ms), one stacked panel each, with the plan's p95 targets dashed.

    ``None`` when no interval measured any of them (nothing finished in the window)."""
    samples = report.observation.samples
    series = {
        "ttft": [_ms(s.ttft_p95_s) for s in samples],
        "itl": [_ms(s.itl_p95_s) for s in samples],
        "e2e": [_ms(s.e2e_p95_s) for s in samples],
    }
    if not any(v is not None for values in series.values() for v in values):
        return None
    x = _ends(report)
    data: list[dict[str, Any]] = []
    panels = len(LATENCY_METRICS)
    # The time axis sits under the bottom panel; each panel's y axis is anchored on it.
    window = _times(report.observation.started_at, [0.0, samples[-1].t_s])  # aligned with the step charts
    layout: dict[str, Any] = {
        "xaxis": _x_axis(x) | {"anchor": f"y{panels}", "range": window},
        "hovermode": "x unified",
    }
    targets_ms: dict[str, float] = {}
    for index, (key, label, color) in enumerate(LATENCY_METRICS):
        axis = "y" if index == 0 else f"y{index + 1}"
        top = 1.0 - index / panels
        layout["yaxis" if index == 0 else f"yaxis{index + 1}"] = {
            "title": {"text": f"{label} ms"},
            "domain": [max(0.0, top - 1.0 / panels + 0.06), top],
            "rangemode": "tozero",
            "anchor": "x",
        }
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{label} p95",
                "x": x,
                "y": series[key],
                "yaxis": axis,
                "line": {"color": color},
                "marker": {"size": 5},
                "connectgaps": False,
                "hovertemplate": f"{label} p95 %{{y:,.1f}} ms<extra></extra>",
            }
        )
        target_s = report.target.slo_targets_s.get(f"{key}_p95")
        if target_s is not None:
            targets_ms[key] = target_s * 1000.0
            data.append(_flat(window, targets_ms[key], f"{label} p95 target", color, yaxis=axis))
    return {
        "data": data,
        "layout": layout,
        "meta": {
            "points": len(samples),
            "targets_ms": targets_ms,
            "unobserved": [k for k, values in series.items() if all(v is None for v in values)],
        },
    }


def load_spec(report: WatchReport) -> dict[str, Any] | None:
    """Replicas answering (steps, left axis) vs finished req/s (bars, right axis), with the plan's replicas and
    its capacity at the SLO (``replicas × max_qps_per_replica``). ``None`` without samples."""
    samples = report.observation.samples
    if not samples:
        return None
    target = report.target
    x, replicas = _steps(report, [float(s.replicas) for s in samples])
    middles = _times(report.observation.started_at, [s.t_s - s.interval_s / 2 for s in samples])
    capacity_qps = target.replicas * target.max_qps_per_replica
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "replicas up",
            "x": x,
            "y": replicas,
            "line": {"shape": "vh", "color": "#2457c5", "width": 3},
            "hovertemplate": "%{y} replica(s) up<extra></extra>",
        },
        _flat(x, target.replicas, f"plan: {target.replicas} replica(s)", "#9aa5b8"),
        {
            "type": "bar",
            "name": "load (req/s)",
            "x": middles,
            "y": [round(s.qps, 4) for s in samples],
            "yaxis": "y2",
            "opacity": 0.35,
            "marker": {"color": "#18794e"},
            "hovertemplate": "%{y:,.2f} req/s<extra></extra>",
        },
        _flat(x, capacity_qps, "plan capacity at SLO (req/s)", "#18794e", yaxis="y2"),
    ]
    replicas_axis: dict[str, Any] = {"title": {"text": "replicas"}, "rangemode": "tozero"}
    if max([target.replicas, *(s.replicas for s in samples)]) <= 10:
        replicas_axis["dtick"] = 1
    return {
        "data": data,
        "layout": {
            "margin": {"l": 60, "r": 55, "t": 10, "b": 50},
            "xaxis": _x_axis(x),
            "yaxis": replicas_axis,
            "yaxis2": {
                "title": {"text": "req/s"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
            },
        },
        "meta": {"points": len(samples), "capacity_qps": capacity_qps, "plan_replicas": target.replicas},
    }


def spend_spec(report: WatchReport) -> dict[str, Any] | None:
    """$/hour per interval vs the budget pace and the plan's $/hour (see the module docstring). ``None`` without
    samples."""
    samples = report.observation.samples
    if not samples:
        return None
    target = report.target
    x, replicas = _steps(report, [float(s.replicas) for s in samples])
    data: list[dict[str, Any]] = []
    per_replica = replica_usd_per_hour(target)
    if per_replica is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "GPU cost of replicas up (plan pricing)",
                "x": x,
                "y": [round(r * per_replica, 4) for r in replicas],
                "line": {"shape": "vh", "color": "#2457c5", "width": 3},
                "hovertemplate": "$%{y:,.2f}/h<extra></extra>",
            }
        )
    metered = [s.spend_usd_per_hour for s in samples]
    gateway = any(v is not None for v in metered)
    if gateway:
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "gateway-metered spend",
                "x": _ends(report),
                "y": metered,
                "line": {"color": "#b54708"},
                "connectgaps": False,
                "hovertemplate": "$%{y:,.2f}/h metered<extra></extra>",
            }
        )
    pace = budget_pace_usd_per_hour(target)
    if pace is not None:
        data.append(_flat(x, pace, "budget pace ($/month ÷ 730 h)", "#b42318"))
    data.append(_flat(x, target.usd_per_hour, "plan $/hour", "#9aa5b8"))
    return {
        "data": data,
        "layout": {
            "xaxis": _x_axis(x),
            "yaxis": {"title": {"text": "USD per hour"}, "tickprefix": "$", "rangemode": "tozero"},
        },
        "meta": {
            "points": len(samples),
            "budget_pace_usd_per_hour": pace,
            "plan_usd_per_hour": target.usd_per_hour,
            "replica_usd_per_hour": per_replica,
            "gateway_spend": gateway,
        },
    }


CHARTS: tuple[tuple[str, Callable[[WatchReport], dict[str, Any] | None]], ...] = (
    ("latency", latency_spec),
    ("load", load_spec),
    ("spend", spend_spec),
)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as ``None`` (JSON has no NaN: ``JSON.parse`` would reject the page's
    chart data, and a hand-edited report file can hold one)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def report_charts(report: WatchReport) -> dict[str, dict[str, Any]]:
    """Every chart that has something to draw, by key (``latency``, ``load``, ``spend``); numbers all finite."""
    charts = {key: build(report) for key, build in CHARTS}
    return {key: _finite(spec) for key, spec in charts.items() if spec is not None}
