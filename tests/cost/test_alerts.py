"""Budget threshold alerts and daily-spend anomalies against hand-computed numbers."""

from datetime import date, timedelta

import pytest

from servewise.cost import (
    AlertPolicy,
    Baseline,
    DailySpend,
    budget_alerts,
    budget_alerts_from_daily,
    plan_alerts,
    spend_anomalies,
)
from servewise.errors import UsageError


def _series(values, start=date(2025, 3, 1)):
    return [DailySpend(start + timedelta(days=i), v) for i, v in enumerate(values)]


def test_budget_alerts_crossed_and_projected():
    # Budget $10,000, $8,500 spent after 15 of 31 days:
    #   thresholds 80 % = $8,000 (crossed), 95 % = $9,500, 100 % = $10,000
    #   run rate 8,500 / 15 = $566.67/day → month end 566.67 × 31 = $17,566.67
    #   95 %: ⌈9,500 / 566.67⌉ = ⌈16.76⌉ = day 17; 100 %: ⌈10,000 / 566.67⌉ = ⌈17.65⌉ = day 18
    status = budget_alerts(
        AlertPolicy(), budget_usd_month=10_000, spend_to_date_usd=8_500, day_of_month=15, days_in_month=31
    )
    assert status.run_rate_usd_per_day == pytest.approx(566.6667, rel=1e-6)
    assert status.projected_month_usd == pytest.approx(17_566.6667, rel=1e-6)
    assert [(t.threshold_pct, t.threshold_usd, t.crossed) for t in status.thresholds] == [
        (80.0, 8_000.0, True),
        (95.0, 9_500.0, False),
        (100.0, 10_000.0, False),
    ]
    assert [t.projected_day for t in status.thresholds] == [None, 17, 18]
    assert [t.threshold_pct for t in status.crossed] == [80.0]


def test_budget_on_track_crosses_nothing_this_month():
    # $3,000 after 10 of 30 days: $300/day → $9,000 at month end; 80 % = $8,000 on ⌈26.67⌉ = day 27;
    # 95 % = $9,500 would need ⌈31.67⌉ = day 32 > 30 → not this month
    status = budget_alerts(
        AlertPolicy(), budget_usd_month=10_000, spend_to_date_usd=3_000, day_of_month=10, days_in_month=30
    )
    assert status.projected_month_usd == pytest.approx(9_000)
    assert [t.projected_day for t in status.thresholds] == [27, None, None]
    assert status.crossed == ()


def test_exact_crossing_day_is_not_rounded_up():
    # $4,000 after 10 days = $400/day; 80 % of 10,000 = 8,000 → exactly day 20 (not 21)
    status = budget_alerts(
        AlertPolicy(), budget_usd_month=10_000, spend_to_date_usd=4_000, day_of_month=10, days_in_month=30
    )
    assert status.thresholds[0].projected_day == 20


def test_daily_series_tells_the_day_each_threshold_was_crossed():
    # budget $1,000; days of $300, $300, $300, $100 → cumulative 300, 600, 900, 1,000
    # 80 % ($800) crossed on day 3, 95 % ($950) and 100 % ($1,000) on day 4
    status = budget_alerts_from_daily(
        AlertPolicy(), budget_usd_month=1_000, daily_usd=[300, 300, 300, 100], days_in_month=30
    )
    assert status.spend_to_date_usd == 1_000
    assert [t.crossed_on_day for t in status.thresholds] == [3, 4, 4]
    assert all(t.crossed for t in status.thresholds)


def test_zero_spend_projects_no_crossing():
    status = budget_alerts(
        AlertPolicy(), budget_usd_month=100, spend_to_date_usd=0, day_of_month=5, days_in_month=31
    )
    assert [t.projected_day for t in status.thresholds] == [None, None, None]


def test_median_baseline_flags_a_spike_and_ignores_the_days_before_the_window_is_full():
    # 7 days of $100, then $160 (> 1.5 × 100 = 150: anomaly, ratio 1.6), then $140 (< 150: normal).
    # The spike as day 3 would not be judged: only day 8 on has 7 days before it.
    series = _series([100, 100, 500, 100, 100, 100, 100, 160, 140])
    found = spend_anomalies(AlertPolicy(), series)
    assert [(a.day, a.usd, a.baseline_usd, a.ratio) for a in found] == [
        (date(2025, 3, 8), 160, 100, pytest.approx(1.6))
    ]


