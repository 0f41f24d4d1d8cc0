"""Hosted-API cost per request and the break-even against a self-hosting staircase, by hand."""

import dataclasses

import pytest

from servewise.catalog import ApiPrice
from servewise.cost import StepCost, api_cost, best_hybrid, break_even, find_api_price
from servewise.errors import UnknownNameError, UsageError
from tests.factories import packaged_snapshot

PRICE = ApiPrice(
    provider="p",
    model="judge",
    input_per_1m_usd=5.0,
    output_per_1m_usd=15.0,
    cached_input_per_1m_usd=0.5,
    max_input_tokens=None,
    max_output_tokens=None,
    source="test",
)


def test_api_cost_per_request_and_month():
    cost = api_cost(
        PRICE, prompt_tokens=1000, output_tokens=50, cached_share=0.0, monthly_requests=10_000_000
    )
    # 1000 x $5/1M + 50 x $15/1M = 0.005 + 0.00075 = $0.00575; x 10M = $57,500
    assert cost.usd_per_request == pytest.approx(0.00575)
    assert cost.usd_per_month == pytest.approx(57_500)
    assert cost.output_usd_per_month == pytest.approx(7_500)


def test_cached_prompt_tokens_pay_the_cached_price():
    cost = api_cost(PRICE, prompt_tokens=1000, output_tokens=50, cached_share=0.5, monthly_requests=1)
    # 500 x $5/1M + 500 x $0.5/1M + 50 x $15/1M = 0.0025 + 0.00025 + 0.00075 = $0.0035
    assert cost.usd_per_request == pytest.approx(0.0035)
    no_cached = dataclasses.replace(PRICE, cached_input_per_1m_usd=None)
    full = api_cost(no_cached, prompt_tokens=1000, output_tokens=50, cached_share=0.5, monthly_requests=1)
    assert full.usd_per_request == pytest.approx(0.00575) and not full.cached_price_known


def test_bad_cached_share_is_refused():
    with pytest.raises(UsageError, match="--api-cached-share"):
        api_cost(PRICE, prompt_tokens=1, output_tokens=1, cached_share=1.5, monthly_requests=1)


def test_api_names_resolve_exactly_by_suffix_or_fail_with_suggestions():
    prices = packaged_snapshot().api_prices
    assert find_api_price(prices, "gpt-4o-mini").model == "gpt-4o-mini"
    assert find_api_price(prices, "GEMINI-2.5-FLASH").model == "gemini/gemini-2.5-flash"
    with pytest.raises(UsageError, match="ambiguous"):
        find_api_price(prices, "gpt-oss-120b")  # offered by several providers
    with pytest.raises(UnknownNameError, match="did you mean 'gpt-4o-mini'") as err:
        find_api_price(prices, "gpt-4o-mni")
    assert "\n" not in str(err.value)


STAIRS = StepCost("test", 1_000_000.0, (1000.0, 3000.0, 3500.0, 4000.0))


def test_break_even_on_a_staircase_by_hand():
    # a = $0.0015/request, cap = 1M requests per replica-month
    # step 1 (0..1M]:  V* = max(0, 1000 / 0.0015) = 666,667   -> first crossing
    # step 2 (1M..2M]: V* = max(1M, 3000 / 0.0015) = 2M        -> API cheaper until the end of the step
    # step 3 (2M..3M]: V* = max(2M, 3500 / 0.0015) = 2,333,333 -> API cheaper right after the jump
    # step 4 (3M..4M]: V* = max(3M, 4000 / 0.0015 = 2,666,667) = 3M -> self-host cheaper on the whole step
    be = break_even(STAIRS, 0.0015, api_model="m")
    assert be.first_requests_per_month == pytest.approx(1000 / 0.0015)
    assert be.sustained_requests_per_month == pytest.approx(3500 / 0.0015)
    assert be.range_max_requests == 4_000_000


def test_no_break_even_when_a_replica_costs_more_than_the_api_for_its_capacity():
    linear = StepCost("lin", 1_000_000.0, tuple(1000.0 * r for r in range(1, 9)))
    # a full replica's traffic on the API: 1M x $0.0005 = $500 < $1000 per replica: never
    be = break_even(linear, 0.0005)
    assert be.first_requests_per_month is None and be.sustained_requests_per_month is None
    # at $0.002: 1000 / 0.002 = 500,000 on step 1; each later step starts at V* = lo (2000 / 0.002 = 1M = lo)
    be = break_even(linear, 0.002)
    assert be.first_requests_per_month == pytest.approx(500_000)
    assert be.sustained_requests_per_month == pytest.approx(500_000)


def test_best_hybrid_by_hand():
    # V = 1.5M: k=0: 1.5M x 0.0015 = $2250; k=1: $1000 + 0.5M x 0.0015 = $1750; k=2: $3000
    split = best_hybrid(STAIRS, 0.0015, 1_500_000)
    assert split.local_replicas == 1
    assert split.usd_per_month == pytest.approx(1750)
    assert split.api_usd_per_month == pytest.approx(750)
    assert split.local_share == pytest.approx(1 / 1.5)
    assert best_hybrid(STAIRS, 0.0001, 1_500_000).local_replicas == 0  # $150 on the API beats any replica
