"""The efficiency score: the formula against hand-computed numbers (idle, right-sized, overloaded, missing gauges),
and ``efficiency`` on a real plan through the planner's perf model."""

from __future__ import annotations

import dataclasses
import math

import pytest

from servewise.errors import UsageError
from servewise.watch._efficiency import EfficiencyInputs, efficiency, efficiency_score, observed_slo
from servewise.watch._rightsize_observed import planned_workload
from servewise.watch._rightsize_replica import replica_model

from .analysis_support import observation, snapshot, target

BASE = EfficiencyInputs(
    replicas_mean=2.0,
    gpus_per_replica=4,
    peak_qps=2.0,
    capacity_qps_per_replica=4.0,
    max_num_seqs=256,
    usd_per_gpu_hour=1.0,
    running_mean=6.0,
    running_at_capacity=12.0,
    kv_usage_max=0.1,
    kv_at_capacity=0.4,
    slo=((0.15, 0.12), (7.0, 5.0)),
    provenance="calibrated",
)


def test_half_loaded_deployment_by_hand():
    # paid = 2 × 4 = 8 GPU-h/h; R_need = 2 / 4 = 0.5 → needed = 2; S = 2/8 = 0.25
    # u = (6 / 2) / 12 = 0.25; k = 0.1 / 0.4 = 0.25; A = 1 (both SLOs met) → score = 100 × 0.25 = 25
    e = efficiency_score(BASE)
    assert e.gpu_hours_paid_per_hour == 8.0 and e.gpu_hours_needed_per_hour == pytest.approx(2.0)
    assert e.replicas_needed == pytest.approx(0.5)
    assert e.components["sizing"] == pytest.approx(0.25)
    assert e.components["utilisation"] == pytest.approx(0.25)
    assert e.components["kv"] == pytest.approx(0.25)
    assert e.components["slo_factor"] == 1.0
    assert (e.components["sizing_weight"], e.components["utilisation_weight"], e.components["kv_weight"]) == (
        0.6,
        0.2,
        0.2,
    )
    assert e.score == pytest.approx(25.0)
    assert e.utilisation == pytest.approx(6 / (2 * 256)) and e.kv_headroom == pytest.approx(0.9)
    assert e.usd_per_month_paid == pytest.approx(8 * 730) and e.usd_per_month_needed == pytest.approx(2 * 730)
    assert e.provenance == "calibrated"


def test_unequal_terms_are_weighted_and_a_missing_gauge_renormalises():
    # S = (3/4 × 4) / 8 = 0.375, u = (12/2)/12 = 0.5, k = 0.1/0.4 = 0.25 → 0.6·0.375 + 0.2·0.5 + 0.2·0.25 = 0.375
    inputs = dataclasses.replace(BASE, peak_qps=3.0, running_mean=12.0)
    assert efficiency_score(inputs).score == pytest.approx(37.5)
    # without the KV gauge: (0.6·0.375 + 0.2·0.5) / 0.8 = 0.40625
    no_kv = efficiency_score(dataclasses.replace(inputs, kv_usage_max=None))
    assert no_kv.score == pytest.approx(40.625)
    assert no_kv.kv_headroom is None and "kv" not in no_kv.components
    assert no_kv.components["sizing_weight"] == pytest.approx(0.75)
    # without either gauge the score is the sizing term alone
    bare = efficiency_score(dataclasses.replace(inputs, kv_usage_max=None, running_mean=None))
    assert bare.score == pytest.approx(37.5) and bare.utilisation is None


def test_an_idle_window_scores_zero_and_needs_nothing():
    idle = dataclasses.replace(BASE, peak_qps=0.0, running_mean=0.0, kv_usage_max=0.0, slo=((0.15, None),))
    e = efficiency_score(idle)
    assert e.score == 0.0 and e.replicas_needed == 0.0 and e.gpu_hours_needed_per_hour == 0.0
    assert e.usd_per_month_needed == 0.0 and e.usd_per_month_paid == pytest.approx(8 * 730)
    assert e.components["slo_factor"] == 1.0  # nothing observed, nothing missed


