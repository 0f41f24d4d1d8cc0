"""Mixed plans: the length split (hand-computed), the routing rule, API overflow pricing, and the composed options."""

import math
from datetime import date

import pytest

from servewise.catalog import ApiPrice
from servewise.errors import UnknownNameError, UsageError
from servewise.planner import (
    api_overflow,
    length_cdf,
    make_mixed_plan,
    partial_moment,
    routing_rule,
    split_lengths,
    threshold_for_share,
)
from servewise.workload import LengthDistribution, build_workload
from tests.factories import packaged_snapshot

RAG = LengthDistribution(mean=1500, kind="lognormal", cv=1.2)


def test_lognormal_tail_share_and_means_at_4096_match_the_hand_computation():
    # σ² = ln(1 + 1.2²) = ln 2.44 = 0.891998, σ = 0.944456; μ = ln 1500 − σ²/2 = 7.313220 − 0.445999 = 6.867221
    # z = (ln 4096 − μ) / σ = (8.317766 − 6.867221) / 0.944456 = 1.535851 → Φ(z) = 0.937713 stay, 0.062287 leave
    # tail mean = 1500 · (1 − Φ(z − σ)) / (1 − Φ(z)) = 1500 · (1 − Φ(0.591395)) / 0.062287
    #           = 1500 · (1 − 0.722872) / 0.062287 = 6673.8 tokens
    split = split_lengths(RAG, 4096)
    assert split.share_below == pytest.approx(0.937713, abs=1e-6)
    assert split.share_above == pytest.approx(0.062287, abs=1e-6)
    assert split.mean_above_tokens == pytest.approx(6673.8, abs=0.1)
    # the two sides add back to the whole: 0.937713 · below + 0.062287 · 6673.8 = 1500
    total = split.share_below * split.mean_below_tokens + split.share_above * split.mean_above_tokens
    assert total == pytest.approx(1500, rel=1e-9)
    assert split.mean_below_tokens < 4096 < split.mean_above_tokens


def test_exponential_split_is_memoryless_above_the_threshold():
    # m = 1000, t = 1000: P(X ≤ t) = 1 − e⁻¹ = 0.632121; E[X; X ≤ t] = m − (t + m)e⁻¹ = 1000 − 735.759 = 264.241
    # → mean below = 264.241 / 0.632121 = 418.02; above, the exponential forgets: t + m = 2000, cv = m / 2000 = 0.5
    split = split_lengths(LengthDistribution(mean=1000, kind="exponential"), 1000)
    assert split.share_below == pytest.approx(0.632121, abs=1e-6)
    assert split.mean_below_tokens == pytest.approx(418.02, abs=0.01)
    assert split.mean_above_tokens == pytest.approx(2000, rel=1e-9)
    assert split.cv_above == pytest.approx(0.5, rel=1e-6)


def test_fixed_lengths_fall_wholly_on_one_side():
    fixed = LengthDistribution(mean=5000)
    assert split_lengths(fixed, 4096).share_below == 0
    assert split_lengths(fixed, 5000).share_below == 1  # "over the threshold" is strict
    assert split_lengths(fixed, 4096).mean_above_tokens == 5000


def test_a_cap_puts_the_tail_mass_at_the_cap():
    capped = LengthDistribution(mean=1500, kind="lognormal", cv=1.2, max_tokens=8000)
    assert length_cdf(capped, 8000) == 1.0 and length_cdf(capped, 7999) < 1.0
    # E[min(Y, c)] = M₁(c) + c · P(Y > c), below the uncapped 1500
    assert partial_moment(capped, math.inf, 1) < 1500
    assert split_lengths(capped, 8000).share_above == 0
    assert split_lengths(capped, 4096).mean_above_tokens < 8000


def test_local_ratio_gives_the_smallest_whole_threshold_that_keeps_that_share():
    # x₀.₉₈ = exp(μ + σ·Φ⁻¹(0.98)) = exp(6.867221 + 0.944456 · 2.053749) = 6680.16 → 6681 tokens
    t = threshold_for_share(RAG, 0.98)
    assert t == 6681
    assert length_cdf(RAG, t) >= 0.98 > length_cdf(RAG, t - 1)
    assert (
        threshold_for_share(LengthDistribution(mean=900, kind="lognormal", cv=1, max_tokens=9000), 1) == 9000
    )


def _workload(prompt=RAG, **routing):
    overrides = {
        "traffic": {"qps": 10, "prompt_tokens": prompt.model_dump(), "output_tokens": 300},
        "slo": {"ttft_p95_ms": 3000, "itl_p95_ms": 60},
        "constraints": {"gpus": ["L4"], "models": ["Qwen2.5-7B"]},
    }
    if routing:
        overrides["routing"] = routing
    return build_workload(overrides=overrides)


