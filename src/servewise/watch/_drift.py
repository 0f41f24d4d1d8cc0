"""Drift: the perf model re-run at the observed load, against what the window measured (docs/watch.md, *Drift and
recalibration*).

**Prediction.** The deployed replica (``_rightsize_replica``: plan's engine, packaged calibration) receives Poisson
arrivals at the observed mean rate per replica, λ_r = observed QPS / R̄, with the observed lengths; the scheduler
simulation runs ``DRIFT_REQUESTS`` requests (the first 10 % warm the engine up, as ``predict --qps``).

**Like with like.** The observed percentiles are ``histogram_quantile`` of vLLM's buckets (linear inside a bucket),
and vLLM's buckets are coarse where SLOs live: TTFT (0.1, 0.25] s, inter-token latency (0.01, 0.025] s. A raw
prediction of 108 ms against an observed "175 ms" (the bucket's interpolation) would read as 38 % drift where the
histogram cannot tell the two apart. So the simulated requests are counted into the *same* buckets (vLLM's, as the
simulator exposes them) and read with the same ``histogram_quantile``:

    predicted_q = histogram_quantile(q, {le: Σ weight of simulated values ≤ le})      (TTFT, ITL, E2E)
    error %     = (predicted − observed) / observed × 100,  when the window finished ≥ 2 / (1 − q) requests
    drifted     = any |error %| > threshold (default 25 %)

The request floor (4 for p50, 40 for p95) keeps noise out of the verdict: with fewer requests a p95 is the window's
slowest one or two, and a single slow request is not drift. Below it the error is ``None``; both values still show.

ITL is token-weighted on both sides (vLLM observes every inter-token gap).

**Measured rows.** A drifted window can be stored as one measured benchmark row per observation (the columns of
``calibration.csv``, written by ``bench.save_points``: one transaction, all or nothing), so that
``servewise calibrate --include-observed`` fits on it. A row describes a closed-loop benchmark; the window is open
loop, so it is mapped as follows (assumptions, also in the docs):

    concurrency  = round((running_mean + waiting_mean) / R̄)   requests in flight per replica (Little's law;
                   λ_r · E2E_mean when the gauges are missing), at least 1
    isl, osl     = round(mean length / 0.9)                    the benchmark draws lengths from [0.8·len, len],
                                                               so these nominal lengths have the observed means
    ttft_ms      = mean TTFT (histogram sum / count; p50 when the mean is not observed)
    tpot_ms      = mean inter-token latency (token-weighted; p50 when the mean is not observed)
    source       = ``watch:<endpoints> <window end>``, model/system/tp/precision/backend of the deployment
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

import numpy as np

from servewise.bench import MeasuredPoint, SystemUnderTest, benchmark_csv_rows, save_points
from servewise.catalog import CatalogSnapshot
from servewise.errors import UsageError
from servewise.perf import DEFAULT_OPEN_LOOP_REQUESTS, CalibrationTable, SimResult

from ._exposition import histogram_quantile
from ._observation import Drift, LatencyQuantiles, Observation, WatchTarget
from ._rightsize_observed import observed_workload
from ._rightsize_replica import catalog_snapshot, replica_model

__all__ = [
    "DRIFT_KEYS",
    "DRIFT_REQUESTS",
    "bucketed_quantile",
    "drift",
    "drift_errors",
    "min_requests",
    "observed_benchmark_rows",
    "store_observed_rows",
    "watch_source",
]

DRIFT_REQUESTS = DEFAULT_OPEN_LOOP_REQUESTS
"""Simulated requests per drift prediction (``servewise predict --qps``'s default)."""
DRIFT_KEYS = ("ttft_p50", "ttft_p95", "itl_p50", "itl_p95", "e2e_p50", "e2e_p95")
_MEAN_LENGTH_RATIO = 0.9
"""Mean of a benchmark's [0.8·len, len] length draws over len (``perf._benchpoint.RANGE_RATIO`` = 0.8)."""


def bucketed_quantile(
    values: np.ndarray, weights: np.ndarray, q: float, bounds: Sequence[float]
) -> float | None:
    """The ``q``-quantile of weighted ``values`` as a Prometheus histogram with upper bounds ``bounds`` reports it."""
    mask = np.isfinite(values) & (weights > 0)
    values, weights = values[mask], weights[mask]
    if values.size == 0:
        return None
    buckets = {float(b): float(weights[values <= b].sum()) for b in bounds}
    buckets[math.inf] = float(weights.sum())
    return histogram_quantile(q, buckets)


def _predicted(result: SimResult) -> dict[str, float | None]:
    from servewise.simulator._metrics import (
        REQUEST_BUCKETS_S,
        TOKEN_BUCKETS_S,
        TTFT_BUCKETS_S,
    )  # vLLM's buckets

    series = {
        "ttft": (result.ttft_s, result.weight, TTFT_BUCKETS_S),
        "itl": (result.itl_s, result.itl_weight, TOKEN_BUCKETS_S),
        "e2e": (result.e2e_s, result.weight, REQUEST_BUCKETS_S),
    }
    out: dict[str, float | None] = {}
    for key in DRIFT_KEYS:
        metric, percentile = key.split("_")
        values, weights, bounds = series[metric]
        out[key] = bucketed_quantile(values, weights, float(percentile[1:]) / 100.0, bounds)
    return out


def _observed(observation: Observation) -> dict[str, float | None]:
    series: dict[str, LatencyQuantiles] = {
        "ttft": observation.ttft_s,
        "itl": observation.itl_s,
        "e2e": observation.e2e_s,
    }
    out: dict[str, float | None] = {}
    for key in DRIFT_KEYS:
        metric, percentile = key.split("_")
        q = float(percentile[1:]) / 100.0
        out[key] = next((v for k, v in series[metric].items() if abs(k - q) < 1e-9), None)
    return out


def min_requests(quantile: float) -> int:
    """Finished requests a window needs before its ``quantile`` is compared: 2 / (1 − q) (module docstring)."""
    return math.ceil(2.0 / (1.0 - quantile) - 1e-9)


def drift_errors(
    predicted: dict[str, float | None], observed: dict[str, float | None], *, requests: int | None = None
) -> dict[str, float | None]:
    """(predicted − observed) / observed × 100 per key; None where either side is missing, observed is 0, or the
    window's ``requests`` are too few for the quantile (``min_requests``; not checked when ``requests`` is None)."""
    errors: dict[str, float | None] = {}
    for key in DRIFT_KEYS:
        p, o = predicted.get(key), observed.get(key)
        quantile = float(key.split("_p")[1]) / 100.0
        too_few = requests is not None and requests < min_requests(quantile)
        errors[key] = None if p is None or o is None or not o > 0 or too_few else (p - o) / o * 100.0
    return errors


def watch_source(observation: Observation) -> str:
    """The ``source`` of the rows a window stores: ``watch:<endpoint>[,<endpoint>…] <window end, ISO>``."""
    return f"watch:{','.join(observation.endpoints)} {observation.ended_at}"


def drift(
    target: WatchTarget,
    observation: Observation,
    *,
    threshold_pct: float = 25.0,
    catalog: CatalogSnapshot | None = None,
    calibration: CalibrationTable | None = None,
) -> Drift:
    """Predicted vs observed p50/p95 TTFT, ITL and E2E at the observed load (module docstring). Nothing is stored
    here (``stored_rows`` = 0): ``store_observed_rows`` does that. A window without finished requests has nothing
    to compare (every error None, not drifted)."""
    if not (threshold_pct > 0 and math.isfinite(threshold_pct)):
        raise UsageError(f"the drift threshold must be a positive percentage (got {threshold_pct}); e.g. 25")
    observed = _observed(observation)
    predicted: dict[str, float | None] = dict.fromkeys(DRIFT_KEYS)
    if observation.requests > 0 and observation.qps > 0 and observation.replicas_mean > 0:
        workload = observed_workload(target, observation)
        replica = replica_model(target, workload, catalog_snapshot(catalog), calibration=calibration)
        per_replica = observation.qps / observation.replicas_mean
        predicted = _predicted(replica.run(per_replica, requests=DRIFT_REQUESTS))
    errors = drift_errors(predicted, observed, requests=observation.requests)
    drifted = any(e is not None and abs(e) > threshold_pct for e in errors.values())
    return Drift(
        predicted_s=predicted,
        observed_s=observed,
        error_pct=errors,
        threshold_pct=threshold_pct,
        drifted=drifted,
        stored_rows=0,
        source=watch_source(observation),
    )


def _measured_on(iso: str) -> date | None:
    try:
        return datetime.fromisoformat(iso).date()
    except ValueError:
        return None


def observed_benchmark_rows(
    target: WatchTarget, observation: Observation, source: str
) -> list[dict[str, str]]:
    """The window as ``calibration.csv`` rows (one row; the mapping is in the module docstring).

    Raises ``UsageError`` when the window cannot make a row: no finished request, no TTFT or ITL, no lengths."""
    observed = _observed(observation)
    ttft_s = observation.ttft_mean_s if observation.ttft_mean_s is not None else observed["ttft_p50"]
    itl_s = observation.itl_mean_s if observation.itl_mean_s is not None else observed["itl_p50"]
    e2e_s = observation.e2e_mean_s if observation.e2e_mean_s is not None else observed["e2e_p50"]
    prompt, output = observation.prompt_tokens_mean, observation.output_tokens_mean
    checks = (
        ("TTFT", ttft_s),
        ("inter-token latency", itl_s),
        ("prompt length", prompt),
        ("output length", output),
    )
    missing = [name for name, value in checks if value is None or not value > 0]
    if observation.requests <= 0 or observation.replicas_mean <= 0:
        missing.insert(0, "finished requests")
    if missing:
        raise UsageError(
            f"the window cannot be stored as a measured row: no {', '.join(missing)} observed; watch a window "
            "with traffic"
        )
    assert ttft_s is not None and itl_s is not None and prompt is not None and output is not None
    if observation.running_mean is not None:
        in_flight = (observation.running_mean + (observation.waiting_mean or 0.0)) / observation.replicas_mean
    else:
        in_flight = observation.qps / observation.replicas_mean * (e2e_s or 0.0)
    stamp = "".join(ch for ch in observation.ended_at if ch.isalnum())
    point = MeasuredPoint(
        isl=max(1, round(prompt / _MEAN_LENGTH_RATIO)),
        osl=max(2, round(output / _MEAN_LENGTH_RATIO)),
        concurrency=max(1, round(in_flight)),
        ttft_ms=ttft_s * 1000.0,
        tpot_ms=itl_s * 1000.0,
        row_id=f"servewise-watch-{stamp}",
        measured_on=_measured_on(observation.ended_at),
    )
    system = SystemUnderTest(target.model, target.gpu, target.tp, target.precision, target.backend)
    return benchmark_csv_rows(system, [point], source=source)


def store_observed_rows(
    target: WatchTarget, observation: Observation, *, db_url: str | None = None, source: str | None = None
) -> int:
    """Write the window's measured row(s) into the catalog's benchmarks (``db_url`` or ``SERVEWISE_DB_URL``) in one
    transaction; returns how many. ``source`` defaults to ``watch_source(observation)``. Raises ``UsageError``
    (nothing written) when the window cannot make a row, ``CatalogError`` when the catalog refuses it."""
    rows = observed_benchmark_rows(target, observation, source or watch_source(observation))
    return save_points(rows, db_url=db_url)
