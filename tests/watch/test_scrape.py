"""Scrape rounds → ``Observation`` on hand-written expositions: two replicas, one misses a round and restarts, a
gateway with local, hosted and cache routes. Every expected number is worked out in the comments."""

from __future__ import annotations

import math
import time

import pytest

from servewise.errors import UsageError
from servewise.gateway._metrics import GatewayMetrics
from servewise.watch._exposition import SeriesKey, parse_exposition
from servewise.watch._scrape import metrics_url, validate_window
from servewise.watch._window import ScrapeRound, observation_from_rounds

from .scrape_support import gateway_text, vllm_text

A, B, GW = "http://a:8000/metrics", "http://b:8000/metrics", "http://gw:4000/metrics"
INF = math.inf


def _a(
    stop: float,
    abort: float,
    prompt: float,
    ttft: dict[float, float],
    ttft_sum: float,
    *,
    running: float,
    waiting: float,
    kv: float,
) -> dict[SeriesKey, float]:
    text = vllm_text(
        finished={"stop": stop, "abort": abort}, prompt_tokens=prompt, ttft=ttft, ttft_sum=ttft_sum,
        running=running, waiting=waiting, kv=kv,
    )  # fmt: skip
    return parse_exposition(text)


def _rounds() -> list[ScrapeRound]:
    a0 = _a(100, 0, 1000, {0.1: 50, 0.5: 90, INF: 100}, 20.0, running=9, waiting=0, kv=0.9)
    a1 = _a(110, 0, 1100, {0.1: 55, 0.5: 99, INF: 110}, 22.0, running=4, waiting=1, kv=0.5)
    a2 = _a(130, 2, 1300, {0.1: 60, 0.5: 118, INF: 130}, 30.0, running=2, waiting=0, kv=0.2)
    b0 = parse_exposition(
        vllm_text(finished={"stop": 50}, prompt_tokens=500, ttft={0.1: 40, 0.5: 45, INF: 50})
    )
    # b restarted between its answers (new _created): everything it counts now is new
    b2 = parse_exposition(
        vllm_text(finished={"stop": 5}, prompt_tokens=50, ttft={0.1: 5, 0.5: 5, INF: 5}, ttft_sum=0.25,
                  running=3, waiting=6, kv=0.6, created=1015.0)
    )  # fmt: skip
    return [
        ScrapeRound(at_s=1000.0, replicas={A: a0, B: b0}),
        ScrapeRound(at_s=1010.0, replicas={A: a1}, failures={B: "ConnectError: refused"}),
        ScrapeRound(at_s=1020.0, replicas={A: a2, B: b2}),
    ]


def test_window_totals_survive_a_missed_round_and_a_restart() -> None:
    o = observation_from_rounds(_rounds(), endpoints=[A, B])
    # a: 30 stop + 2 abort; b: 5 after its restart
    assert o.requests == 37 and o.qps == pytest.approx(37 / 20) and o.window_s == 20.0
    assert o.errors == 2 and o.error_rate == pytest.approx(2 / 37)  # no gateway: vLLM aborts
    assert o.prompt_tokens_mean == pytest.approx((300 + 50) / 37)
    # TTFT increases: a {0.1: 10, 0.5: 28, +Inf: 30} + b {5, 5, 5} = {15, 33, 35}
    assert o.histograms["ttft"] == {0.1: 15.0, 0.5: 33.0, INF: 35.0}
    assert o.ttft_s[0.5] == pytest.approx(0.1 + 0.4 * (17.5 - 15) / 18)
    assert o.ttft_s[0.95] == 0.5  # rank 33.25 lies in the +Inf bucket
    assert o.ttft_mean_s == pytest.approx((10.0 + 0.25) / 35)
    assert (o.replicas, o.replicas_mean) == (2, 1.5)
    assert (o.running_mean, o.waiting_mean, o.waiting_max) == (4.5, 3.5, 6.0)
    assert o.kv_cache_usage_mean == pytest.approx((0.5 + 0.4) / 2)
    assert o.kv_cache_usage_max == 0.6  # the baseline's 0.9 is before the window's first interval
    assert o.model_name == "meta-llama/Llama-3.1-8B-Instruct" and o.source == "scrape"
    assert o.fallback_share is None and o.spend_usd_per_hour is None
    assert any(
        "http://b:8000/metrics did not answer 1 of 3 scrapes (last: ConnectError" in w for w in o.warnings
    )
    assert any("no gateway metrics" in w for w in o.warnings)


def test_samples_rate_each_replica_over_the_time_since_its_last_answer() -> None:
    first, second = observation_from_rounds(_rounds(), endpoints=[A, B]).samples
    assert (first.t_s, first.interval_s, first.replicas, first.qps) == (10.0, 10.0, 1, 1.0)
    assert (first.running, first.waiting, first.kv_cache_usage_ratio) == (4.0, 1.0, 0.5)
    assert first.ttft_p95_s == 0.5  # {0.1: 5, 0.5: 9, +Inf: 10}: rank 9.5 in +Inf
    # a: 22 requests in 10 s; b: 5 in the 20 s since its last answer
    assert second.replicas == 2 and second.qps == pytest.approx(2.2 + 0.25)
    assert second.kv_cache_usage_ratio == pytest.approx(0.4)
    assert second.ttft_p95_s == pytest.approx(0.1 + 0.4 * (23.75 - 10) / 14)