def test_routing_rule_default_file_and_flag_precedence():
    assert routing_rule(_workload()).threshold_tokens == 4096
    assert routing_rule(_workload()).default_threshold
    from_file = routing_rule(_workload(threshold_tokens=2048, overflow_api="gpt-4o-mini"))
    assert (from_file.threshold_tokens, from_file.overflow_api) == (2048, "gpt-4o-mini")
    flagged = routing_rule(_workload(threshold_tokens=2048), local_ratio=0.98)
    assert flagged.threshold_tokens == 6681 and flagged.local_ratio_target == 0.98


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold_tokens": 0}, "--threshold-tokens must be > 0"),
        ({"threshold_tokens": -5}, "--threshold-tokens must be > 0"),
        ({"local_ratio": 0.0}, "--local-ratio must be in (0, 1]"),
        ({"local_ratio": 1.5}, "--local-ratio must be in (0, 1]"),
        ({"threshold_tokens": 4096, "local_ratio": 0.9}, "not both"),
    ],
)
def test_routing_rule_rejects_bad_flags(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("]", r"\]")):
        routing_rule(_workload(), **kwargs)


def test_api_overflow_prices_the_tail_by_hand():
    price = ApiPrice("openai", "mini", 0.15, 0.6, 0.075, 128_000, 16_384, "test source", date(2026, 1, 1))
    api = api_overflow(
        price, share=0.05, avg_qps=10, mean_prompt_tokens=8000, mean_output_tokens=300, cached_share=0.5
    )
    # requests = 0.05 · 10 req/s · 730 h · 3600 s = 1,314,000; prompt tokens = 1.314e6 · 8000 = 1.0512e10
    # fresh 5.256e9 · $0.15/1M = $788.40; cached 5.256e9 · $0.075/1M = $394.20; output 3.942e8 · $0.6/1M = $236.52
    assert api.requests_per_month == pytest.approx(1_314_000)
    assert api.input_tokens_per_month == pytest.approx(1.0512e10)
    assert api.cached_input_tokens_per_month == pytest.approx(5.256e9)
    assert api.usd_per_month == pytest.approx(788.40 + 394.20 + 236.52)


def test_mixed_plan_splits_traffic_and_sums_the_pools():
    workload = _workload(overflow_api="gpt-4o-mini")
    plan = make_mixed_plan(workload, packaged_snapshot(), routing_rule(workload))
    names = [o.name for o in plan.options]
    assert names == ["pure", "bulk + long-context pool", "bulk + API overflow", "API only"]
    pure, pools, overflow, api_only = plan.options
    bulk, long = pools.pools
    assert bulk.workload.traffic.avg_qps == pytest.approx(10 * 0.937713, rel=1e-5)
    assert long.workload.traffic.avg_qps == pytest.approx(10 * 0.062287, rel=1e-4)
    assert bulk.workload.traffic.prompt_tokens.max_tokens == 4096
    assert bulk.workload.budget_usd_month is None and bulk.workload.routing is None
    for option in (pure, pools, overflow):
        assert option.infeasible_reason is None
        parts = sum(p.option.cost.usd_per_month for p in option.pools if p.option)
        assert option.usd_per_month == pytest.approx(parts + (option.api.usd_per_month if option.api else 0))
        assert option.gpus_total == sum(p.option.gpus_total for p in option.pools if p.option)
    assert overflow.share_local == pytest.approx(0.937713, abs=1e-6) and pools.share_local == pytest.approx(1)
    # gpt-4o-mini: $0.15 in / $0.6 out per 1M; all 26.28M requests/month · (1500 · 0.15 + 300 · 0.6) / 1e6
    assert api_only.usd_per_month == pytest.approx(26_280_000 * (1500 * 0.15 + 300 * 0.6) / 1e6)
    assert plan.chosen == min(range(4), key=lambda i: plan.options[i].usd_per_month or math.inf)


def test_mixed_plan_without_a_tail_has_only_the_pure_option_and_says_why():
    capped = LengthDistribution(mean=1500, kind="lognormal", cv=1.2, max_tokens=32_000)
    workload = _workload(capped, threshold_tokens=32_000)
    plan = make_mixed_plan(workload, packaged_snapshot(), routing_rule(workload))
    assert [o.name for o in plan.options] == ["pure"]
    assert any("no mixed option" in a for a in plan.assumptions)


def test_unknown_api_suggests_names():
    workload = _workload(overflow_api="gpt-4o-mnii")
    with pytest.raises(UnknownNameError, match="gpt-4o-mini"):
        make_mixed_plan(workload, packaged_snapshot(), routing_rule(workload))
