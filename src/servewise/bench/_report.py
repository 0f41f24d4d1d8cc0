"""The documents ``servewise bench`` prints: one flat row per level (CSV, JSON) and predicted-vs-measured rows.

Why flat keys (``ttft_p95_ms``, ``output_tokens_per_s``): the same names serve as CSV columns, as JSON fields and
as the keys a prediction is compared on, so "predicted vs measured" is a join on names, not a mapping to keep.

Prediction error is ``(predicted − measured) / measured × 100``: how far the prediction is from what was measured,
positive when the prediction is too high (pessimistic for latencies, optimistic for throughput).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._load import Level
from ._run import DEFAULT_OPEN_LOOP_REQUESTS, REQUESTS_PER_CLIENT, LoadPlan
from ._stats import METRICS, QUANTILES, LevelStats

__all__ = [
    "COMPARED_KEYS",
    "DEFINITIONS",
    "comparison_rows",
    "flat_row",
    "latency_rows",
    "lengths_text",
    "level_document",
    "percent_error",
    "run_assumptions",
    "summary_keys",
]

STATS = (*(f"p{q}" for q in QUANTILES), "mean")
THROUGHPUT_KEYS = ("requests_per_s", "output_tokens_per_s", "total_tokens_per_s")
COMPARED_KEYS = (
    *(f"{metric}_{stat}_ms" for metric, _ in METRICS for stat in ("p50", "p95", "mean")),
    "requests_per_s",
    "output_tokens_per_s",
)
"""What ``--against`` shows, in display order (a key the prediction lacks is left out); the JSON document carries
every predicted percentile."""


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def level_document(level: Level, stats: LevelStats) -> dict[str, Any]:
    """One level as JSON: the load, counts, throughput, latency percentiles in ms and the commonest errors."""
    return {
        "mode": str(level.mode),
        "label": level.label,
        "concurrency": level.concurrency,
        "rate_rps": level.rate_rps,
        "requests": stats.requests,
        "completed": stats.completed,
        "failed": stats.failed,
        "duration_s": _round(stats.duration_s),
        "requests_per_s": _round(stats.requests_per_s, 4),
        "output_tokens_per_s": _round(stats.output_tokens_per_s, 2),
        "total_tokens_per_s": _round(stats.total_tokens_per_s, 2),
        "mean_prompt_tokens": _round(stats.mean_prompt_tokens, 1),
        "mean_output_tokens": _round(stats.mean_output_tokens, 1),
        "latency_ms": {metric: stats.metric(metric).as_dict() for metric, _ in METRICS},
        "errors": [{"message": message, "count": count} for message, count in stats.errors],
    }


def flat_row(document: Mapping[str, Any]) -> dict[str, Any]:
    """A level document as one flat row: the latency table becomes ``<metric>_<stat>_ms`` columns."""
    row = {key: value for key, value in document.items() if key not in ("latency_ms", "errors")}
    for metric, values in document["latency_ms"].items():
        for stat, value in values.items():
            row[f"{metric}_{stat}_ms"] = value
    errors = document.get("errors") or []
    row["first_error"] = errors[0]["message"] if errors else None
    return row


def summary_keys() -> list[str]:
    """The CSV columns, in order."""
    head = ["label", "mode", "concurrency", "rate_rps", "requests", "completed", "failed", "duration_s"]
    tail = ["mean_prompt_tokens", "mean_output_tokens"]
    latency = [f"{metric}_{stat}_ms" for metric, _ in METRICS for stat in STATS]
    return [*head, *THROUGHPUT_KEYS, *tail, *latency, "first_error"]


def latency_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The level's latency table: one row per metric, columns p50 … mean."""
    return [{"metric": label, **document["latency_ms"][metric]} for metric, label in METRICS]


def percent_error(predicted: float | None, measured: float | None) -> float | None:
    """``(predicted − measured) / measured × 100``; None when either is missing or measured is 0."""
    if predicted is None or measured is None or not math.isfinite(predicted) or not math.isfinite(measured):
        return None
    if measured == 0:
        return None
    return round((predicted - measured) / measured * 100.0, 1)


def _key_label(key: str) -> str:
    if key.endswith("_ms"):
        metric, stat = key[:-3].split("_", 1)
        return f"{metric.upper()} {stat} (ms)"
    return {"requests_per_s": "requests/s", "output_tokens_per_s": "output tokens/s"}.get(key, key)


def comparison_rows(
    measured: Mapping[str, Any], predicted: Mapping[str, float | None], *, keys: Sequence[str] = COMPARED_KEYS
) -> list[dict[str, Any]]:
    """Predicted, measured and % error for every key both sides have a number for."""
    rows = []
    for key in keys:
        p, m = predicted.get(key), measured.get(key)
        if p is None or m is None:
            continue
        rows.append(
            {
                "key": key,
                "metric": _key_label(key),
                "predicted": _round(float(p)),
                "measured": _round(float(m)),
                "error_pct": percent_error(float(p), float(m)),
            }
        )
    return rows


DEFINITIONS = (
    "TTFT = first content chunk - send; ITL = gap between consecutive content chunks (first token excluded); "
    "TPOT = (E2E - TTFT) / (output tokens - 1) per request; E2E = last content chunk - send; "
    "output tokens from usage.completion_tokens (vLLM bench serve's conventions, docs/bench.md)"
)
"""One line for the report; the full definitions with their sources are in ``_stats``'s docstring."""


def lengths_text(lengths: Mapping[str, Any]) -> str:
    """``1024 -> 128 tokens (each from [0.8 x len, len])``, or where the lengths came from."""
    if "isl" in lengths:
        ratio = lengths["range_ratio"]
        spread = "" if ratio == 1 else f" (each from [{ratio:g} x len, len])"
        return f"{lengths['isl']} -> {lengths['osl']} tokens{spread}"
    return f"lengths from the {lengths['source']}"


def run_assumptions(plan: LoadPlan, lengths: Mapping[str, Any], *, ignore_eos: bool) -> list[str]:
    """What the run assumed rather than measured, one line each, for the report."""
    out = []
    if plan.requests is None and plan.duration_s is None:
        out.append(
            f"requests per level: {REQUESTS_PER_CLIENT} x concurrency (closed loop) or "
            f"{DEFAULT_OPEN_LOOP_REQUESTS} (Poisson), as the catalog's benchmarks ran; set --requests or --duration"
        )
    defaulted = lengths.get("defaulted") or []
    if lengths.get("from_plan"):
        out.append(
            f"--isl/--osl not given: {lengths['isl']} -> {lengths['osl']} tokens, the mean lengths of "
            f"{lengths['from_plan']}'s workload"
        )
    elif defaulted:
        out.append(
            f"{' and '.join(defaulted)} not given: {lengths['isl']} -> {lengths['osl']} tokens "
            "(vllm bench serve's random-dataset defaults 1024 -> 128)"
        )
    if "isl" in lengths and lengths["range_ratio"] < 1:
        out.append(
            f"each request's lengths are drawn uniformly from [{lengths['range_ratio']:g} x len, len] "
            "(the harness behind the catalog's benchmark rows; what `servewise predict` simulates; "
            "--range-ratio 1 sends exact lengths)"
        )
    out.append(
        "prompts are synthetic words sized by ceil(characters / 4) tokens (the simulator's estimate); a real "
        "tokenizer counts differently and the report uses the server's usage.prompt_tokens"
    )
    if ignore_eos:
        out.append(
            "output length forced with ignore_eos/min_tokens (vLLM extensions; --no-ignore-eos to drop them)"
        )
    return out
