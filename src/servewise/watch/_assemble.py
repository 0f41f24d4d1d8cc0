"""From window totals and per-interval samples to an ``Observation``: the part both metric sources share (direct
scrape in ``_scrape.py``, PromQL in ``_promql.py``), so the two report the same quantities the same way.

Definitions (docs/watch.md, *Metric sources*):

- ``requests`` = increase of ``vllm:request_success_total`` over the window (every ``finished_reason``); without
  that series, the ``vllm:e2e_request_latency_seconds`` count. ``qps = requests / window_s``.
- ``prompt_tokens_mean`` = increase of ``vllm:prompt_tokens_total`` / requests (likewise output with
  ``vllm:generation_tokens_total``); the p95 lengths come from ``vllm:request_prompt_tokens`` /
  ``vllm:request_generation_tokens`` buckets when the engine exposes them.
- latency quantiles = ``histogram_quantile`` of the window's bucket increases summed over replicas; means =
  increase of the histogram's ``_sum`` / increase of its count.
- ``errors``: with gateway metrics, gateway requests with ``status="error"``, and ``error_rate`` = errors / all
  gateway requests; without them, ``finished_reason`` ``abort`` or ``error`` requests / requests.
- gateway shares: *routed* = requests with status ``ok``, ``error`` or ``cancelled`` (cache hits and budget
  rejections reach no upstream). A route is *local* when the gateway reports it as a pool
  (``servewise_gateway_pool_up{pool=…}``); every other route is a hosted API. ``local_ratio`` = routed to a local
  pool / routed; ``fallback_share`` = (routed to a hosted API, or ``decision="fallback"``) / routed.
- ``schema_valid_ratio`` = ``servewise_gateway_schema_checks_total{result="valid"}`` / all checks, when a gateway
  exports that counter (docs/watch.md); ``None`` otherwise.
- ``spend_usd_per_hour`` = increase of ``servewise_gateway_spend_usd_total`` × 3600 / window_s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._exposition import Buckets, bucket_count, histogram_quantile
from ._observation import LatencyQuantiles, MetricSource, Observation, Sample

__all__ = [
    "GATEWAY_POOL_UP",
    "GATEWAY_REQUESTS",
    "GATEWAY_SCHEMA_CHECKS",
    "GATEWAY_SPEND",
    "GENERATION_TOKENS",
    "HISTOGRAMS",
    "KV_USAGE",
    "KV_USAGE_OLD",
    "LATENCY_HISTOGRAMS",
    "PREEMPTIONS",
    "PROMPT_TOKENS",
    "QUANTILES",
    "REQUEST_SUCCESS",
    "RUNNING",
    "WAITING",
    "GatewayTotals",
    "WindowTotals",
    "assemble_observation",
    "quantiles",
]

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_USAGE = "vllm:kv_cache_usage_perc"
KV_USAGE_OLD = "vllm:gpu_cache_usage_perc"
"""vLLM before V1's rename; read only when ``vllm:kv_cache_usage_perc`` is absent."""
REQUEST_SUCCESS = "vllm:request_success_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PREEMPTIONS = "vllm:num_preemptions_total"
LATENCY_HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
    "queue": "vllm:request_queue_time_seconds",
}
HISTOGRAMS = {
    **LATENCY_HISTOGRAMS,
    "prompt_tokens": "vllm:request_prompt_tokens",
    "output_tokens": "vllm:request_generation_tokens",
}
GATEWAY_REQUESTS = "servewise_gateway_requests_total"
GATEWAY_SPEND = "servewise_gateway_spend_usd_total"
GATEWAY_POOL_UP = "servewise_gateway_pool_up"
GATEWAY_SCHEMA_CHECKS = "servewise_gateway_schema_checks_total"
QUANTILES = (0.5, 0.9, 0.95, 0.99)
_FAILED_REASONS = ("abort", "error")
"""vLLM ``finished_reason`` values of requests that did not complete (the others: stop, length, repetition)."""
_ROUTED = frozenset({"ok", "error", "cancelled"})


@dataclass(frozen=True, slots=True)
class GatewayTotals:
    """The gateway's counters over the window."""

    requests: Mapping[tuple[str, str, str], float]
    """(route, decision, status) → requests."""
    spend_usd: float
    local_pools: frozenset[str]
    schema_checks: Mapping[str, float] = field(default_factory=dict)
    """result (``valid`` / ``invalid``) → checks; empty when the gateway does not validate outputs."""


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Counter and histogram increases over the whole window, summed over replicas (``None``: series absent)."""

    finished_by_reason: Mapping[str, float] | None
    prompt_tokens: float | None
    generation_tokens: float | None
    preemptions: float | None
    histograms: Mapping[str, Buckets]
    """Keys of ``HISTOGRAMS`` with at least one bucket series."""
    histogram_sums: Mapping[str, float]
    """Increase of each histogram's ``_sum`` (seconds or tokens), same keys."""
    kv_cache_usage_max: float | None
    """Highest KV-cache usage of any replica at any reading."""
    model_names: frozenset[str]
    gateway: GatewayTotals | None


