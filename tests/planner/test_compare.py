"""Side-by-side comparison of plans: each side's chosen option and deltas against the first side."""

import pytest

from servewise.planner import METRICS, compare_plans, make_plan, summarize_plan
from servewise.planner._compare import _delta
from servewise.workload import apply_overrides, build_workload, parse_variation
from tests.factories import packaged_snapshot

FAST = {"gpus": ["L4", "H100-SXM"], "models": ["Llama-3.1-8B", "Qwen3-8B"]}
"""Two GPUs and two models keep each plan well under a second."""


def _base():
    template = next(u for u in packaged_snapshot().use_cases if u.name == "chatbot_conversational")
    return build_workload(template=template, overrides={"traffic": {"qps": 10}, "constraints": FAST})


def _plan(workload):
    return make_plan(workload, packaged_snapshot())


def test_delta_arithmetic():
    # 1,500 - 1,000 = +500; 500 / 1,000 = +50 %
    d = _delta("b", "usd_per_month", 1000.0, 1500.0)
    assert (d.absolute, d.percent) == (500.0, 50.0)
    # 2 - 4 = -2; -2 / 4 = -50 %
    assert _delta("b", "gpus_total", 4, 2).percent == -50.0
    # no percentage of a zero base; nothing at all when a side has no value
    assert _delta("b", "x", 0.0, 3.0).percent is None
    assert _delta("b", "x", None, 3.0).absolute is None


def test_doubling_the_traffic_shows_each_sides_choice_and_the_deltas():
    base = _base()
    doubled = apply_overrides(base, parse_variation("traffic.qps=20"))
    a, b = _plan(base), _plan(doubled)
    comparison = compare_plans([("base", a), ("qps 20", b)])
    first, second = comparison.sides
    assert first.feasible and second.feasible
    assert first.usd_per_month == a.options[0].cost.usd_per_month
    assert second.gpus_total == b.options[0].gpus_total
    assert (first.peak_qps, second.peak_qps) == (10, 20)
    assert len(comparison.deltas) == len(METRICS)  # one side against the base, every metric
    by_metric = {d.metric: d for d in comparison.deltas}
    peak = by_metric["peak_qps"]
    assert (peak.absolute, peak.percent) == (10, 100.0)  # 20 - 10 = 10, +100 %
    cost = by_metric["usd_per_month"]
    assert cost.absolute == pytest.approx(second.usd_per_month - first.usd_per_month)
    assert cost.percent == pytest.approx(cost.absolute / first.usd_per_month * 100)
    # twice the load on the same cheapest configuration never needs fewer GPUs
    assert second.gpus_total >= first.gpus_total


def test_an_infeasible_side_is_shown_with_its_reason_and_no_deltas():
    base = _base()
    impossible = apply_overrides(base, parse_variation("slo.ttft_p95_ms=1"))
    comparison = compare_plans([("base", _plan(base)), ("ttft 1 ms", _plan(impossible))])
    side = comparison.sides[1]
    assert not side.feasible and side.usd_per_month is None
    assert "no option meets the SLO" in side.reason
    assert all(d.absolute is None for d in comparison.deltas if d.metric != "peak_qps")


def test_a_summary_is_the_chosen_option():
    plan = _plan(_base())
    summary = summarize_plan("x", plan)
    chosen = plan.options[0]
    assert summary.model == chosen.candidate.model and summary.replicas == chosen.replicas
    assert summary.ttft_p95_ms == chosen.perf.ttft.p95_ms and summary.options == len(plan.options)
    assert compare_plans([]).sides == ()
