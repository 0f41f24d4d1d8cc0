"""Spot (overhead + on-demand floor) and reserved (1y/3y discount) prices, by hand, on round-number offers."""

import dataclasses

import pytest

from servewise.cost import (
    DEFAULT_TERMS,
    LIST_TERMS,
    PricingTerms,
    cheapest_rental,
    on_demand_replicas,
    rental_curve_usd_per_hour,
)
from servewise.errors import UsageError
from servewise.planner import make_plan
from servewise.types import PricingMode
from servewise.workload import build_workload
from tests.factories import offer, packaged_snapshot

SMALL = offer(instance_type="t.1x", gpu_count=1, price_per_hour_usd=2.0, spot_price_per_hour_usd=0.8)
BIG = offer(instance_type="t.8x", gpu_count=8, price_per_hour_usd=12.0, spot_price_per_hour_usd=None)


def _rent(offers, replicas, pricing, terms=DEFAULT_TERMS, tp=1):
    return cheapest_rental(
        offers,
        tp=tp,
        replicas=replicas,
        pricing=pricing,
        avg_output_tokens_per_s=1.0,
        avg_tokens_per_s=3.0,
        terms=terms,
    )


def test_reserved_is_on_demand_less_the_commitment_discount():
    one = _rent([SMALL], 3, PricingMode.reserved_1y)
    three = _rent([SMALL], 3, PricingMode.reserved_3y)
    assert one is not None and three is not None
    assert one.usd_per_hour == pytest.approx(3.78)  # 3 x $2 x (1 - 0.37)
    assert one.usd_per_month == pytest.approx(2759.4)  # 3.78 x 730
    assert three.usd_per_hour == pytest.approx(2.7)  # 3 x $2 x (1 - 0.55)
    assert one.placements[0].offer.pricing is PricingMode.reserved_1y
    assert "37% off on-demand" in one.line_items[0].detail and "assumption" in one.line_items[0].detail


def test_reserved_discount_is_a_parameter():
    terms = dataclasses.replace(DEFAULT_TERMS, reserved_1y_discount=0.5)
    cost = _rent([SMALL], 2, PricingMode.reserved_1y, terms)
    assert cost is not None and cost.usd_per_hour == pytest.approx(2.0)  # 2 x $2 x 0.5


def test_spot_adds_the_overhead_and_keeps_the_on_demand_floor():
    # 5 replicas: floor = ceil(0.2 x 5) = 1 on-demand at $2; 4 spot at $0.8 x 1.1 = $3.52 -> $5.52/h
    cost = _rent([SMALL], 5, PricingMode.spot)
    assert cost is not None
    assert cost.usd_per_hour == pytest.approx(5.52)
    items = {item.label: item.usd_per_hour for item in cost.line_items}
    assert items == pytest.approx(
        {
            "GPU instances": 3.2,  # 4 x $0.8
            "GPU instances (on-demand floor)": 2.0,
            "spot interruption overhead": 0.32,  # 10% of $3.2
        }
    )
    assert sorted((p.offer.pricing, p.replicas) for p in cost.placements) == [
        (PricingMode.on_demand, 1),
        (PricingMode.spot, 4),
    ]


def test_floor_replicas_and_share_bounds():
    terms = dataclasses.replace(DEFAULT_TERMS, on_demand_floor_replicas=2)
    cost = _rent([SMALL], 5, PricingMode.spot, terms)
    assert cost is not None and cost.usd_per_hour == pytest.approx(6.64)  # 2 x $2 + 3 x $0.88
    assert on_demand_replicas(5, dataclasses.replace(DEFAULT_TERMS, on_demand_floor_share=1.0)) == 5
    assert on_demand_replicas(1, DEFAULT_TERMS) == 1  # ceil(0.2): a lone replica has no spot fallback
    assert on_demand_replicas(10, LIST_TERMS) == 0


def test_listed_spot_terms_keep_the_planner_price():
    cost = _rent([SMALL], 2, PricingMode.spot, LIST_TERMS)
    assert cost is not None and cost.usd_per_hour == pytest.approx(1.6)  # 2 x $0.8, no overhead, no floor
    assert [item.label for item in cost.line_items] == ["GPU instances"]


def test_the_floor_may_use_instances_without_a_spot_price():
    # 10 replicas: floor 2 on-demand, 8 spot. The floor's cheapest cover is 2 x t.1x ($4) not a t.8x ($12)
    cost = _rent([SMALL, BIG], 10, PricingMode.spot)
    assert cost is not None and cost.usd_per_hour == pytest.approx(4.0 + 8 * 0.88)


@pytest.mark.parametrize(
    "pricing", [PricingMode.on_demand, PricingMode.spot, PricingMode.reserved_1y, PricingMode.reserved_3y]
)
def test_the_curve_equals_pricing_each_replica_count(pricing):
    curve = rental_curve_usd_per_hour(
        [SMALL, BIG], tp=1, max_replicas=12, pricing=pricing, terms=DEFAULT_TERMS
    )
    for replicas, hourly in enumerate(curve, start=1):
        cost = _rent([SMALL, BIG], replicas, pricing)
        assert cost is not None and hourly == pytest.approx(cost.usd_per_hour), replicas


def test_the_curve_is_infinite_where_nothing_fits():
    assert (
        rental_curve_usd_per_hour([SMALL], tp=2, max_replicas=3, pricing=PricingMode.on_demand)
        == (float("inf"),) * 3
    )


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("spot_overhead", -0.1, "--spot-overhead"),
        ("on_demand_floor_share", 1.5, "--on-demand-floor"),
        ("on_demand_floor_replicas", -1, "--on-demand-floor-replicas"),
        ("reserved_1y_discount", 1.0, "--reserved-1y-discount"),
        ("reserved_3y_discount", -0.2, "--reserved-3y-discount"),
    ],
)
def test_bad_terms_name_the_flag(field, value, flag):
    with pytest.raises(UsageError, match=flag):
        PricingTerms(**{field: value})


def test_the_planner_plans_with_a_reserved_mode_unchanged():
    """``plan --pricing reserved-1y`` goes through the planner as is: the same choice at 63% of on-demand."""
    template = next(u for u in packaged_snapshot().use_cases if u.name == "chatbot_conversational")

    def plan(pricing: str):
        constraints = {"gpus": ["L4"], "models": ["Llama-3.2-3B"], "min_params_b": 0, "pricing": pricing}
        workload = build_workload(
            template=template, overrides={"traffic": {"qps": 20}, "constraints": constraints}
        )
        return make_plan(workload, packaged_snapshot()).chosen_option

    on_demand, reserved = plan("on-demand"), plan("reserved-1y")
    assert on_demand is not None and reserved is not None
    assert (reserved.candidate, reserved.replicas) == (on_demand.candidate, on_demand.replicas)
    assert reserved.cost.usd_per_month == pytest.approx(0.63 * on_demand.cost.usd_per_month)
    assert {p.offer.pricing for p in reserved.cost.placements} == {PricingMode.reserved_1y}
