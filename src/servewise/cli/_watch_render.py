"""The tables ``servewise watch`` prints (table or Markdown): the window, SLO compliance, gates, efficiency,
right-sizing and drift — each a list of display rows for ``_output.render``; the JSON is ``report_document``."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.markup import escape

from servewise.watch._exposition import quantile_bucket
from servewise.watch._gates import HOURS_PER_MONTH
from servewise.watch._observation import GateResult, Recommendation, WatchReport

from ._output import Column, OutputFormat, render, stdout_console

__all__ = ["best_recommendation", "render_report", "verdict"]

_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def _ms(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds * 1000:.4g} ms"


def _pct(ratio: float | None) -> str | None:
    return None if ratio is None else f"{ratio * 100:.3g} %"


def _usd(amount: float | None, per: str = "") -> str | None:
    return None if amount is None else f"${amount:,.2f}{per}"


def _num(value: float | None, unit: str = "") -> str | None:
    return None if value is None else f"{value:.4g}{unit}"


def _mark(flag: bool | None) -> str:
    return "–" if flag is None else ("✓" if flag else "✗")


def best_recommendation(recommendations: Sequence[Recommendation]) -> int | None:
    """Index of the recommendation to act on first: the largest saving whose SLO risk is not high (``None``
    when none saves money at acceptable risk)."""
    candidates = [
        (r.saving_usd_per_month, -_RISK_ORDER.get(r.slo_risk, 2), -i)
        for i, r in enumerate(recommendations)
        if r.slo_risk != "high" and r.saving_usd_per_month > 0
    ]
    return -max(candidates)[2] if candidates else None


def verdict(report: WatchReport) -> str:
    """One line: PASS, or FAIL with the gates that failed."""
    failed = [g.name for g in report.gates if g.passed is False or (g.passed is None and g.required)]
    if not failed:
        return f"PASS: all {len(report.gates)} gate(s) passed, or were skipped or undecided (not required)"
    return f"FAIL: gate(s) {', '.join(failed)} failed (exit code 1)"


def _row(metric: str, observed: str | None, plan: str | None = None) -> dict[str, object]:
    return {"metric": metric, "observed": observed or "not observed", "plan": plan}


def _window_rows(report: WatchReport) -> list[dict[str, object]]:
    o, t = report.observation, report.target
    rows = [
        _row("requests finished", str(o.requests)),
        _row("QPS (mean / peak interval)", f"{o.qps:.3g} / {o.qps_peak:.3g}", f"{t.peak_qps:.3g} peak"),
        _row("replicas (end / mean)", f"{o.replicas} / {o.replicas_mean:.3g}", str(t.replicas)),
        _row("prompt tokens mean/p95", _pair(o.prompt_tokens_mean, o.prompt_tokens_p95), _num(t.prompt_tokens_mean)),
        _row("output tokens mean/p95", _pair(o.output_tokens_mean, o.output_tokens_p95), _num(t.output_tokens_mean)),
    ]  # fmt: skip
    for name, quantiles in (("TTFT", o.ttft_s), ("ITL", o.itl_s), ("E2E", o.e2e_s), ("queue", o.queue_s)):
        for percentile, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            planned = t.predicted_s.get(f"{name.lower()}_{percentile}")
            rows.append(_row(f"{name} {percentile}", _ms(quantiles.get(q)), _ms(planned)))
    rows += [
        _row("KV-cache usage (mean / max)", _pair(o.kv_cache_usage_mean, o.kv_cache_usage_max, pct=True)),
        _row("running (mean, all replicas)", _num(o.running_mean)),
        _row("waiting (mean / max)", _pair(o.waiting_mean, o.waiting_max)),
        _row("preemptions", str(o.preemptions)),
        _row("output tokens/s", _num(o.generation_tokens_per_s)),
        _row("errors (rate)", f"{o.errors} ({_pct(o.error_rate) or 'rate not observed'})"),
        _row("fallback / cloud share", _pct(o.fallback_share)),
        _row("local ratio", _pct(o.local_ratio)),
        _row("schema-valid outputs", _pct(o.schema_valid_ratio)),
        _row("spend per hour", _usd(o.spend_usd_per_hour, "/h"), _usd(t.usd_per_hour, "/h")),
    ]
    return rows


def _pair(first: float | None, second: float | None, *, pct: bool = False) -> str:
    show = _pct if pct else _num
    return f"{show(first) or '–'} / {show(second) or '–'}"


def _bucket(low: float, high: float) -> str:
    upper = "+Inf" if math.isinf(high) else f"{high * 1000:g}"
    return f"({low * 1000:g}, {upper}] ms"


def _compliance_rows(report: WatchReport) -> list[dict[str, object]]:
    histograms = report.observation.histograms
    rows: list[dict[str, object]] = []
    for row in report.compliance:
        buckets = histograms.get(row.metric)
        bucket = quantile_bucket(row.quantile, buckets) if buckets and row.observed_s is not None else None
        rows.append(
            {
                "slo": f"p{row.quantile * 100:g} {row.metric.upper()}",
                "target": _ms(row.target_s),
                "observed": _ms(row.observed_s) or "not observed",
                "bucket": None if bucket is None else _bucket(*bucket),
                "met": "? undecided" if row.met is None and row.observed_s is not None else _mark(row.met),
                "bad": _pct(row.bad_fraction),
                "burn": None if row.burn_rate is None else f"{row.burn_rate:.2f}x",
            }
        )
    return rows


def _gate_result(gate: GateResult) -> str:
    if gate.passed is None:
        state = "undecided" if gate.observed is not None else "not observed"
        return (
            f"✗ {state} (required)"
            if gate.required
            else ("? undecided" if gate.observed is not None else "– skipped")
        )
    return "✓ pass" if gate.passed else "✗ FAIL"


def _gate_rows(report: WatchReport) -> list[dict[str, object]]:
    return [
        {
            "gate": gate.name,
            "result": _gate_result(gate),
            "observed": _num(gate.observed),
            "threshold": _num(gate.threshold),
            "required": gate.required,
            "reason": gate.reason,
        }
        for gate in report.gates
    ]


def _efficiency_rows(report: WatchReport) -> list[dict[str, object]]:
    e = report.efficiency
    if e is None:
        return []
    rows: list[dict[str, object]] = [
        {"item": "efficiency score (0–100)", "value": f"{e.score:.0f}"},
        {"item": "GPU-hours paid per hour", "value": _num(e.gpu_hours_paid_per_hour)},
        {"item": "GPU-hours needed per hour", "value": _num(e.gpu_hours_needed_per_hour)},
        {"item": "replicas needed (observed peak)", "value": _num(e.replicas_needed)},
        {"item": "$/month paid", "value": _usd(e.usd_per_month_paid)},
        {"item": "$/month needed", "value": _usd(e.usd_per_month_needed)},
        {"item": "engine utilisation", "value": _pct(e.utilisation) or "not observed"},
        {"item": "KV-cache headroom", "value": _pct(e.kv_headroom) or "not observed"},
        {"item": "perf provenance", "value": e.provenance},
    ]
    rows += [{"item": f"  term {name}", "value": _num(value)} for name, value in e.components.items()]
    return rows


def _recommendation_rows(report: WatchReport) -> list[dict[str, object]]:
    best = best_recommendation(report.recommendations)
    return [
        {
            "best": "★" if i == best else "",
            "title": r.title,
            "saving": _usd(r.saving_usd_per_month, "/month"),
            "risk": f"{r.slo_risk}: {r.risk_reason}",
            "detail": r.detail,
        }
        for i, r in enumerate(report.recommendations)
    ]


def _drift_rows(report: WatchReport) -> list[dict[str, object]]:
    d = report.drift
    if d is None:
        return []
    keys = [*d.predicted_s, *(k for k in d.observed_s if k not in d.predicted_s)]
    return [
        {
            "latency": key,
            "predicted": _ms(d.predicted_s.get(key)),
            "observed": _ms(d.observed_s.get(key)),
            "error": None if d.error_pct.get(key) is None else f"{d.error_pct[key]:+.1f} %",
        }
        for key in keys
    ]


def _drift_caption(report: WatchReport) -> str | None:
    d = report.drift
    if d is None:
        return None
    if not d.drifted:
        return f"within ±{d.threshold_pct:g} %: no drift"
    stored = (
        f"; stored {d.stored_rows} measured row(s) as {d.source!r} (refit: servewise calibrate --include-observed)"
        if d.stored_rows
        else "; rerun with --store-observed to keep the window as measured rows"
    )
    return f"DRIFTED: some error beyond ±{d.threshold_pct:g} %{stored}"


def render_report(report: WatchReport, fmt: OutputFormat) -> None:
    """Print every section of ``report`` as tables (``fmt`` table or markdown)."""
    t, o = report.target, report.observation

    def section(
        rows: list[dict[str, object]], columns: list[Column], fmt: OutputFormat, **options: Any
    ) -> None:
        render(rows, columns, fmt, **options)
        if fmt is OutputFormat.markdown:
            sys.stdout.write("\n")  # a blank line ends a Markdown table

    header = (
        f"{t.plan_path} option {t.option_rank}: {t.model} {t.precision} on {t.tp}x{t.gpu} x{t.replicas} replicas; "
        f"{o.window_s:.0f} s window from {o.source} ({o.started_at} to {o.ended_at})"
    )
    if fmt is OutputFormat.markdown:
        sys.stdout.write(f"## servewise watch: {header}\n\n")
    else:
        stdout_console().print(f"[bold]{escape(header)}[/]", highlight=False)
    section(
        _window_rows(report),
        [Column("metric", "metric"), Column("observed", "observed", True), Column("plan", "plan", True)],
        fmt,
        title="Window",
    )
    if report.compliance:
        section(
            _compliance_rows(report),
            [
                Column("slo", "SLO"),
                Column("target", "target", True),
                Column("observed", "observed", True),
                Column("bucket", "histogram bucket", True),
                Column("met", "met"),
                Column("bad", "over target", True),
                Column("burn", "burn rate", True),
            ],
            fmt,
            title="SLO compliance",
            caption="observed: Prometheus's interpolation inside the bucket; burn rate = share over target / "
            "(1 − quantile), > 1 spends the error budget too fast",
        )
    section(
        _gate_rows(report),
        [
            Column("gate", "gate"),
            Column("result", "result"),
            Column("observed", "observed", True),
            Column("threshold", "threshold", True),
            Column("required", "required"),
            Column("reason", "reason"),
        ],
        fmt,
        title="Gates",
        caption=verdict(report),
    )
    if report.efficiency is not None:
        section(
            _efficiency_rows(report),
            [Column("item", "efficiency"), Column("value", "value", True)],
            fmt,
            title=f"Efficiency (GPU-hours × ${t.usd_per_gpu_hour:.3g}/GPU-hour × {HOURS_PER_MONTH:g} h/month)",
        )
    section(
        _recommendation_rows(report),
        [
            Column("best", ""),
            Column("title", "recommendation"),
            Column("saving", "saving", True),
            Column("risk", "SLO risk"),
            Column("detail", "detail"),
        ],
        fmt,
        title="Right-sizing (the planner re-run on the observed workload)",
        marked_row=best_recommendation(report.recommendations),
        caption=None if report.recommendations else "no change recommended",
    )
    if report.drift is not None:
        section(
            _drift_rows(report),
            [
                Column("latency", "latency"),
                Column("predicted", "predicted", True),
                Column("observed", "observed", True),
                Column("error", "error", True),
            ],
            fmt,
            title="Drift: perf model at the observed load vs observed",
            caption=_drift_caption(report),
        )
