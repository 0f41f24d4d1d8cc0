"""Autoscaled month: replica-hours, dollars and ramp risk on curves small enough to compute by hand."""

import pytest

from servewise.cost import (
    HOURS_PER_WEEK,
    SHAPES,
    ScalingPolicy,
    autoscale_week,
    shape_multipliers,
    weekly_curve,
)
from servewise.errors import UsageError

# One day, repeated all week: 1 req/s for 22 hours, 5 req/s at 10:00 and 11:00.
DAY = [5.0 if hour in (10, 11) else 1.0 for hour in range(24)]
CAPACITY = 2.0  # req/s per replica
PRICE = 3.0  # $ per replica-hour


def _run(policy: ScalingPolicy, day=DAY):
    return autoscale_week(
        weekly_curve(day), max_qps_per_replica=CAPACITY, usd_per_replica_hour=PRICE, policy=policy
    )


def test_instant_scaling_pays_for_each_hours_target():
    result = _run(ScalingPolicy(min_replicas=1, scale_up_lag_min=0, cold_start_min=0))
    # targets: ⌈1/2⌉ = 1 for 22 h, ⌈5/2⌉ = 3 for 2 h → 22 + 6 = 28 replica-h/day, 196/week
    # month = 196 · 730/168 = 851.667 replica-h → · $3 = $2,555.00; static: 3 replicas · 730 h · $3 = $6,570
    assert [h.target_replicas for h in result.hours[:24]] == [3 if h in (10, 11) else 1 for h in range(24)]
    assert result.replica_hours_per_month == pytest.approx(851.6667, abs=1e-3)
    assert result.usd_per_month == pytest.approx(2555.0)
    assert result.static_replicas == 3 and result.static_usd_per_month == pytest.approx(6570.0)
    assert result.savings_usd_per_month == pytest.approx(4015.0)
    assert result.hours_at_risk_per_week == 0 and result.share_requests_over_capacity == 0


def test_lag_and_cold_start_leave_the_first_quarter_hour_of_the_ramp_at_risk():
    result = _run(ScalingPolicy(min_replicas=1, scale_up_lag_min=5, cold_start_min=10))
    ramp = result.hours[10]
    # 10:00-10:15 only 1 replica serves (2 req/s) against 5 req/s → 15 minutes at risk,
    # (5 − 2) req/s · 60 s · 15 min = 2,700 requests over capacity per day
    assert (ramp.minutes_at_risk, ramp.ready_replicas_min) == (15, 1)
    assert ramp.requests_over_capacity == pytest.approx(2700)
    # billed from the request (after the 5-minute lag): (5 · 1 + 55 · 3) / 60 = 2.8333 replica-h
    assert ramp.billed_replica_hours == pytest.approx(170 / 60)
    assert result.hours[11].minutes_at_risk == 0 and result.hours[12].target_replicas == 1
    # requests/day = 22 · 3600 · 1 + 2 · 3600 · 5 = 115,200 → 2,700 / 115,200 = 2.34375 %
    assert result.share_requests_over_capacity == pytest.approx(0.0234375)
    assert result.hours_at_risk_per_week == 7
    # month: (22 + 2.8333 + 3) · 7 = 194.8333 replica-h/week · 730/168 = 846.607 → · $3 = $2,539.82
    assert result.usd_per_month == pytest.approx(194.8333333 * 730 / 168 * 3, rel=1e-9)


def test_a_cold_start_longer_than_the_spike_never_serves_it():
    day = [4.0 if hour == 9 else 1.0 for hour in range(24)]
    result = _run(ScalingPolicy(min_replicas=1, scale_up_lag_min=0, cold_start_min=90), day)
    spike = result.hours[9]
    # the 2 replicas requested at 09:00 are paid all hour but would serve from 10:30; gone at 10:00
    assert (spike.minutes_at_risk, spike.ready_replicas_min, spike.billed_replica_hours) == (60, 1, 2.0)
    assert spike.requests_over_capacity == pytest.approx((4 - 2) * 3600)


def test_the_week_wraps_so_monday_midnight_ramps_from_sunday_night():
    curve = [1.0] * HOURS_PER_WEEK
    curve[0] = 5.0  # Monday 00:00
    result = autoscale_week(
        curve, max_qps_per_replica=CAPACITY, usd_per_replica_hour=PRICE, policy=ScalingPolicy(1, 0, 30)
    )
    assert result.hours[0].minutes_at_risk == 30 and result.hours[-1].minutes_at_risk == 0


def test_min_replicas_floor_and_scale_to_zero():
    quiet = [0.0] * 12 + [1.0] * 12
    floor = _run(ScalingPolicy(min_replicas=2, scale_up_lag_min=0, cold_start_min=0), quiet)
    zero = _run(ScalingPolicy(min_replicas=0, scale_up_lag_min=0, cold_start_min=0), quiet)
    assert {h.target_replicas for h in floor.hours} == {2}
    # the static pool is sized for the peak hour (⌈1/2⌉ = 1), not raised to the autoscaler's floor: a floor above
    # the peak's need costs more than static, and the comparison says so
    assert floor.static_replicas == 1 and floor.savings_usd_per_month < 0
    # 12 idle hours at 0 replicas, 12 at ⌈1/2⌉ = 1 → 12 replica-h/day
    assert sum(h.billed_replica_hours for h in zero.hours[:24]) == 12


def test_built_in_shapes_have_168_hours_with_mean_one():
    for name in SHAPES:
        values = shape_multipliers(name)
        assert len(values) == HOURS_PER_WEEK
        assert sum(values) / HOURS_PER_WEEK == pytest.approx(1.0)
    # business_hours: 50 weekday office hours at 1, 118 others at 0.1 → raw mean 61.8/168; peak = 168/61.8 = 2.7184
    assert max(shape_multipliers("business_hours")) == pytest.approx(168 / 61.8)
    weekly = shape_multipliers("weekly")
    assert weekly[5 * 24 + 10] == pytest.approx(weekly[10] / 2)  # Saturday 10:00 is half of Monday 10:00
    assert set(shape_multipliers("flat")) == {1.0}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: shape_multipliers("diurnal"), "unknown traffic shape 'diurnal'"),
        (lambda: weekly_curve([1.0] * 23), "24 or 168 hourly values, got 23"),
        (lambda: weekly_curve([1.0] * 23 + [-1.0]), "finite number >= 0"),
        (lambda: ScalingPolicy(min_replicas=-1), "--min-replicas must be >= 0"),
        (lambda: ScalingPolicy(cold_start_min=-5), "must be >= 0 minutes"),
    ],
)
def test_bad_inputs_are_one_line_usage_errors(call, message):
    with pytest.raises(UsageError, match=message):
        call()
