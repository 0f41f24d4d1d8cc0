"""Read a GuideLLM benchmark report (``guidellm benchmark … --output-path benchmarks.json``).

The fields read, and only these (GuideLLM's pydantic report models, ``src/guidellm/benchmark/benchmark.py`` up to
v0.3 and ``src/guidellm/benchmark/schemas/`` from v0.4, github.com/vllm-project/guidellm):

* ``benchmarks[]`` — one entry per strategy run.
* the strategy: ``benchmarks[].config.strategy`` (v0.4+) or ``benchmarks[].args.strategy`` (≤ v0.3), an object with
  ``type_`` (``synchronous``, ``concurrent``, ``throughput``, ``constant``, ``poisson``), ``streams`` (concurrent)
  and ``rate`` (constant, poisson). Synchronous is one client (concurrency 1), concurrent is ``streams`` clients;
  the others are open loop and have no concurrency.
* the model, when the report names it: ``config.backend.model`` (v0.4+) or ``worker.backend_model`` (≤ v0.3).
* when it ran: ``start_time`` (Unix seconds) of the benchmark, of ``run_stats`` (≤ v0.3) or of
  ``scheduler_metrics`` (v0.4+), as the rows' ``measured_date`` (UTC).
* ``benchmarks[].metrics.<name>.successful`` for ``time_to_first_token_ms``, ``inter_token_latency_ms``,
  ``time_per_output_token_ms``, ``request_latency`` (seconds), ``prompt_token_count``, ``output_token_count``,
  ``requests_per_second``, ``output_tokens_per_second``: each a distribution summary with ``mean``, ``median``,
  ``count`` and ``percentiles.{p50,p90,p95,p99}``.

Meanings differ from ``servewise bench``'s names: GuideLLM's ``inter_token_latency_ms`` is (last token − first
token) / (output tokens − 1) per request — what vLLM and ``servewise bench`` call TPOT, and what the benchmark
table's ``tpot_ms`` holds; its ``time_per_output_token_ms`` divides by all output tokens and is not used for rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from servewise.errors import UsageError

from ._save import MeasuredPoint

__all__ = ["GuideLLMBenchmark", "guidellm_points", "read_guidellm_report"]

_HINT = "expected GuideLLM's benchmarks.json (`guidellm benchmark … --output-path benchmarks.json`)"
_STATS = ("mean", "p50", "p90", "p95", "p99")


@dataclass(frozen=True, slots=True)
class GuideLLMBenchmark:
    """One benchmark of a GuideLLM report, in ``servewise bench``'s flat names (ms, tokens, per second)."""

    index: int
    strategy: str
    concurrency: int | None
    rate_rps: float | None
    model: str | None
    successful: int
    measured_on: date | None
    values: dict[str, float | None]
    """``ttft_<stat>_ms``, ``tpot_<stat>_ms`` (GuideLLM's ITL), ``e2e_<stat>_ms``, ``mean_prompt_tokens``,
    ``mean_output_tokens``, ``requests_per_s``, ``output_tokens_per_s`` (None when absent)."""

    @property
    def label(self) -> str:
        if self.concurrency is not None:
            return f"{self.strategy} (concurrency {self.concurrency})"
        if self.rate_rps is not None:
            return f"{self.strategy} {self.rate_rps:g} req/s"
        return self.strategy


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _summary(metrics: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    entry = metrics.get(name)
    if not isinstance(entry, Mapping):
        return {}
    successful = entry.get("successful")
    return successful if isinstance(successful, Mapping) else {}


def _stat(summary: Mapping[str, Any], stat: str, scale: float = 1.0) -> float | None:
    if stat == "mean":
        value = _number(summary.get("mean"))
    else:
        percentiles = summary.get("percentiles")
        value = _number(percentiles.get(stat)) if isinstance(percentiles, Mapping) else None
        if value is None and stat == "p50":
            value = _number(summary.get("median"))
    return None if value is None else value * scale


def _dig(document: Mapping[str, Any], *path: str) -> Any:
    node: Any = document
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _benchmark(index: int, raw: Mapping[str, Any], path: Path) -> GuideLLMBenchmark:
    strategy = _dig(raw, "config", "strategy") or _dig(raw, "args", "strategy")
    metrics = raw.get("metrics")
    if not isinstance(strategy, Mapping) or not isinstance(metrics, Mapping):
        raise UsageError(f"{path}: benchmarks[{index}] has no strategy or no metrics; {_HINT}")
    kind = str(strategy.get("type_") or strategy.get("type") or "unknown")
    concurrency: int | None = None
    if kind == "synchronous":
        concurrency = 1
    elif kind == "concurrent":
        streams = _number(strategy.get("streams"))
        concurrency = int(streams) if streams is not None and streams >= 1 else None
    rate = _number(strategy.get("rate"))
    model = _dig(raw, "config", "backend", "model") or _dig(raw, "worker", "backend_model")
    values: dict[str, float | None] = {}
    for ours, theirs, scale in (
        ("ttft", "time_to_first_token_ms", 1.0),
        ("tpot", "inter_token_latency_ms", 1.0),
        ("e2e", "request_latency", 1000.0),
    ):
        summary = _summary(metrics, theirs)
        for stat in _STATS:
            values[f"{ours}_{stat}_ms"] = _stat(summary, stat, scale)
    values["mean_prompt_tokens"] = _stat(_summary(metrics, "prompt_token_count"), "mean")
    values["mean_output_tokens"] = _stat(_summary(metrics, "output_token_count"), "mean")
    values["requests_per_s"] = _stat(_summary(metrics, "requests_per_second"), "mean")
    values["output_tokens_per_s"] = _stat(_summary(metrics, "output_tokens_per_second"), "mean")
    count = _number(_summary(metrics, "time_to_first_token_ms").get("count"))
    for totals in (_dig(metrics, "request_totals", "successful"), _dig(raw, "total_count", "successful")):
        if _number(totals) is not None:
            count = _number(totals)
            break
    started = next(
        (
            t
            for t in (
                _number(raw.get("start_time")),
                _number(_dig(raw, "run_stats", "start_time")),
                _number(_dig(raw, "scheduler_metrics", "start_time")),
            )
            if t is not None and t > 0
        ),
        None,
    )
    return GuideLLMBenchmark(
        index=index,
        strategy=kind,
        concurrency=concurrency,
        rate_rps=rate,
        model=str(model) if model else None,
        successful=int(count or 0),
        measured_on=datetime.fromtimestamp(started, UTC).date() if started is not None else None,
        values=values,
    )


def read_guidellm_report(path: Path) -> list[GuideLLMBenchmark]:
    """Every benchmark of the report at ``path``; a one-line ``UsageError`` when it is not such a report."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a folder; give the report's JSON file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is not JSON ({type(err).__name__}); {_HINT}") from None
    benchmarks = document.get("benchmarks") if isinstance(document, Mapping) else None
    if not isinstance(benchmarks, list) or not benchmarks:
        raise UsageError(f"{path} has no `benchmarks` list; {_HINT}")
    return [_benchmark(i, raw if isinstance(raw, Mapping) else {}, path) for i, raw in enumerate(benchmarks)]


def guidellm_points(
    benchmarks: Sequence[GuideLLMBenchmark], *, stamp: datetime
) -> tuple[list[dict[str, Any]], list[MeasuredPoint]]:
    """Each benchmark as a display row (``status`` "ok" or why it is skipped) and the closed-loop ones as points:
    TTFT and TPOT means (GuideLLM's inter-token latency), rounded mean lengths."""
    shown: list[dict[str, Any]] = []
    points: list[MeasuredPoint] = []
    for b in benchmarks:
        v = b.values
        ttft, tpot = v["ttft_mean_ms"], v["tpot_mean_ms"]
        isl = round(v["mean_prompt_tokens"]) if v["mean_prompt_tokens"] else None
        osl = round(v["mean_output_tokens"]) if v["mean_output_tokens"] else None
        status = "ok"
        if b.concurrency is None:
            status = "skipped: open loop (no concurrency)"
        elif not (ttft and tpot and isl and osl) or b.successful == 0:
            status = "skipped: no successful requests with TTFT, ITL and token counts"
        else:
            row_id = f"guidellm-{stamp.strftime('%Y%m%dT%H%M%S')}-{b.index}"
            points.append(MeasuredPoint(isl, osl, b.concurrency, ttft, tpot, row_id, b.measured_on))
        shown.append(
            {
                "label": b.label,
                "concurrency": b.concurrency,
                "successful": b.successful,
                "isl": isl,
                "osl": osl,
                "ttft_ms": None if ttft is None else round(ttft, 3),
                "tpot_ms": None if tpot is None else round(tpot, 3),
                "measured_on": b.measured_on.isoformat() if b.measured_on else None,
                "status": status,
            }
        )
    return shown, points
