"""Drift: predictions read through vLLM's histogram buckets (by hand), errors, the drifted flag; and the window
stored as a measured benchmark row in a real catalog (SQLite, and PostgreSQL when it answers), all or nothing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from servewise.catalog import BenchmarkRow, open_catalog
from servewise.errors import CatalogError, UsageError
from servewise.perf._calibrate import features_for_rows
from servewise.simulator._metrics import TOKEN_BUCKETS_S, TTFT_BUCKETS_S
from servewise.watch._drift import (
    DRIFT_KEYS,
    DRIFT_REQUESTS,
    _predicted,
    bucketed_quantile,
    drift,
    drift_errors,
    min_requests,
    observed_benchmark_rows,
    store_observed_rows,
    watch_source,
)
from servewise.watch._observation import Observation
from servewise.watch._rightsize_observed import observed_workload
from servewise.watch._rightsize_replica import replica_model

from .analysis_support import observation, snapshot, target


def test_a_bucketed_quantile_is_prometheus_interpolation_by_hand():
    # ten TTFTs of 120 ms all fall in (0.1, 0.25]: p50 = 0.1 + 0.15 × 5/10 = 0.175, p95 = 0.1 + 0.15 × 0.95
    values, weights = np.full(10, 0.12), np.ones(10)
    assert bucketed_quantile(values, weights, 0.5, TTFT_BUCKETS_S) == pytest.approx(0.175)
    assert bucketed_quantile(values, weights, 0.95, TTFT_BUCKETS_S) == pytest.approx(0.2425)
    # weights count, NaN and zero-weight values do not: 3 at 15 ms (weight 3) and 1 at 40 ms → p50 in (0.01, 0.025]
    mixed = np.array([0.015, 0.04, math.nan, 0.5])
    w = np.array([3.0, 1.0, 1.0, 0.0])
    assert bucketed_quantile(mixed, w, 0.5, TOKEN_BUCKETS_S) == pytest.approx(0.01 + 0.015 * 2 / 3)
    assert bucketed_quantile(np.array([]), np.array([]), 0.5, TOKEN_BUCKETS_S) is None


def test_errors_by_hand():
    predicted = {
        "ttft_p50": 0.15,
        "ttft_p95": 0.2,
        "itl_p50": None,
        "itl_p95": 0.02,
        "e2e_p50": 4.0,
        "e2e_p95": 5.0,
    }
    observed = {
        "ttft_p50": 0.1,
        "ttft_p95": 0.25,
        "itl_p50": 0.01,
        "itl_p95": 0.0,
        "e2e_p50": 4.0,
        "e2e_p95": None,
    }
    errors = drift_errors(predicted, observed)
    assert errors["ttft_p50"] == pytest.approx(50.0) and errors["ttft_p95"] == pytest.approx(-20.0)
    assert errors["e2e_p50"] == 0.0
    assert errors["itl_p50"] is None and errors["itl_p95"] is None and errors["e2e_p95"] is None
    # a window of 39 requests is too few to judge a p95 (the floor is 2 / (1 − 0.95) = 40), enough for a p50 (4)
    assert (min_requests(0.5), min_requests(0.95)) == (4, 40)
    few = drift_errors(predicted, observed, requests=39)
    assert few["ttft_p95"] is None and few["ttft_p50"] == pytest.approx(50.0)
    assert drift_errors(predicted, observed, requests=40)["ttft_p95"] == pytest.approx(-20.0)
    assert set(drift_errors(predicted, observed, requests=3).values()) == {None}


def test_the_prediction_is_the_deployed_replica_at_the_observed_rate_per_replica():
    t = target()
    o = observation(qps=2.0, replicas=2)
    d = drift(t, o, catalog=snapshot())
    replica = replica_model(t, observed_workload(t, o), snapshot())
    expected = _predicted(replica.run(1.0, requests=DRIFT_REQUESTS))  # 2 req/s over 2 replicas
    assert d.predicted_s == expected and set(d.predicted_s) == set(DRIFT_KEYS)
    assert d.observed_s["ttft_p95"] == 0.14 and d.observed_s["itl_p50"] == 0.014
    assert d.error_pct == drift_errors(d.predicted_s, d.observed_s)
    assert d.stored_rows == 0 and d.source == watch_source(o)


def test_observed_latencies_the_model_reproduces_do_not_drift_and_doubled_ones_do():
    t = target()
    o = observation(qps=2.0, replicas=2)
    predicted = drift(t, o, catalog=snapshot()).predicted_s
    assert all(v is not None for v in predicted.values())

    def pair(metric: str, scale: float) -> tuple[float, float]:
        p50, p95 = predicted[f"{metric}_p50"], predicted[f"{metric}_p95"]
        assert p50 is not None and p95 is not None
        return p50 * scale, p95 * scale

    def scaled(scale: float) -> Observation:
        return observation(
            qps=2.0, replicas=2, ttft=pair("ttft", scale), itl=pair("itl", scale), e2e=pair("e2e", scale)
        )

    same = drift(t, scaled(1.0), catalog=snapshot())
    assert not same.drifted and all(abs(e) < 1e-9 for e in same.error_pct.values() if e is not None)
    doubled = drift(t, scaled(2.0), catalog=snapshot())
    assert doubled.drifted and doubled.error_pct["ttft_p95"] == pytest.approx(-50.0)
    lenient = drift(t, scaled(2.0), threshold_pct=60.0, catalog=snapshot())
    assert not lenient.drifted and lenient.threshold_pct == 60.0


def test_a_window_without_requests_has_nothing_to_compare():
    d = drift(target(), observation(qps=0.0), catalog=snapshot())
    assert not d.drifted and set(d.error_pct.values()) == {None} and set(d.predicted_s.values()) == {None}


@pytest.mark.parametrize("threshold", [0.0, -5.0, math.inf, math.nan])
def test_a_bad_threshold_is_a_usage_error(threshold):
    with pytest.raises(UsageError, match="drift threshold"):
        drift(target(), observation(), threshold_pct=threshold, catalog=snapshot())


def test_a_window_maps_to_one_calibration_row_by_hand():
    t = target()  # Llama-3.1-8B fp8 on 4xL4
    o = observation(qps=2.0, replicas=2, running_mean=6.0, waiting_mean=2.0, means=(0.11, 0.0155, 4.1))
    (row,) = observed_benchmark_rows(t, o, "watch:test")
    assert (row["model"], row["system"], row["tp"], row["gpu_count"], row["precision"], row["backend"]) == (
        "Llama-3.1-8B",
        "L4",
        "4",
        "4",
        "fp8",
        "vllm",
    )
    # in flight per replica (6 + 2) / 2 = 4; nominal lengths 512 / 0.9 = 568.9 → 569 and 256 / 0.9 = 284.4 → 284
    assert (row["concurrency"], row["isl"], row["osl"]) == ("4", "569", "284")
    assert float(row["ttft_ms"]) == pytest.approx(110.0) and float(row["tpot_ms"]) == pytest.approx(15.5)
    assert row["source"] == "watch:test" and row["measured_date"] == "2026-11-25"
    assert row["source_row_id"] == "servewise-watch-20261125T100200Z" and row["mode"] == "agg"


def test_without_means_the_row_falls_back_to_p50_and_littles_law():
    o = observation(qps=2.0, replicas=2, ttft=(0.09, 0.14), itl=(0.014, 0.018), e2e=(3.8, 4.6))
    o = dataclasses.replace(o, running_mean=None)
    (row,) = observed_benchmark_rows(target(), o, "watch:test")
    # 1 req/s per replica × E2E p50 3.8 s = 3.8 → 4 in flight
    assert row["concurrency"] == "4" and float(row["ttft_ms"]) == pytest.approx(90.0)
    assert float(row["tpot_ms"]) == pytest.approx(14.0)


def test_a_window_without_traffic_cannot_be_a_row():
    with pytest.raises(UsageError, match="cannot be stored as a measured row: no finished requests"):
        observed_benchmark_rows(target(), observation(qps=0.0), "watch:test")


def _stored(db_url: str, source: str) -> list[BenchmarkRow]:
    with open_catalog(db_url) as catalog:
        return [row for row in catalog.benchmarks(model="Llama-3.1-8B") if row.source == source]


def test_stored_rows_land_in_the_catalog_and_can_be_simulated(sqlite_url):
    t = target()
    o = observation(qps=2.0, replicas=2, means=(0.11, 0.0155, 4.1))
    assert store_observed_rows(t, o, db_url=sqlite_url) == 1
    (row,) = _stored(sqlite_url, watch_source(o))
    assert row.system == "L4" and row.tp == 4 and row.ttft_ms == pytest.approx(110.0)
    assert row.source.startswith("watch:http://10.0.0.5:8000/metrics,http://10.0.0.6:8000/metrics ")
    with open_catalog(sqlite_url) as catalog:
        models, gpus, aliases = (
            tuple(catalog.models()),
            tuple(catalog.accelerators()),
            tuple(catalog.aliases()),
        )
    features, skipped = features_for_rows([row], models, gpus, aliases)
    assert len(features) == 1 and skipped == []


def test_a_row_the_catalog_refuses_writes_nothing(sqlite_url):
    t = target()
    absurd = observation(qps=2.0, replicas=2, running_mean=1e13)  # concurrency beyond the database's integers
    with pytest.raises(CatalogError, match=r"column concurrency.*INTEGER range"):
        store_observed_rows(t, absurd, db_url=sqlite_url, source="watch:absurd")
    assert _stored(sqlite_url, "watch:absurd") == []
    with pytest.raises(UsageError):
        store_observed_rows(t, observation(qps=0.0), db_url=sqlite_url, source="watch:idle")
    assert _stored(sqlite_url, "watch:idle") == []


@pytest.mark.postgres
def test_stored_rows_in_postgresql(postgres_url):
    o = observation(qps=2.0, replicas=2, means=(0.11, 0.0155, 4.1))
    assert store_observed_rows(target(), o, db_url=postgres_url, source="watch:pg") == 1
    (row,) = _stored(postgres_url, "watch:pg")
    assert row.concurrency == 4 and row.tpot_ms == pytest.approx(15.5)
