"""SLO compliance (bad fraction, burn rate) and validation gates: built-ins, the YAML file that changes them, and
the one-line errors for a file that cannot be used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from servewise.errors import UsageError
from servewise.watch._compliance import resolution_notes, slo_compliance
from servewise.watch._gates import (
    default_gates,
    evaluate_gates,
    gates_from_config,
    load_gates,
    observed_metrics,
)
from servewise.watch._observation import WatchTarget

from .scrape_support import make_observation


def test_compliance_reads_the_burn_rate_from_the_buckets(watch_target: WatchTarget) -> None:
    target = dataclasses.replace(
        watch_target, slo_targets_s={"e2e_p95": 30.0, "itl_p95": 0.1, "ttft_p99": 1.0, "ttft_p95": 0.5}
    )
    rows = slo_compliance(target, make_observation())
    assert [(r.metric, r.quantile) for r in rows] == [
        ("ttft", 0.95),
        ("ttft", 0.99),
        ("itl", 0.95),
        ("e2e", 0.95),
    ]
    p95, p99, itl, e2e = rows
    # TTFT buckets {0.25: 50, 0.5: 90, 1: 98, +Inf: 100}: 10 % above 0.5 s against a 5 % budget → burn 2
    assert (p95.observed_s, p95.met) == (0.75, False)
    assert p95.bad_fraction == pytest.approx(0.10) and p95.burn_rate == pytest.approx(2.0)
    # p99: rank 99 lies in (1 s, +Inf]: Prometheus shows the last finite bound (1 s), but the quantile is above
    # the 1 s target for certain (2 % of requests over it against a 1 % budget)
    assert p99.observed_s == 1.0 and p99.met is False
    assert p99.bad_fraction == pytest.approx(0.02) and p99.burn_rate == pytest.approx(2.0)
    assert itl.met is True and itl.bad_fraction is None and itl.burn_rate is None  # no ITL histogram
    assert e2e.met is True
    unobserved = make_observation(ttft_s=dict.fromkeys((0.5, 0.9, 0.95, 0.99)), histograms={})
    assert slo_compliance(target, unobserved)[0].met is None


def test_a_target_inside_the_quantiles_bucket_is_flagged(watch_target: WatchTarget) -> None:
    observation = make_observation()  # p95 TTFT: rank 95 lies in the (0.5, 1] bucket
    on_bounds = dataclasses.replace(watch_target, slo_targets_s={"ttft_p95": 0.5, "ttft_p99": 1.0})
    assert resolution_notes(slo_compliance(on_bounds, observation), observation) == []
    inside = dataclasses.replace(watch_target, slo_targets_s={"ttft_p95": 0.8})
    (row,) = slo_compliance(inside, observation)
    assert row.observed_s == pytest.approx(0.75) and row.met is None  # undecided: 800 ms is inside (0.5, 1]
    (note,) = resolution_notes((row,), observation)
    assert note.startswith(
        "p95 TTFT: the histogram places it in (500 ms, 1000 ms], a bucket that holds the 800 ms"
    )


def test_default_gates_pass_skip_and_fail(watch_target: WatchTarget) -> None:
    gates = default_gates(watch_target)
    assert [g.name for g in gates] == [
        "ttft_p95", "itl_p95", "e2e_p95", "error_rate", "schema_valid", "fallback_share", "preemption_storm",
        "budget_pace",
    ]  # fmt: skip
    results = {r.name: r for r in evaluate_gates(gates, make_observation())}
    assert results["ttft_p95"].passed is True and results["ttft_p95"].threshold == 2.0
    assert results["schema_valid"].passed is None and "skipped" in results["schema_valid"].reason
    assert results["budget_pace"].passed is None  # no gateway: no spend observed
    # $15/h for 730 h = $10,950 > the $9,000 budget
    spending = evaluate_gates(gates, make_observation(spend_usd_per_hour=15.0, error_rate=0.02))
    by_name = {r.name: r for r in spending}
    assert by_name["budget_pace"].passed is False and by_name["budget_pace"].observed == pytest.approx(10950)
    assert by_name["error_rate"].passed is False and "error_rate 0.02 > 0.01" in by_name["error_rate"].reason
    assert set(observed_metrics(make_observation())) >= {g.metric for g in gates}


def test_a_gates_file_changes_thresholds_requires_disables_and_adds(
    watch_target: WatchTarget, tmp_path: Path
) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(
        """gates:
  ttft_p95: {max: 0.5}
  error_rate: {max: 0.02, required: true}
  fallback_share: {enabled: false}
  local_ratio: {min: 0.9}
  schema_valid: {required: true}
  queue_p95:
    metric: queue_p95_s
    max: 0.1
    description: requests wait at most 100 ms at p95
