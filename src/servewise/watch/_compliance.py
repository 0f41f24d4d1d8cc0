"""SLO compliance: each SLO of the plan's workload, observed vs target, with how fast the error budget burns.

For an SLO "the q-quantile of metric m ≤ T" (e.g. p95 TTFT ≤ 150 ms) over the window::

    observed     = histogram_quantile(q, buckets_m)                  (Prometheus interpolation)
    met          = observed ≤ T
    bad_fraction = share of observations above T                     (``fraction_above``, interpolated in the bucket)
    burn_rate    = bad_fraction / (1 − q)

The SLO allows a share ``1 − q`` of observations above the target (its error budget): a burn rate of 1 spends the
budget exactly at the SLO's pace, 2 twice as fast (Google SRE workbook, "Alerting on SLOs"). The bad fraction is a
share of *requests* for TTFT and E2E, and of *token gaps* for ITL (vLLM observes ITL once per output token).

``observed`` is read the way Prometheus does (what a ``histogram_quantile(…) > target`` alert would show), but
``met`` is only what the histogram knows for certain (``bucket_verdict``): the quantile lies in one bucket
``(lower, upper]``, so the SLO is met when ``upper ≤ T``, missed when ``lower ≥ T`` and **undecided** (``met`` is
``None`` while ``observed`` is not) when ``T`` is strictly inside the bucket. vLLM's TTFT buckets jump from 100 to
250 ms: with a 150 ms target and every request at 110–140 ms, the interpolation reads ~240 ms and would fail a
deployment that meets its SLO; with every request at 240 ms it would be right. The buckets cannot tell these apart,
so neither do we; ``resolution_notes`` says so with the range the histogram does know, and a gate can opt into the
interpolated reading (``inside_bucket: interpolate``, docs/watch.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._exposition import fraction_above, quantile_bucket
from ._observation import Observation, SloCompliance, WatchTarget

__all__ = [
    "PERCENTILE_QUANTILES",
    "SLO_METRICS",
    "bucket_verdict",
    "certain_misses",
    "resolution_notes",
    "slo_compliance",
    "split_slo_key",
]

SLO_METRICS = ("ttft", "itl", "e2e")
PERCENTILE_QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def split_slo_key(key: str) -> tuple[str, float] | None:
    """``"ttft_p95"`` → ``("ttft", 0.95)``; ``None`` for a key that is not metric_percentile."""
    metric, _, percentile = key.partition("_")
    quantile = PERCENTILE_QUANTILES.get(percentile)
    return (metric, quantile) if metric in SLO_METRICS and quantile is not None else None


def _order(key: str) -> tuple[int, float]:
    parsed = split_slo_key(key)
    return (SLO_METRICS.index(parsed[0]), parsed[1]) if parsed else (len(SLO_METRICS), 0.0)


def bucket_verdict(
    quantile: float, target_s: float, observed_s: float | None, buckets: Mapping[float, float] | None
) -> bool | None:
    """Whether the ``quantile`` is ≤ ``target_s`` as far as the histogram knows (module docstring): ``None`` when
    not observed or when the target lies strictly inside the bucket holding the quantile. Without buckets (a source
    that gave only the quantile) the observed value decides."""
    if observed_s is None:
        return None
    bucket = quantile_bucket(quantile, buckets) if buckets else None
    if bucket is None:
        return observed_s <= target_s
    lower, upper = bucket
    if upper <= target_s:
        return True
    if lower >= target_s:
        return False
    return None


def _series(observation: Observation, metric: str) -> Mapping[float, float | None]:
    return {"ttft": observation.ttft_s, "itl": observation.itl_s, "e2e": observation.e2e_s}.get(
        metric, observation.queue_s
    )


def certain_misses(target: WatchTarget, observation: Observation) -> list[SloCompliance]:
    """The SLO rows the histogram says for certain were missed (``bucket_verdict`` is False)."""
    return [row for row in slo_compliance(target, observation) if row.met is False]


def slo_compliance(target: WatchTarget, observation: Observation) -> tuple[SloCompliance, ...]:
    """One row per SLO target of the plan (TTFT, ITL, E2E; by percentile), in that order."""
    rows = []
    for key in sorted(target.slo_targets_s, key=_order):
        parsed = split_slo_key(key)
        if parsed is None:
            continue
        metric, quantile = parsed
        target_s = target.slo_targets_s[key]
        observed = _series(observation, metric).get(quantile)
        buckets = observation.histograms.get(metric)
        bad = fraction_above(target_s, buckets) if buckets else None
        rows.append(
            SloCompliance(
                metric=metric,
                quantile=quantile,
                target_s=target_s,
                observed_s=observed,
                met=bucket_verdict(quantile, target_s, observed, buckets),
                bad_fraction=bad,
                burn_rate=None if bad is None else bad / (1.0 - quantile),
            )
        )
    return tuple(rows)


def _ms(seconds: float) -> str:
    return "+Inf" if seconds == float("inf") else f"{seconds * 1000:g} ms"


def resolution_notes(compliance: tuple[SloCompliance, ...], observation: Observation) -> list[str]:
    """One warning per SLO whose target lies strictly inside the histogram bucket holding the observed quantile:
    there, met / not met is the interpolation's guess."""
    notes = []
    for row in compliance:
        buckets = observation.histograms.get(row.metric)
        observed = row.observed_s
        bucket = quantile_bucket(row.quantile, buckets) if buckets and observed is not None else None
        if observed is None or bucket is None or not bucket[0] < row.target_s < bucket[1]:
            continue
        name = f"p{row.quantile * 100:g} {row.metric.upper()}"
        notes.append(
            f"{name}: the histogram places it in ({_ms(bucket[0])}, {_ms(bucket[1])}], a bucket that holds the "
            f"{_ms(row.target_s)} target; the {observed * 1000:.4g} ms shown is Prometheus's linear "
            "interpolation, so the SLO is undecided (a bucket bound at the target would decide it)"
        )
    return notes