def test_an_overloaded_deployment_scores_by_its_slo_misses_not_as_efficient():
    # λ = 10 over c = 4 → R_need = 2.5 > 2 paid: S = u = k = 1; TTFT p95 0.6 s vs 0.15 s → A = 0.25
    over = dataclasses.replace(
        BASE, peak_qps=10.0, running_mean=40.0, kv_usage_max=0.9, slo=((0.15, 0.6), (7.0, 7.5))
    )
    e = efficiency_score(over)
    assert e.components["sizing"] == e.components["utilisation"] == e.components["kv"] == 1.0
    assert e.components["slo_factor"] == pytest.approx(0.25)
    assert e.score == pytest.approx(25.0)
    assert e.gpu_hours_needed_per_hour == pytest.approx(10.0)
    assert e.gpu_hours_needed_per_hour > e.gpu_hours_paid_per_hour


def test_a_configuration_that_meets_the_slo_at_no_load_needs_infinitely_many_replicas():
    e = efficiency_score(
        dataclasses.replace(BASE, capacity_qps_per_replica=0.0, running_at_capacity=None, kv_at_capacity=None)
    )
    assert math.isinf(e.replicas_needed) and math.isinf(e.usd_per_month_needed)
    assert set(e.components) == {
        "slo_factor",
        "sizing",
        "sizing_weight",
        "peak_qps",
        "capacity_qps_per_replica",
    }
    assert e.score == pytest.approx(100.0)  # S = 1, A = 1: the perf model is wrong here, which drift shows


def test_no_replica_up_is_a_usage_error():
    with pytest.raises(UsageError, match="no replica was up"):
        efficiency_score(dataclasses.replace(BASE, replicas_mean=0.0))


def test_observed_slo_reads_each_target_at_its_quantile():
    t = target()
    o = observation(ttft=(0.09, 0.14), itl=(0.014, 0.018), e2e=(3.8, 4.6))
    assert observed_slo(t, o) == [("e2e_p95", 7.0, 4.6), ("itl_p95", 0.025, 0.018), ("ttft_p95", 0.15, 0.14)]
    idle = observation(qps=0.0)
    assert [seen for _, _, seen in observed_slo(t, idle)] == [None, None, None]


def test_efficiency_of_a_real_plan_uses_the_planners_capacity():
    t = target()  # Llama-3.1-8B on L4 at 5 req/s: 2 replicas of 4xL4 fp8
    o = observation(qps=2.0, replicas=2)
    e = efficiency(t, o, catalog=snapshot())
    # observed lengths equal the planned ones, so the capacity is the plan's own (simulated) max QPS per replica
    assert e.components["capacity_qps_per_replica"] == pytest.approx(t.max_qps_per_replica, rel=1e-9)
    assert e.replicas_needed == pytest.approx(2.0 / t.max_qps_per_replica)
    assert e.gpu_hours_paid_per_hour == 8.0
    assert e.usd_per_month_paid == pytest.approx(t.usd_per_month)
    terms = sum(
        e.components[name] * e.components[f"{name}_weight"] for name in ("sizing", "utilisation", "kv")
    )
    assert e.score == pytest.approx(100 * e.components["slo_factor"] * terms)
    assert 0 < e.score < 100 and e.provenance in {"calibrated", "analytical"}


def test_running_at_capacity_is_littles_law_on_the_simulated_run():
    t = target()
    replica = replica_model(t, planned_workload(t), snapshot())
    run = replica.run(replica.capacity.qps)
    o = observation(qps=2.0, replicas=2, running_mean=10.0, kv_max=None)
    e = efficiency(t, o, catalog=snapshot())
    n_c = replica.capacity.qps * run.mean("e2e")
    assert e.components["utilisation"] == pytest.approx(min(1.0, 5.0 / n_c))


def test_a_ramp_is_sized_on_its_one_minute_peak():
    t = target()
    o = observation(series=[1.0] * 6 + [3.0] * 6, replicas=2)
    e = efficiency(t, o, catalog=snapshot())
    # the last six 10-s intervals are a whole minute at 3 req/s
    assert e.components["peak_qps"] == pytest.approx(3.0)


def test_an_idle_window_still_scores_against_the_plans_lengths():
    e = efficiency(target(), observation(qps=0.0, kv_max=0.0, running_mean=0.0), catalog=snapshot())
    assert e.score == 0.0 and e.replicas_needed == 0.0


def test_a_cpu_option_is_refused_with_a_reason():
    cpu = dataclasses.replace(target(), gpu="c7i.8xlarge (CPU)", gpu_count=0)
    with pytest.raises(UsageError, match="CPU option"):
        efficiency(cpu, observation(), catalog=snapshot())
