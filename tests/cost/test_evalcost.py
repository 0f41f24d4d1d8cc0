"""LLM-as-judge evaluation cost against hand-computed numbers (the arithmetic is in the comments)."""

import math

import pytest

from servewise.cost import CascadeMode, EvalCostInputs, JudgePrice, eval_cost
from servewise.errors import UsageError

EXPENSIVE = JudgePrice("big-judge", 5.0, 15.0, 0.5, "test: reference case")
CHEAP = JudgePrice("small-judge", 1.5, 4.5, None, "test: 30 % of the expensive judge's token prices")


def _inputs(**changes: object) -> EvalCostInputs:
    base: dict[str, object] = {
        "evals_per_month": 10_000_000,
        "input_tokens": 1000,
        "output_tokens": 50,
        "judge": EXPENSIVE,
    }
    return EvalCostInputs(**(base | changes))  # type: ignore[arg-type]


def _stage(result, name):
    return next(s for s in result.stages if s.stage == name)


def test_reference_case_one_judge_every_eval():
    # (1,000 × $5 + 50 × $15) / 1e6 = (5,000 + 750) / 1e6 = $0.00575 per eval
    # 10,000,000 × 0.00575 = $57,500 per month
    result = eval_cost(_inputs())
    expensive = _stage(result, "expensive judge")
    assert expensive.usd_per_call == pytest.approx(0.00575)
    assert expensive.calls_per_month == pytest.approx(10_000_000)
    assert result.usd_per_month == pytest.approx(57_500)
    assert result.baseline_usd_per_month == pytest.approx(57_500)
    assert result.usd_per_eval == pytest.approx(0.00575)


def test_reference_case_sampling_ten_percent():
    # 10 % of 10M = 1M judged × $0.00575 = $5,750; per eval produced 5,750 / 10M = $0.000575
    result = eval_cost(_inputs(sampling_rate=0.1))
    assert result.usd_per_month == pytest.approx(5_750)
    assert result.usd_per_eval == pytest.approx(0.000575)
    assert result.usd_per_judged_eval == pytest.approx(0.00575)
    assert _stage(result, "not sampled").evals_per_month == pytest.approx(9_000_000)
    sampling = result.waterfall[0]
    assert (sampling.step, sampling.saved_usd_per_month) == ("sampling", pytest.approx(51_750))
    assert sampling.saved_pct == pytest.approx(90.0)


def test_reference_case_80_20_escalating_cascade_cuts_half_again():
    # Cheap judge at $1.50/$4.50 per 1M: (1,000 × 1.5 + 50 × 4.5) / 1e6 = (1,500 + 225) / 1e6 = $0.001725
    # = 30 % of the expensive call. Escalate: the cheap judge sees every judged eval (1M calls), and 20 % go on to
    # the expensive judge (200k calls):
    #   1,000,000 × 0.001725 + 200,000 × 0.00575 = 1,725 + 1,150 = $2,875 = 5,750 / 2 → exactly half again.
    result = eval_cost(_inputs(sampling_rate=0.1, cheap_judge=CHEAP, cheap_share=0.8))
    cheap, expensive = _stage(result, "cheap judge"), _stage(result, "expensive judge")
    assert cheap.usd_per_call == pytest.approx(0.001725)
    assert cheap.calls_per_month == pytest.approx(1_000_000)
    assert cheap.evals_per_month == pytest.approx(800_000)
    assert cheap.usd_per_month == pytest.approx(1_725)
    assert expensive.calls_per_month == pytest.approx(200_000)
    assert expensive.usd_per_month == pytest.approx(1_150)
    assert result.usd_per_month == pytest.approx(2_875)
    cascade = next(step for step in result.waterfall if step.step == "cascade")
    assert cascade.usd_per_month_before == pytest.approx(5_750)
    assert cascade.saved_pct == pytest.approx(50.0)


def test_route_cascade_pays_one_call_per_eval():
    # Route: 800k × 0.001725 + 200k × 0.00575 = 1,380 + 1,150 = $2,530 (a 56 % cut of 5,750)
    result = eval_cost(
        _inputs(sampling_rate=0.1, cheap_judge=CHEAP, cheap_share=0.8, cascade=CascadeMode.route)
    )
    assert _stage(result, "cheap judge").calls_per_month == pytest.approx(800_000)
    assert result.usd_per_month == pytest.approx(2_530)


