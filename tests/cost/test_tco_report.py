"""One deployment priced five ways against hosted APIs, with the tier recommendation, by hand."""

import dataclasses

import pytest

from servewise.catalog import ApiPrice
from servewise.cost import DEFAULT_TERMS, Deployment, OwnedTerms, Tier, tco_report
from tests.factories import accelerator, offer

SMALL = offer(instance_type="t.1x", gpu_count=1, price_per_hour_usd=2.0, spot_price_per_hour_usd=0.8)
# 0.5 req/s on average, peak 1.0, one replica serves 1.0 req/s at the SLO:
# monthly = 0.5 x 3600 x 730 = 1,314,000 requests; one replica covers 1.0 x 2,628,000 x 0.5 = 1,314,000 of them
DEPLOYMENT = Deployment(
    model="TestModel-10B",
    gpu=accelerator(list_price_usd=30_000.0, tdp_w=500.0),
    tp=1,
    replicas=1,
    max_qps_per_replica=1.0,
    avg_qps=0.5,
    peak_qps=1.0,
    prompt_tokens=1000.0,
    output_tokens=50.0,
)
DEAR = ApiPrice("p", "dear", 5.0, 15.0, None, None, None, "test")  # $0.00575 per request
CHEAP = ApiPrice("p", "cheap", 0.1, 0.4, None, None, None, "test")  # 1000 x 0.1/1M + 50 x 0.4/1M = $0.00012


def _report(apis=(DEAR,), **kwargs):
    return tco_report(DEPLOYMENT, [SMALL], apis, terms=DEFAULT_TERMS, owned_terms=OwnedTerms(), **kwargs)


def test_every_option_by_hand():
    report = _report()
    assert report.monthly_requests == pytest.approx(1_314_000)
    assert report.requests_per_replica_month == pytest.approx(1_314_000)
    months = {o.name: o.usd_per_month for o in report.options}
    assert months == pytest.approx(
        {
            "on-demand": 1460.0,  # $2 x 730
            "spot": 1460.0,  # one replica: the 20% floor rounds up to it, so it stays on-demand
            "reserved-1y": 919.8,  # 1460 x 0.63
            "reserved-3y": 657.0,  # 1460 x 0.45
            "owned": 1215.10946,  # 1.6645335 $/GPU-h x 730 (see test_owned)
        }
    )
    assert [a.usd_per_month for a in report.apis] == pytest.approx([7555.5])  # 1,314,000 x $0.00575


def test_self_hosting_wins_against_a_dear_api_and_says_where_it_breaks_even():
    report = _report()
    assert report.tier is Tier.self_host and report.recommended == "self-host reserved-3y"
    assert report.recommended_usd_per_month == pytest.approx(657.0)
    be = next(b for b in report.break_evens if b.option == "reserved-3y")
    assert be.first_requests_per_month == pytest.approx(657.0 / 0.00575)  # 114,260.9 requests/month
    assert any("break-even reserved-3y vs dear" in reason for reason in report.reasons)


def test_a_cheap_api_wins_and_never_breaks_even():
    report = _report(apis=(CHEAP,))
    # 1,314,000 x $0.00012 = $157.68 < $657; a replica ($657) costs more than its 1,314,000 requests on the API
    assert report.tier is Tier.api_only and report.recommended_usd_per_month == pytest.approx(157.68)
    assert all(b.first_requests_per_month is None for b in report.break_evens if b.option != "owned")


def test_owned_wins_when_the_hardware_is_cheap():
    report = _report(purchase_usd=5_000.0)
    # 5000 / 26,280 = 0.190259 x 1.4 = 0.266362 + power 0.06636 = 0.332722 $/h x 730 = $242.89/month
    assert report.tier is Tier.owned and report.recommended_usd_per_month == pytest.approx(242.887, rel=1e-4)
    assert report.owned is not None and not report.owned.price_is_guess


def test_hybrid_sends_the_overflow_to_the_api():
    # V = 1.25 x 2,628,000 = 3,285,000 requests = 2.5 replicas' worth (each covers 1,314,000 at reserved-3y $657).
    # API at $0.0006/request: a full replica's requests cost $788.4 > $657, so two local replicas pay; the third
    # would carry only 0.5 x 1,314,000 x $0.0006 = $394.2 < $657 of traffic, so that half goes to the API
    d = dataclasses.replace(DEPLOYMENT, avg_qps=1.25, peak_qps=2.5, replicas=3)
    mid = ApiPrice("p", "mid", 0.3, 6.0, None, None, None, "test")  # 1000 x 0.3/1M + 50 x 6/1M = $0.0006
    report = tco_report(d, [SMALL], [mid], terms=DEFAULT_TERMS, owned_terms=OwnedTerms())
    assert report.hybrid is not None and report.hybrid.local_replicas == 2
    # 2 x $657 + 0.5 x 1,314,000 x $0.0006 = 1314 + 394.2 = $1708.2
    assert report.hybrid.usd_per_month == pytest.approx(1708.2)
    assert report.tier is Tier.hybrid


def test_chart_has_one_series_per_option_and_api():
    report = _report()
    labels = [label for label, _ in report.chart_series]
    assert labels == ["on-demand", "spot", "reserved-1y", "reserved-3y", "owned", "API dear"]
    assert all(len(values) == len(report.chart_volumes) for _, values in report.chart_series)
    assert report.monthly_requests in report.chart_volumes