def quantiles(buckets: Mapping[float, float] | None) -> LatencyQuantiles:
    """p50/p90/p95/p99 of a histogram (``None`` each without observations)."""
    return {q: (None if not buckets else histogram_quantile(q, buckets)) for q in QUANTILES}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _gateway_figures(
    gateway: GatewayTotals,
) -> tuple[int, float | None, float | None, float | None, float | None]:
    """errors, error_rate, fallback_share, local_ratio, schema_valid_ratio from the gateway's counters."""
    total = sum(gateway.requests.values())
    errors = sum(n for (_, _, status), n in gateway.requests.items() if status == "error")
    routed = {key: n for key, n in gateway.requests.items() if key[2] in _ROUTED and key[0] != "cache"}
    routed_total = sum(routed.values())
    local = sum(n for (route, _, _), n in routed.items() if route in gateway.local_pools)
    fallback = sum(
        n
        for (route, decision, _), n in routed.items()
        if route not in gateway.local_pools or decision == "fallback"
    )
    checks = sum(gateway.schema_checks.values())
    return (
        round(errors),
        errors / total if total > 0 else None,
        fallback / routed_total if routed_total > 0 else None,
        local / routed_total if routed_total > 0 else None,
        gateway.schema_checks.get("valid", 0.0) / checks if checks > 0 else None,
    )


def assemble_observation(
    *,
    source: MetricSource,
    endpoints: Sequence[str],
    started_at: str,
    ended_at: str,
    window_s: float,
    totals: WindowTotals,
    samples: Sequence[Sample],
    warnings: Sequence[str] = (),
) -> Observation:
    """The ``Observation`` of a window (module docstring for each definition)."""
    notes = list(warnings)
    hist = totals.histograms
    if totals.finished_by_reason is not None:
        finished = sum(totals.finished_by_reason.values())
        failed = sum(totals.finished_by_reason.get(reason, 0.0) for reason in _FAILED_REASONS)
    else:
        finished = bucket_count(hist.get("e2e", {}))
        failed = 0.0
        notes.append(f"no {REQUEST_SUCCESS}: requests counted from the e2e latency histogram")
    requests = round(finished)
    if requests == 0:
        notes.append("no request finished in the window: latency percentiles and lengths are not observed")

    def per_request(amount: float | None) -> float | None:
        return amount / finished if amount is not None and finished > 0 else None

    def mean_of(key: str) -> float | None:
        count, total = bucket_count(hist.get(key, {})), totals.histogram_sums.get(key)
        return total / count if total is not None and count > 0 else None

    def p95_of(key: str) -> float | None:
        buckets = hist.get(key)
        return histogram_quantile(0.95, buckets) if buckets and bucket_count(buckets) > 0 else None

    if totals.gateway is not None:
        errors, error_rate, fallback_share, local_ratio, schema_ratio = _gateway_figures(totals.gateway)
        spend_usd: float | None = totals.gateway.spend_usd
    else:
        errors, error_rate = round(failed), (failed / finished if finished > 0 else None)
        fallback_share = local_ratio = schema_ratio = spend_usd = None
        notes.append("no gateway metrics: spend, fallback share and local ratio are not observed")
    if len(totals.model_names) > 1:
        notes.append(
            f"several models served ({', '.join(sorted(totals.model_names))}); their series are summed"
        )
    kv_values = [s.kv_cache_usage_ratio for s in samples if s.kv_cache_usage_ratio is not None]
    return Observation(
        source=source,
        endpoints=tuple(endpoints),
        model_name=min(totals.model_names) if totals.model_names else None,
        started_at=started_at,
        ended_at=ended_at,
        window_s=window_s,
        replicas=samples[-1].replicas if samples else 0,
        replicas_mean=_mean([s.replicas for s in samples]) or 0.0,
        requests=requests,
        qps=finished / window_s if window_s > 0 else 0.0,
        qps_peak=max((s.qps for s in samples), default=0.0),
        prompt_tokens_mean=per_request(totals.prompt_tokens),
        output_tokens_mean=per_request(totals.generation_tokens),
        prompt_tokens_p95=p95_of("prompt_tokens"),
        output_tokens_p95=p95_of("output_tokens"),
        ttft_s=quantiles(hist.get("ttft")),
        itl_s=quantiles(hist.get("itl")),
        e2e_s=quantiles(hist.get("e2e")),
        queue_s=quantiles(hist.get("queue")),
        kv_cache_usage_mean=_mean(kv_values),
        kv_cache_usage_max=totals.kv_cache_usage_max,
        running_mean=_mean([s.running for s in samples]),
        waiting_mean=_mean([s.waiting for s in samples]),
        waiting_max=max((s.waiting for s in samples), default=None),
        preemptions=round(totals.preemptions or 0.0),
        generation_tokens_per_s=(totals.generation_tokens or 0.0) / window_s if window_s > 0 else 0.0,
        errors=errors,
        error_rate=error_rate,
        fallback_share=fallback_share,
        local_ratio=local_ratio,
        spend_usd=spend_usd,
        spend_usd_per_hour=spend_usd * 3600.0 / window_s if spend_usd is not None and window_s > 0 else None,
        schema_valid_ratio=schema_ratio,
        samples=tuple(samples),
        warnings=tuple(notes),
        histograms={key: dict(sorted(b.items())) for key, b in hist.items() if not _empty(b)},
        ttft_mean_s=mean_of("ttft"),
        itl_mean_s=mean_of("itl"),
        e2e_mean_s=mean_of("e2e"),
    )


def _empty(buckets: Mapping[float, float]) -> bool:
    return not buckets or all(math.isnan(v) for v in buckets.values())