def test_gateway_shares_errors_and_spend() -> None:
    replica = parse_exposition(vllm_text())
    before = parse_exposition(
        gateway_text({("pool-a", "local", "ok"): (20, 100), ("openai", "queue_cloud", "ok"): (1, 100)},
                     spend_usd=1.0, pools=("pool-a",))
    )  # fmt: skip
    after = parse_exposition(
        gateway_text(
            {
                ("pool-a", "local", "ok"): (35, 100),
                ("openai", "queue_cloud", "ok"): (4, 100),
                ("openai", "fallback", "ok"): (1, 1005),  # born in the interval: counts from 0
                ("pool-a", "local", "error"): (2, 1003),
                ("cache", "cache", "cache_hit"): (3, 1001),
                ("pool-a", "local", "rejected"): (7, 50),  # older than the interval: a baseline, counts 0
            },
            spend_usd=2.5,
            pools=("pool-a",),
        )
    )
    rounds = [
        ScrapeRound(at_s=1000.0, replicas={A: replica}, gateway=before),
        ScrapeRound(at_s=1010.0, replicas={A: replica}, gateway=after),
    ]
    o = observation_from_rounds(rounds, endpoints=[A], gateway=GW)
    # 15 local ok + 3 cloud + 1 fallback + 2 local errors + 3 cache hits = 24 requests; routed (not cache) = 21
    assert o.errors == 2 and o.error_rate == pytest.approx(2 / 24)
    assert o.local_ratio == pytest.approx(17 / 21)
    assert o.fallback_share == pytest.approx(4 / 21)
    assert o.spend_usd == pytest.approx(1.5) and o.spend_usd_per_hour == pytest.approx(1.5 * 3600 / 10)
    assert o.samples[0].spend_usd_per_hour == pytest.approx(540.0)
    assert o.schema_valid_ratio is None
    assert o.requests == 0 and o.ttft_s[0.95] is None  # the replica finished nothing: not observed, not 0
    assert not any("no gateway" in w for w in o.warnings)


def test_endpoint_urls_and_window_checks() -> None:
    assert metrics_url("http://10.0.0.5:8000") == "http://10.0.0.5:8000/metrics"
    assert metrics_url("http://10.0.0.5:8000/v1/") == "http://10.0.0.5:8000/metrics"
    assert metrics_url("https://x/metrics") == "https://x/metrics"
    with pytest.raises(UsageError, match="not an http"):
        metrics_url("10.0.0.5:8000")
    with pytest.raises(UsageError, match="--window must be a positive"):
        validate_window(0.0, 1.0)
    with pytest.raises(UsageError, match="longer than --window"):
        validate_window(5.0, 10.0)
    with pytest.raises(UsageError, match="two scrape rounds"):
        observation_from_rounds(_rounds()[:1], endpoints=[A, B])


def test_the_real_gateway_metrics_are_read_by_their_exposed_names() -> None:
    """The gateway's own ``GatewayMetrics`` renders the readings: the names and labels watch reads are the ones
    the gateway exposes."""
    metrics = GatewayMetrics()
    metrics.set_pool_depth("pool-a", 0.0)
    before = parse_exposition(metrics.render_latest().decode())
    at = time.time()  # when ``before`` was read: the series born after it count from 0
    for route, decision, status, usd in [
        ("pool-a", "local", "ok", 0.01),
        ("pool-a", "local", "ok", 0.01),
        ("pool-a", "local", "error", 0.0),
        ("openai", "queue_cloud", "ok", 0.05),
        ("openai", "fallback", "ok", 0.04),
        ("cache", "cache", "cache_hit", 0.0),
    ]:
        metrics.observe_request(
            org="acme", team=None, route=route, decision=decision, status=status, prompt_tokens=10,
            completion_tokens=5, usd=usd, overhead_s=0.001,
        )  # fmt: skip
    after = parse_exposition(metrics.render_latest().decode())
    replica = parse_exposition(vllm_text())
    rounds = [
        ScrapeRound(at_s=at, replicas={A: replica}, gateway=before),
        ScrapeRound(at_s=at + 10.0, replicas={A: replica}, gateway=after),
    ]
    o = observation_from_rounds(rounds, endpoints=[A], gateway=GW)
    assert o.errors == 1 and o.error_rate == pytest.approx(1 / 6)
    assert o.local_ratio == pytest.approx(3 / 5) and o.fallback_share == pytest.approx(2 / 5)
    assert o.spend_usd == pytest.approx(0.11) and o.spend_usd_per_hour == pytest.approx(0.11 * 360)


def test_without_a_gateway_aborted_and_failed_requests_are_the_errors() -> None:
    reasons = ("stop", "length", "abort", "error", "repetition")
    before = parse_exposition(vllm_text(finished=dict.fromkeys(reasons, 0.0)))
    after = parse_exposition(
        vllm_text(finished={"stop": 5.0, "length": 2.0, "abort": 1.0, "error": 1.0, "repetition": 1.0})
    )
    rounds = [ScrapeRound(at_s=1000.0, replicas={A: before}), ScrapeRound(at_s=1005.0, replicas={A: after})]
    o = observation_from_rounds(rounds, endpoints=[A])
    assert o.requests == 10 and o.errors == 2 and o.error_rate == pytest.approx(0.2)