"""
    )
    gates = {g.name: g for g in load_gates(path, watch_target)}
    assert "fallback_share" not in gates and gates["local_ratio"].threshold == 0.9
    assert gates["error_rate"].required and gates["error_rate"].threshold == 0.02
    results = {r.name: r for r in evaluate_gates(list(gates.values()), make_observation())}
    assert results["ttft_p95"].passed is False  # 0.75 s > 0.5 s
    assert results["queue_p95"].passed is False and results["queue_p95"].observed == 0.2
    assert results["queue_p95"].description == "requests wait at most 100 ms at p95"
    assert results["local_ratio"].passed is None and not results["local_ratio"].required
    assert results["schema_valid"].passed is None and "required" in results["schema_valid"].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gates: [unclosed", "is not valid YAML (line 1"),
        ("- a list", "must hold one mapping `gates:`"),
        ("gates:\n  error_rate: 0.5", "must be a mapping such as"),
        ("gates:\n  error_rate: {maxx: 0.5}", "unknown key 'maxx'"),
        ("gates:\n  error_rate: {min: 0.5}", "error_rate is an upper bound; use max:"),
        ("gates:\n  error_rate: {max: 0.1, min: 0.0}", "either max or min, not both"),
        ("gates:\n  error_rate: {max: fast}", "error_rate.max must be a number"),
        ("gates:\n  error_rate: {required: 1}", "required must be true or false"),
        ("gates:\n  local_ratio: {required: true}", "local_ratio has no default threshold; give min:"),
        ("gates:\n  mine: {max: 1}", "a new gate needs metric:"),
        ("gates:\n  mine: {metric: queue_p95, max: 1}", "did you mean 'queue_p95_s'"),
        ("gates:\n  mine: {metric: qps}", "a new gate needs max: or min:"),
        ("gates:\n  ttft_p95: {metric: qps, max: 1}", "the built-in gate ttft_p95 checks ttft_p95_s"),
    ],
)
def test_a_bad_gates_file_is_one_line(
    watch_target: WatchTarget, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_gates(path, watch_target)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_gates_file(watch_target: WatchTarget, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist; check --gates"):
        load_gates(tmp_path / "nope.yaml", watch_target)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert [g.name for g in load_gates(empty, watch_target)] == [g.name for g in default_gates(watch_target)]


def test_a_latency_gate_inside_the_bucket_is_undecided_unless_it_interpolates(
    watch_target: WatchTarget,
) -> None:
    """p95 TTFT lies in (0.5 s, 1 s] (interpolated 0.75 s): a 0.8 s threshold cannot be decided by the buckets,
    a 1 s one passes and a 0.5 s one fails for certain; ``inside_bucket: interpolate`` reads 0.75 ≤ 0.8."""
    observation = make_observation()
    target = dataclasses.replace(watch_target, slo_targets_s={"ttft_p95": 0.8})
    config = {
        "gates": {
            "loose": {"metric": "ttft_p95_s", "max": 1.0},
            "tight": {"metric": "ttft_p95_s", "max": 0.5},
        }
    }
    results = {g.name: g for g in evaluate_gates(gates_from_config(config, target), observation)}
    assert results["ttft_p95"].passed is None and results["ttft_p95"].reason.startswith("undecided")
    assert results["loose"].passed is True and results["tight"].passed is False
    interpolated = gates_from_config({"gates": {"ttft_p95": {"inside_bucket": "interpolate"}}}, target)
    (gate,) = [g for g in evaluate_gates(interpolated, observation) if g.name == "ttft_p95"]
    assert gate.passed is True
    required = gates_from_config({"gates": {"ttft_p95": {"required": True}}}, target)
    report_gates = [g for g in evaluate_gates(required, observation) if g.name == "ttft_p95"]
    assert report_gates[0].passed is None and report_gates[0].required
    with pytest.raises(UsageError, match="inside_bucket must be undecided or interpolate"):
        gates_from_config({"gates": {"ttft_p95": {"inside_bucket": "maybe"}}}, target)
