"""The gateway's /metrics text, read back with prometheus_client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewise.gateway._metrics import GatewayMetrics, OverheadTimer


@dataclass(frozen=True, slots=True)
class Alert:
    """The fields of the alerter's Alert that the metrics hook reads."""

    kind: str
    scope: str
    threshold_pct: float | None


def _samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render_latest().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def test_requests_tokens_and_dollars_by_tenant_route_and_decision() -> None:
    metrics = GatewayMetrics()
    for _ in range(2):
        metrics.observe_request(org="acme", team="search", route="bulk", decision="local", status="ok",
                                prompt_tokens=100, completion_tokens=50, usd=0.25, overhead_s=0.002)  # fmt: skip
    metrics.observe_request(org="acme", team=None, route="mini", decision="queue_cloud", status="ok",
                            prompt_tokens=10, completion_tokens=5, usd=1.5, overhead_s=0.02)  # fmt: skip
    metrics.observe_request(org="acme", team=None, route="cache", decision="cache", status="cache_hit",
                            prompt_tokens=10, completion_tokens=5, usd=0.0, overhead_s=0.0004)  # fmt: skip
    s = _samples(metrics)
    local = {"org": "acme", "team": "search", "route": "bulk", "decision": "local"}
    assert s[("servewise_gateway_requests_total", _labels(**local, status="ok"))] == 2
    assert s[("servewise_gateway_tokens_total", _labels(**local, kind="input"))] == 200
    assert s[("servewise_gateway_tokens_total", _labels(**local, kind="output"))] == 100
    assert s[("servewise_gateway_spend_usd_total", _labels(**local))] == 0.5
    cloud = {"org": "acme", "team": "", "route": "mini", "decision": "queue_cloud"}
    assert s[("servewise_gateway_spend_usd_total", _labels(**cloud))] == 1.5
    hit = {"org": "acme", "team": "", "route": "cache", "decision": "cache"}
    assert s[("servewise_gateway_spend_usd_total", _labels(**hit))] == 0.0
    assert s[("servewise_gateway_overhead_seconds_count", frozenset())] == 4
    assert s[("servewise_gateway_overhead_seconds_bucket", _labels(le="0.003"))] == 3
    assert s[("servewise_gateway_overhead_seconds_bucket", _labels(le="0.015"))] == 3
    assert s[("servewise_gateway_overhead_seconds_bucket", _labels(le="0.025"))] == 4


def test_cache_budget_upstream_alert_and_pool_series() -> None:
    metrics = GatewayMetrics()
    for hit in (True, False, False, True):
        metrics.observe_cache(hit=hit)
    metrics.set_budget_usage(budget_id=7, scope="team", scope_id="search", window="monthly",
                             spent_usd=400.0, reserved_usd=2.5, hard_usd=500.0)  # fmt: skip
    metrics.set_budget_usage(budget_id=8, scope="org", scope_id="acme", window="daily",
                             spent_usd=3.0, reserved_usd=0.0, hard_usd=None)  # fmt: skip
    metrics.observe_upstream_error(route="bulk", kind="connect")
    metrics.observe_retry(route="mini", allowed=True)
    metrics.observe_retry(route="mini", allowed=False)
    metrics.observe_fallback(from_route="bulk", to_route="mini")
    metrics.alert_fired(kind="threshold", scope="team", window="monthly", threshold_pct=80)
    metrics.on_alert(Alert(kind="anomaly", scope="org", threshold_pct=None))
    metrics.set_pool_depth("bulk", 12.0)
    metrics.set_pool_depth("long", None)
    s = _samples(metrics)
    assert s[("servewise_gateway_cache_lookups_total", _labels(result="hit"))] == 2
    assert s[("servewise_gateway_cache_lookups_total", _labels(result="miss"))] == 2
    assert s[("servewise_gateway_cache_hit_ratio", frozenset())] == 0.5
    budget = {"budget_id": "7", "scope": "team", "scope_id": "search", "window": "monthly"}
    assert s[("servewise_gateway_budget_utilisation_ratio", _labels(**budget))] == 0.8
    assert s[("servewise_gateway_budget_reserved_usd", _labels(**budget))] == 2.5
    no_hard = {"budget_id": "8", "scope": "org", "scope_id": "acme", "window": "daily"}
    assert ("servewise_gateway_budget_utilisation_ratio", _labels(**no_hard)) not in s
    assert s[("servewise_gateway_budget_spent_usd", _labels(**no_hard))] == 3.0
    assert s[("servewise_gateway_upstream_errors_total", _labels(route="bulk", kind="connect"))] == 1
    assert s[("servewise_gateway_retries_total", _labels(route="mini"))] == 1
    assert s[("servewise_gateway_retries_denied_total", frozenset())] == 1
    assert s[("servewise_gateway_fallbacks_total", _labels(from_route="bulk", to_route="mini"))] == 1
    alert = {"kind": "threshold", "scope": "team", "window": "monthly", "threshold_pct": "80"}
    assert s[("servewise_gateway_alerts_fired_total", _labels(**alert))] == 1
    anomaly = {"kind": "anomaly", "scope": "org", "window": "", "threshold_pct": ""}
    assert s[("servewise_gateway_alerts_fired_total", _labels(**anomaly))] == 1
    assert s[("servewise_gateway_pool_queue_depth", _labels(pool="bulk"))] == 12.0
    assert s[("servewise_gateway_pool_up", _labels(pool="long"))] == 0.0
    assert ("servewise_gateway_pool_queue_depth", _labels(pool="long")) not in s


def test_two_instances_never_share_series() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.observe_cache(hit=True)
    hit = ("servewise_gateway_cache_lookups_total", _labels(result="hit"))
    assert _samples(first)[hit] == 1
    assert hit not in _samples(second)
    assert _samples(second)[("servewise_gateway_cache_hit_ratio", frozenset())] == 0.0


def test_overhead_is_total_time_minus_the_upstream_waits() -> None:
    now = [10.0]
    timer = OverheadTimer(clock=lambda: now[0])
    now[0] += 0.001  # auth, parsing, routing
    with timer.upstream():
        now[0] += 0.200  # connect + response head
    now[0] += 0.0005  # re-encoding the chunk
    with timer.upstream():
        now[0] += 0.050  # waiting for the next chunk
    now[0] += 0.001  # settle + ledger enqueue
    assert timer.upstream_s == pytest.approx(0.250)
    assert timer.overhead_s() == pytest.approx(0.0025)
