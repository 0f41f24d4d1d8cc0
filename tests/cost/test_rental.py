import pytest

from servewise.cost import allowed_offers, cheapest_rental, usd_per_million_tokens
from servewise.types import PricingMode
from tests.factories import offer

SMALL = offer(instance_type="t.1x", gpu_count=1, price_per_hour_usd=2.0, spot_price_per_hour_usd=0.8)
BIG = offer(instance_type="t.8x", gpu_count=8, price_per_hour_usd=12.0, spot_price_per_hour_usd=None)


def _rent(offers, tp, replicas, pricing=PricingMode.on_demand):
    return cheapest_rental(
        offers, tp=tp, replicas=replicas, pricing=pricing, avg_output_tokens_per_s=1.0, avg_tokens_per_s=3.0
    )


def test_whole_instances_few_replicas_prefer_small_instances():
    cost = _rent([SMALL, BIG], tp=1, replicas=3)
    assert cost is not None
    assert [(p.offer.instance_type, p.instances, p.replicas) for p in cost.placements] == [("t.1x", 3, 3)]
    assert cost.usd_per_hour == 6.0
    assert cost.usd_per_month == pytest.approx(6.0 * 730)


def test_whole_instances_many_replicas_pack_into_a_big_one_and_pay_idle_gpus():
    cost = _rent([SMALL, BIG], tp=1, replicas=7)  # 7 x $2 = $14 vs one 8-GPU box at $12
    assert cost is not None
    assert [(p.offer.instance_type, p.instances) for p in cost.placements] == [("t.8x", 1)]
    assert (cost.instances, cost.idle_gpus) == (1, 1)
    assert [item.label for item in cost.line_items] == ["GPU instances", "idle GPUs (included above)"]
    assert cost.line_items[1].usd_per_hour == pytest.approx(1.5)


def test_tensor_parallel_needs_that_many_gpus_in_one_instance():
    assert _rent([SMALL], tp=2, replicas=1) is None
    cost = _rent([SMALL, BIG], tp=4, replicas=3)  # 2 replicas per 8-GPU box -> 2 boxes
    assert cost is not None and (cost.instances, cost.usd_per_hour, cost.idle_gpus) == (2, 24.0, 4)


def test_spot_uses_spot_prices_and_skips_offers_without_one():
    assert allowed_offers([SMALL, BIG], "TestGPU", pricing=PricingMode.spot) == [SMALL]
    cost = _rent([SMALL], tp=1, replicas=2, pricing=PricingMode.spot)
    assert cost is not None and cost.usd_per_hour == pytest.approx(1.6)
    assert cost.placements[0].offer.pricing is PricingMode.spot


def test_provider_filter_is_case_insensitive():
    other = offer(provider="elsewhere")
    assert allowed_offers(
        [SMALL, other], "TestGPU", pricing=PricingMode.on_demand, providers=["TESTCLOUD"]
    ) == [SMALL]


def test_dollars_per_million_tokens_by_hand():
    # $730/month at 1 token/s: 3600 x 730 = 2.628M tokens -> $277.78 per 1M
    assert usd_per_million_tokens(730.0, 1.0) == pytest.approx(730 / 2.628)
    cost = _rent([SMALL], tp=1, replicas=1)
    assert cost is not None
    assert cost.usd_per_1m_output_tokens == pytest.approx(2.0 * 730 / 2.628)
    assert cost.usd_per_1m_tokens == pytest.approx(2.0 * 730 / (3 * 2.628))


def test_every_price_keeps_its_source():
    cost = _rent([SMALL], tp=1, replicas=1)
    assert cost is not None and cost.placements[0].offer.source == "test"


def test_instance_sizes_mix_within_one_provider_and_region():
    # 9 replicas: one 8-GPU box ($12) + one 1-GPU box ($2) = $14/h, cheaper than 9 x $2 or 2 x $12
    cost = _rent([SMALL, BIG], tp=1, replicas=9)
    assert cost is not None and cost.usd_per_hour == pytest.approx(14.0)
    assert [(p.offer.instance_type, p.instances, p.replicas) for p in cost.placements] == [
        ("t.8x", 1, 8),
        ("t.1x", 1, 1),
    ]
    assert cost.idle_gpus == 0


def test_providers_are_not_mixed_in_one_placement():
    elsewhere = offer(provider="othercloud", instance_type="o.1x", price_per_hour_usd=1.0)
    cost = _rent([BIG, elsewhere], tp=1, replicas=9)  # testcloud: 2 x $12 = $24; othercloud: 9 x $1 = $9
    assert cost is not None and {p.offer.provider for p in cost.placements} == {"othercloud"}
    assert cost.usd_per_hour == pytest.approx(9.0)
