"""The observed workload: one-minute load, lengths read through vLLM's histogram buckets, the plan's SLO kept; and
the deployed replica's capacity equal to the planner's."""

from __future__ import annotations

import dataclasses
import math

import pytest

from servewise.errors import UnknownNameError, UsageError
from servewise.planner import make_plan
from servewise.watch._exposition import histogram_quantile
from servewise.watch._rightsize_observed import (
    LENGTH_BUCKETS_TOKENS,
    observed_length,
    observed_workload,
    planned_workload,
    smoothed_qps,
    sustained_peak_qps,
)
from servewise.watch._rightsize_replica import replica_model, replicas_for
from servewise.workload import LengthDistribution

from .analysis_support import observation, samples, snapshot, target

PLANNED = LengthDistribution(mean=512, kind="lognormal", cv=0.5)


def test_one_minute_smoothing_by_hand():
    # 10-s intervals: six at 0 req/s, then six at 6 req/s. At t = 70 s the minute (10, 70] holds five 0s and one 6.
    series = samples([0.0] * 6 + [6.0] * 6)
    loads = smoothed_qps(series)
    assert loads[5] == 0.0 and loads[6] == pytest.approx(1.0) and loads[11] == pytest.approx(6.0)
    assert loads[8] == pytest.approx(3 * 6 / 6)


def test_the_peak_is_the_highest_minute_never_below_the_mean():
    assert sustained_peak_qps(observation(series=[0.0] * 6 + [6.0] * 6)) == pytest.approx(6.0)
    # a single 10-s burst is smoothed over the minute: (5 × 2 + 8) / 6 = 3
    assert sustained_peak_qps(observation(series=[2.0] * 11 + [8.0])) == pytest.approx(3.0)
    # a window shorter than a minute: its mean
    short = observation(series=[1.0, 3.0, 2.0], interval_s=10.0)
    assert sustained_peak_qps(short) == pytest.approx(2.0)
    no_samples = dataclasses.replace(observation(qps=2.0), samples=(), qps_peak=4.0)
    assert sustained_peak_qps(no_samples) == 4.0


def test_a_constant_length_read_through_the_buckets_stays_fixed():
    # a constant 512-token prompt lands in (500, 1000]: histogram_quantile gives 500 + 500 × 0.95 = 975
    assert histogram_quantile(0.95, {500.0: 0.0, 1000.0: 10.0, math.inf: 10.0}) == pytest.approx(975.0)
    fixed = observed_length(512.0, 975.0, PLANNED)
    assert fixed.kind == "fixed" and fixed.mean == 512.0


def _bucketed_p95(mean: float, sigma: float) -> float:
    mu = math.log(mean) - sigma * sigma / 2
    cdf = {b: 0.5 * math.erfc(-(math.log(b) - mu) / (sigma * math.sqrt(2))) for b in LENGTH_BUCKETS_TOKENS}
    value = histogram_quantile(0.95, {**cdf, math.inf: 1.0})
    assert value is not None
    return value


def test_a_long_tail_becomes_the_least_dispersed_lognormal_that_reaches_the_observed_p95():
    length = observed_length(800.0, 2400.0, PLANNED)
    assert length.kind == "lognormal" and length.mean == 800.0 and length.max_tokens is None
    sigma = math.sqrt(math.log1p(length.cv**2))
    assert _bucketed_p95(800.0, sigma) >= 2400.0 > _bucketed_p95(800.0, sigma - 0.01)


def test_a_p95_no_lognormal_reaches_takes_the_closest_one():
    # p95 / mean ≤ e^(1.645²/2) ≈ 3.87 for any lognormal: 5 × the mean is out of reach
    length = observed_length(800.0, 4000.0, PLANNED)
    sigma = math.sqrt(math.log1p(length.cv**2))
    best = max(_bucketed_p95(800.0, s / 100) for s in range(1, 215))
    assert _bucketed_p95(800.0, sigma) == pytest.approx(best)
    assert 1.4 < sigma < 1.9


def test_lengths_fall_back_to_the_plan():
    assert observed_length(None, None, PLANNED) == PLANNED
    scaled = observed_length(700.0, None, PLANNED)
    assert (scaled.kind, scaled.cv, scaled.mean) == ("lognormal", 0.5, 700.0)
    capped = observed_length(900.0, None, LengthDistribution(mean=512), cap_tokens=768)
    assert capped.mean == 768.0 and capped.max_tokens == 768


def test_the_observed_workload_keeps_the_plans_slo_and_constraints():
    t = target()
    o = observation(series=[1.0] * 6 + [3.0] * 6, prompt_mean=600.0, output_mean=200.0)
    w = observed_workload(t, o)
    planned = planned_workload(t)
    assert w.traffic.avg_qps == pytest.approx(2.0) and w.traffic.peak_qps == pytest.approx(3.0)
    assert w.traffic.prompt_tokens.mean == 600.0 and w.traffic.output_tokens.mean == 200.0
    assert w.slo == planned.slo and w.constraints == planned.constraints and w.priority == planned.priority


def test_a_window_without_requests_has_no_observed_workload():
    with pytest.raises(UsageError, match="no request finished"):
        observed_workload(target(), observation(qps=0.0))


def test_an_invalid_plan_workload_is_a_one_line_error():
    broken = dataclasses.replace(target(), workload={"traffic": {"qps": -1}})
    with pytest.raises(UsageError, match="workload block is not valid"):
        planned_workload(broken)


def test_the_deployed_replicas_capacity_is_the_planners():
    t = target(precisions=["bf16"])
    plan = make_plan(planned_workload(t), snapshot())
    option = next(
        o for o in plan.options if (o.candidate.tp, str(o.candidate.precision)) == (t.tp, t.precision)
    )
    replica = replica_model(t, planned_workload(t), snapshot())
    assert option.perf.capacity_method == "simulated"
    assert replica.capacity.qps == pytest.approx(option.perf.max_qps_per_replica, rel=1e-12)
    assert replica.capacity.reason == "" and replica.capacity.binding == option.perf.binding
    assert replica.settings.max_num_seqs == t.engine["max_num_seqs"]


def test_a_workload_no_replica_count_serves_says_why():
    t = target()
    impossible = planned_workload(t).model_copy(
        update={"slo": planned_workload(t).slo.model_copy(update={"ttft_p95_ms": 1.0})}
    )
    capacity = replica_model(t, impossible, snapshot()).capacity
    assert capacity.qps == 0.0 and "ttft_p95_ms" in capacity.reason


def test_unknown_names_and_bad_options_are_refused():
    t = target()
    with pytest.raises(UnknownNameError):
        replica_model(dataclasses.replace(t, model="NoSuchModel-7B"), planned_workload(t), snapshot())
    with pytest.raises(UsageError, match="precision"):
        replica_model(dataclasses.replace(t, precision="fp3"), planned_workload(t), snapshot())
    with pytest.raises(UsageError, match="engine settings"):
        replica_model(
            dataclasses.replace(t, engine={"max_num_seqs": "many"}), planned_workload(t), snapshot()
        )


def test_replicas_for_is_the_planners_ceiling():
    assert replicas_for(6.0, 3.0) == 2 and replicas_for(6.01, 3.0) == 3 and replicas_for(0.1, 3.0) == 1
    with pytest.raises(ValueError):
        replicas_for(1.0, 0.0)
