"""Prometheus exposition math against hand-computed numbers: parsing, counter and histogram increases across a
restart, ``histogram_quantile`` (Prometheus's interpolation and edge cases) and the share above a threshold."""

from __future__ import annotations

import math

import pytest

from servewise.watch._exposition import (
    SeriesKey,
    bucket_count,
    counter_increase,
    fraction_above,
    gauge_values,
    histogram_increase,
    histogram_quantile,
    label_values,
    merge_all,
    parse_exposition,
    quantile_bucket,
)

TEXT = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} NaN
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 7.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 1.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 8.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 8.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.5
"""

# le → cumulative count: 2 in (0, 0.1], 4 in (0.1, 0.25], 3 in (0.25, 0.5], 1 above 0.5
BUCKETS = {0.1: 2.0, 0.25: 6.0, 0.5: 9.0, math.inf: 10.0}


def test_parse_keys_series_by_name_and_sorted_labels_and_drops_nan() -> None:
    series = parse_exposition(TEXT)
    assert series[("vllm:num_requests_running", (("engine", "1"), ("model_name", "m")))] == 2.0
    assert gauge_values(series, "vllm:num_requests_running") == [3.0, 2.0]
    assert gauge_values(series, "vllm:kv_cache_usage_perc") == []  # NaN is "no value", not 0
    assert label_values(series, "vllm:num_requests_running", "model_name") == {"m"}
    bucket = (
        "vllm:time_to_first_token_seconds_bucket",
        (("engine", "0"), ("le", "+Inf"), ("model_name", "m")),
    )
    assert series[bucket] == 8.0


def test_text_that_is_not_an_exposition_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not Prometheus text"):
        parse_exposition('{"error": "not found"} this is not metrics')


def _counter(value: float, created: float = 100.0, reason: str = "stop") -> dict[SeriesKey, float]:
    labels = (("finished_reason", reason),)
    return {("x_total", labels): value, ("x_created", labels): created}


def test_counter_increase_is_the_difference_and_groups_by_labels() -> None:
    before = _counter(10) | _counter(4, reason="abort")
    after = _counter(15) | _counter(5, reason="abort")
    assert counter_increase(before, after, "x_total") == {(): 6.0}
    assert counter_increase(before, after, "x_total", by=("finished_reason",)) == {
        ("stop",): 5.0,
        ("abort",): 1.0,
    }
    assert counter_increase(before, after, "x_total", by=("missing",)) == {("",): 6.0}


def test_a_restart_counts_the_new_value_whether_it_dropped_or_its_created_changed() -> None:
    assert counter_increase(_counter(10), _counter(3), "x_total") == {(): 3.0}  # dropped: a restart
    # more than before, but a new process (new _created): everything since the restart is new
    assert counter_increase(_counter(10), _counter(12, created=200.0), "x_total") == {(): 12.0}


def test_a_new_series_counts_from_zero_only_when_born_in_the_interval() -> None:
    born_late = _counter(4, created=150.0)
    assert counter_increase({}, born_late, "x_total", before_time_s=120.0) == {(): 4.0}
    assert counter_increase({}, born_late, "x_total", before_time_s=160.0) == {(): 0.0}  # a baseline
    assert counter_increase({}, born_late, "x_total") == {(): 0.0}


def _histogram(counts: dict[float, float], created: float = 100.0) -> dict[SeriesKey, float]:
    out: dict[SeriesKey, float] = {}
    for le, count in counts.items():
        out[("h_bucket", (("le", "+Inf" if math.isinf(le) else str(le)),))] = count
    out[("h_count", ())] = counts[math.inf]
    out[("h_created", ())] = created
    return out


def test_histogram_increase_per_bucket_and_a_restart_resets_every_bucket() -> None:
    before = _histogram({0.1: 1.0, 0.5: 3.0, math.inf: 4.0})
    after = _histogram({0.1: 3.0, 0.5: 6.0, math.inf: 7.0})
    assert histogram_increase(before, after, "h") == {0.1: 2.0, 0.5: 3.0, math.inf: 3.0}
    restarted = _histogram(
        {0.1: 1.0, 0.5: 4.0, math.inf: 5.0}, created=300.0
    )  # 0.5 bucket grew, +Inf did not
    assert histogram_increase(before, restarted, "h") == {0.1: 1.0, 0.5: 4.0, math.inf: 5.0}
    dropped = _histogram({0.1: 0.0, 0.5: 1.0, math.inf: 1.0})
    assert histogram_increase(before, dropped, "h") == {0.1: 0.0, 0.5: 1.0, math.inf: 1.0}


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # q=0.5: rank 5 falls in (0.1, 0.25] holding 4 (ranks 3..6): 0.1 + 0.15 × (5 − 2) / 4
    assert histogram_quantile(0.5, BUCKETS) == pytest.approx(0.2125)
    assert histogram_quantile(0.1, BUCKETS) == pytest.approx(0.05)  # rank 1 of 2 in (0, 0.1]
    assert histogram_quantile(0.9, BUCKETS) == pytest.approx(0.5)  # rank 9 ends the (0.25, 0.5] bucket
    assert histogram_quantile(0.95, BUCKETS) == 0.5  # in the +Inf bucket: the largest finite bound
    assert histogram_quantile(0.0, BUCKETS) == 0.0
    assert histogram_quantile(1.5, BUCKETS) == math.inf and histogram_quantile(-0.1, BUCKETS) == -math.inf


def test_histogram_quantile_edge_cases_are_none_where_prometheus_says_nan() -> None:
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None  # no observation
    assert histogram_quantile(0.5, {0.1: 2.0, 0.5: 4.0}) is None  # no +Inf bucket
    assert histogram_quantile(0.5, {math.inf: 4.0}) is None  # one bucket only
    assert histogram_quantile(math.nan, BUCKETS) is None
    # non-monotonic counts are made monotonic first: [3, 3, 4]; rank 2 in (0, 0.1] → 0.1 × 2/3
    assert histogram_quantile(0.5, {0.1: 3.0, 0.25: 2.0, math.inf: 4.0}) == pytest.approx(0.1 * 2 / 3)
    # a first bound ≤ 0 is returned as is
    assert histogram_quantile(0.1, {-1.0: 5.0, 1.0: 8.0, math.inf: 10.0}) == -1.0


def test_the_bucket_a_quantile_lies_in() -> None:
    assert quantile_bucket(0.5, BUCKETS) == (0.1, 0.25)
    assert quantile_bucket(0.1, BUCKETS) == (0.0, 0.1)
    assert quantile_bucket(0.95, BUCKETS) == (0.5, math.inf)
    assert quantile_bucket(0.5, {0.1: 0.0, math.inf: 0.0}) is None


def test_fraction_above_reads_the_buckets_the_same_way() -> None:
    assert fraction_above(0.2125, BUCKETS) == pytest.approx(0.5)  # the median: half above
    assert fraction_above(0.25, BUCKETS) == pytest.approx(0.4)
    assert fraction_above(0.05, BUCKETS) == pytest.approx(0.9)
    assert fraction_above(0.5, BUCKETS) == pytest.approx(0.1)
    assert fraction_above(7.0, BUCKETS) == pytest.approx(0.1)  # the +Inf bucket counts as above
    assert fraction_above(-1.0, BUCKETS) == 1.0
    assert fraction_above(0.1, {0.1: 0.0, math.inf: 0.0}) is None
    for q in (0.1, 0.3, 0.5, 0.8):
        assert fraction_above(histogram_quantile(q, BUCKETS) or 0.0, BUCKETS) == pytest.approx(1 - q)


def test_merging_histograms_adds_bucket_by_bucket() -> None:
    merged = merge_all([{0.1: 1.0, math.inf: 2.0}, {0.1: 3.0, math.inf: 5.0}])
    assert merged == {0.1: 4.0, math.inf: 7.0} and bucket_count(merged) == 7.0