def test_median_is_not_masked_by_an_earlier_spike_but_the_mean_is():
    # window before day 9: 100, 100, 100, 100, 100, 100, 800 (yesterday's spike)
    #   median 100 → $200 > 150 is flagged (ratio 2.0)
    #   mean (600 + 800) / 7 = 200 → threshold 300, $200 is not flagged (and day 8, 800 > 150, is flagged by both)
    series = _series([100] * 7 + [800, 200])
    median_days = [a.day.day for a in spend_anomalies(AlertPolicy(), series)]
    mean_days = [a.day.day for a in spend_anomalies(AlertPolicy(anomaly_baseline=Baseline.mean), series)]
    assert median_days == [8, 9]
    assert mean_days == [8]


def test_window_and_factor_are_policy():
    # window 3, factor 2: day 4 has 10, 10, 10 before it; $25 > 20 → anomaly; no day before day 4 is judged
    found = spend_anomalies(AlertPolicy(anomaly_factor=2.0, anomaly_window_days=3), _series([10, 10, 10, 25]))
    assert [a.day.day for a in found] == [4]
    assert spend_anomalies(AlertPolicy(anomaly_window_days=3), _series([10, 10, 99])) == []


def test_spend_after_a_window_of_nothing_is_flagged_without_a_ratio():
    found = spend_anomalies(AlertPolicy(anomaly_window_days=2), _series([0, 0, 5]))
    assert [(a.usd, a.baseline_usd, a.ratio) for a in found] == [(5, 0, None)]


def test_series_must_be_one_row_per_consecutive_day():
    days = _series([1, 2, 3])
    with pytest.raises(UsageError, match="2025-03-02 appears twice"):
        spend_anomalies(AlertPolicy(), [days[0], days[1], days[1]])
    with pytest.raises(UsageError, match="no row for 2025-03-02"):
        spend_anomalies(AlertPolicy(), [days[0], days[2]])
    with pytest.raises(UsageError, match="spend must be ≥ 0"):
        spend_anomalies(AlertPolicy(), _series([1, -2]))


def test_policy_json_round_trips_and_is_stable():
    policy = AlertPolicy(budget_thresholds_pct=(100.0, 50.0))
    document = policy.to_json()
    assert document == {
        "schema": "servewise.alert_policy/1",
        "budget_thresholds_pct": [50.0, 100.0],
        "anomaly_factor": 1.5,
        "anomaly_window_days": 7,
        "anomaly_baseline": "median",
    }
    assert AlertPolicy.from_json(document) == policy
    # a plan document's copy carries no marker and still reads back
    assert AlertPolicy.from_json({k: v for k, v in document.items() if k != "schema"}) == policy
    with pytest.raises(UsageError, match="malformed"):
        AlertPolicy.from_json({"anomaly_factor": 2})
    with pytest.raises(UsageError, match="expected schema"):
        AlertPolicy.from_json(document | {"schema": "other/9"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget_thresholds_pct": ()}, "at least one threshold"),
        ({"budget_thresholds_pct": (80.0, -5.0)}, "percentage > 0"),
        ({"budget_thresholds_pct": (80.0, 80.0)}, "distinct"),
        ({"anomaly_factor": 1.0}, "anomaly_factor: must be > 1"),
        ({"anomaly_window_days": 0}, "anomaly_window_days"),
    ],
)
def test_invalid_policy_is_a_usage_error(changes, message):
    with pytest.raises(UsageError, match=message):
        AlertPolicy(**changes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_usd_month": 0}, "budget: must be > 0"),
        ({"spend_to_date_usd": -1}, "spend to date"),
        ({"day_of_month": 0}, "day of month"),
        ({"day_of_month": 31, "days_in_month": 30}, "day of month"),
    ],
)
def test_invalid_budget_inputs_are_usage_errors(kwargs, message):
    base = {"budget_usd_month": 100.0, "spend_to_date_usd": 10.0, "day_of_month": 3, "days_in_month": 30}
    with pytest.raises(UsageError, match=message):
        budget_alerts(AlertPolicy(), **(base | kwargs))


def test_plan_alerts_put_the_thresholds_in_dollars():
    # $12,000 budget: 80 % = 9,600, 95 % = 11,400, 100 % = 12,000
    block = plan_alerts(AlertPolicy(), 12_000, "workload")
    assert [(level.threshold_pct, level.threshold_usd) for level in block.levels] == [
        (80.0, 9_600.0),
        (95.0, 11_400.0),
        (100.0, 12_000.0),
    ]
    assert plan_alerts(AlertPolicy(), None, "workload").budget_source == "none"
