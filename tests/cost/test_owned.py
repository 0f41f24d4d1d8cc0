"""Owned-hardware TCO by hand: amortisation + power + host/network/ops overhead."""

import pytest

from servewise.cost import OwnedTerms, owned_cost
from servewise.errors import UsageError
from tests.factories import accelerator

GPU = accelerator(list_price_usd=30_000.0, tdp_w=500.0)


def test_owned_cost_by_hand():
    cost = owned_cost(GPU, 4, OwnedTerms())
    assert cost is not None
    # amortisation: 30,000 / (36 x 730) = 30,000 / 26,280 = 1.1415525 $/GPU-h
    # power: 0.5 kW x 0.70 x PUE 1.58 x $0.12 = 0.066360 $/GPU-h
    # overhead: 0.40 x 1.1415525 = 0.4566210 $/GPU-h
    # total: 1.6645335 $/GPU-h; 4 GPUs: 6.658134 $/h; x 730 = 4,860.438 $/month
    assert cost.usd_per_gpu_hour == pytest.approx(1.6645335, rel=1e-6)
    assert cost.usd_per_hour == pytest.approx(6.658134, rel=1e-6)
    assert cost.usd_per_month == pytest.approx(4860.438, rel=1e-6)
    assert cost.capex_usd == 120_000
    items = {i.label: i.usd_per_hour for i in cost.line_items}
    assert items == pytest.approx(
        {"purchase amortisation": 4 * 1.1415525, "power": 4 * 0.06636, "host, network, ops": 4 * 0.456621},
        rel=1e-6,
    )


def test_the_catalog_price_is_flagged_a_guess_and_a_flag_replaces_it():
    guessed = owned_cost(GPU, 1, OwnedTerms())
    given = owned_cost(GPU, 1, OwnedTerms(), purchase_usd=26_280.0)
    assert guessed is not None and guessed.price_is_guess and "GUESS" in guessed.price_source
    assert given is not None and not given.price_is_guess and given.price_source == "--purchase-price-usd"
    # 26,280 / 26,280 = $1 amortisation + $0.4 overhead + $0.06636 power
    assert given.usd_per_gpu_hour == pytest.approx(1.46636)


def test_terms_change_the_numbers():
    # 24 months, PUE 1.2, $0.20/kWh, full TDP, no overhead: 30,000 / (24 x 730) = 1.7123288; 0.5 x 1 x 1.2 x 0.2 = 0.12
    terms = OwnedTerms(amortize_months=24, utilization=1.0, pue=1.2, usd_per_kwh=0.2, ops_overhead=0.0)
    cost = owned_cost(GPU, 1, terms)
    assert cost is not None and cost.usd_per_gpu_hour == pytest.approx(1.7123288 + 0.12, rel=1e-6)


def test_no_price_or_tdp_means_no_owned_option():
    assert owned_cost(accelerator(list_price_usd=None), 1, OwnedTerms()) is None
    assert owned_cost(accelerator(list_price_usd=1000.0, tdp_w=None), 1, OwnedTerms()) is None


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"amortize_months": 0}, "--amortize-months"),
        ({"pue": 0.9}, "--pue"),
        ({"utilization": 0}, "--utilization"),
        ({"utilization": 1.5}, "--utilization"),
        ({"usd_per_kwh": -0.1}, "--usd-per-kwh"),
        ({"ops_overhead": -1}, "--ops-overhead"),
    ],
)
def test_bad_owned_terms_name_the_flag(kwargs, flag):
    with pytest.raises(UsageError, match=flag):
        OwnedTerms(**kwargs)


def test_a_bad_purchase_price_is_refused():
    with pytest.raises(UsageError, match="--purchase-price-usd"):
        owned_cost(GPU, 1, OwnedTerms(), purchase_usd=-5.0)