def test_rules_settle_their_share_for_free():
    # rules 50 %, no cheap judge: 10M × 0.5 × 0.00575 = $28,750
    result = eval_cost(_inputs(rules_share=0.5))
    assert _stage(result, "rules").evals_per_month == pytest.approx(5_000_000)
    assert _stage(result, "rules").usd_per_month == 0
    assert result.usd_per_month == pytest.approx(28_750)
    assert [s.stage for s in result.stages] == ["not sampled", "judgement cache", "rules", "expensive judge"]


def test_judgement_cache_hit_skips_the_call_entirely():
    # 1M judged, 25 % reuse a stored verdict: 750k calls × 0.00575 = $4,312.50
    result = eval_cost(_inputs(sampling_rate=0.1, judgement_cache_hit_rate=0.25))
    assert _stage(result, "judgement cache").evals_per_month == pytest.approx(250_000)
    assert result.usd_per_month == pytest.approx(4_312.5)
    cache = next(step for step in result.waterfall if step.step == "judgement cache")
    assert cache.saved_usd_per_month == pytest.approx(1_437.5)


def test_prompt_caching_bills_cached_input_at_the_cached_price():
    # 80 % of 1,000 input tokens at $0.50, 20 % at $5: 1,000 × (0.2 × 5 + 0.8 × 0.5) = 1,400 micro-USD;
    # + 50 × 15 = 750 → $0.00215 per call; × 1M judged = $2,150
    result = eval_cost(_inputs(sampling_rate=0.1, prompt_cache_share=0.8))
    assert _stage(result, "expensive judge").usd_per_call == pytest.approx(0.00215)
    assert result.usd_per_month == pytest.approx(2_150)
    assert result.waterfall[-1].saved_usd_per_month == pytest.approx(5_750 - 2_150)


def test_prompt_caching_without_a_known_cached_price_assumes_no_discount():
    # CHEAP has no cached price: its call stays (1,500 + 225) / 1e6 = 0.001725, and the result says why
    result = eval_cost(_inputs(cheap_judge=CHEAP, cheap_share=0.8, prompt_cache_share=0.8))
    assert _stage(result, "cheap judge").usd_per_call == pytest.approx(0.001725)
    assert any("small-judge: no cached-input price" in a for a in result.assumptions)


def test_waterfall_runs_from_the_baseline_to_the_total():
    result = eval_cost(
        _inputs(
            sampling_rate=0.2,
            judgement_cache_hit_rate=0.1,
            rules_share=0.3,
            cheap_share=0.5,
            cheap_judge=CHEAP,
            prompt_cache_share=0.5,
        )
    )
    assert result.waterfall[0].usd_per_month_before == pytest.approx(result.baseline_usd_per_month)
    assert result.waterfall[-1].usd_per_month_after == pytest.approx(result.usd_per_month)
    for before, after in zip(result.waterfall, result.waterfall[1:], strict=False):
        assert after.usd_per_month_before == pytest.approx(before.usd_per_month_after)
    # settled evals add up to every eval produced
    assert math.fsum(s.evals_per_month for s in result.stages) == pytest.approx(10_000_000)


def test_zero_volume_costs_nothing_without_dividing_by_zero():
    result = eval_cost(_inputs(evals_per_month=0))
    assert (result.usd_per_month, result.usd_per_eval, result.usd_per_judged_eval) == (0, 0, 0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sampling_rate": 1.5}, "sampling_rate: must be a fraction between 0 and 1"),
        ({"sampling_rate": -0.1}, "sampling_rate: must be a fraction"),
        ({"judgement_cache_hit_rate": float("nan")}, "judgement_cache_hit_rate"),
        ({"evals_per_month": -1}, "evals_per_month: must be a finite number ≥ 0"),
        ({"input_tokens": float("inf")}, "input_tokens"),
        ({"rules_share": 0.6, "cheap_share": 0.6, "cheap_judge": CHEAP}, "must not exceed 1"),
        ({"cheap_share": 0.5}, "needs a cheap judge"),
        ({"judge": JudgePrice("x", -1.0, 1.0, None, "t")}, "input_usd_per_1m of x"),
    ],
)
def test_invalid_inputs_are_usage_errors(changes, message):
    with pytest.raises(UsageError, match=message):
        eval_cost(_inputs(**changes))
