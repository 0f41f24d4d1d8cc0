"""The default routing policy as a table of crafted states, the local-share tracker and the retry budget."""

from __future__ import annotations

import pytest

from servewise.errors import UsageError
from servewise.gateway._retry import RetryBudget
from servewise.gateway._routing import (
    DefaultPolicy,
    LocalShareTracker,
    NoRouteError,
    RequestFacts,
    RouteInfo,
    RoutingSettings,
    RoutingState,
    parse_priority,
)

BULK = RouteInfo("bulk", "local", 8192, 0.05, 0.10)
BULK2 = RouteInfo("bulk2", "local", 8192, 0.06, 0.12)
LONG = RouteInfo("long", "local", 131072, 0.20, 0.40)
CHEAP_API = RouteInfo("mini", "api", None, 0.40, 1.60)
DEAR_API = RouteInfo("big", "api", None, 2.00, 8.00)
ROUTES = (BULK, LONG, CHEAP_API, DEAR_API)
SETTINGS = RoutingSettings(long_context_route="long", queue_threshold=8, local_ratio_target=0.98)

CASES = [
    # id, routes, facts kwargs, depths, local_share, expected route, label, first fallback
    ("idle local", ROUTES, {}, {"bulk": 0.0, "long": 0.0}, None, "bulk", "local", "long"),
    ("at threshold stays", ROUTES, {}, {"bulk": 8.0, "long": 9.0}, 1.0, "bulk", "local", "long"),
    ("least loaded local", (BULK, BULK2, CHEAP_API), {}, {"bulk": 5.0, "bulk2": 1.0}, 1.0, "bulk2", "local", "bulk"),
    ("deep queue overflows", (BULK, CHEAP_API, DEAR_API), {}, {"bulk": 20.0}, 0.99, "mini", "queue_cloud", "bulk"),
    ("ratio target holds", (BULK, CHEAP_API), {}, {"bulk": 20.0}, 0.97, "bulk", "queue_local", "mini"),
    ("no API: waits", (BULK, BULK2), {}, {"bulk": 20.0, "bulk2": 30.0}, 1.0, "bulk", "queue_local", "bulk2"),
    ("low priority waits", (BULK, CHEAP_API), {"priority": "low"}, {"bulk": 20.0}, 1.0, "bulk", "queue_local", "mini"),
    ("high priority forced", ROUTES, {"priority": "high"}, {"bulk": 50.0, "long": 60.0}, 1.0, "bulk", "force_local",
     "long"),
    ("high priority, pools down", (BULK, CHEAP_API), {"priority": "high"}, {"bulk": None}, 1.0, "mini", "fallback",
     "bulk"),
    ("long prompt", ROUTES, {"prompt_tokens": 5000}, {"bulk": 0.0, "long": 3.0}, 1.0, "long", "long_context",
     "bulk"),
    ("long prompt, long pool down", ROUTES, {"prompt_tokens": 5000}, {"bulk": 0.0, "long": None}, 1.0, "bulk",
     "long_context", "mini"),
    ("too long for bulk", ROUTES, {"prompt_tokens": 4000, "max_tokens": 5000}, {"bulk": 0.0, "long": 0.0}, 1.0,
     "long", "local", "mini"),
    ("budget low: cheapest", ROUTES, {"budgets_left_fraction": 0.05}, {"bulk": 50.0, "long": 0.0}, 1.0, "bulk",
     "budget_cloud", "long"),
    ("budget low, cheap local down", (BULK, DEAR_API, CHEAP_API), {"budgets_left_fraction": 0.01}, {"bulk": None},
     1.0, "mini", "budget_cloud", "big"),
    ("budget fine", ROUTES, {"budgets_left_fraction": 0.5}, {"bulk": 0.0, "long": 0.0}, 1.0, "bulk", "local", "long"),
    ("local down", (BULK, CHEAP_API), {}, {"bulk": None}, 1.0, "mini", "fallback", "bulk"),
    ("everything down", (BULK, BULK2), {}, {"bulk": None, "bulk2": None}, 1.0, "bulk", "fallback", "bulk2"),
    ("not polled = up", (BULK, CHEAP_API), {}, {}, None, "bulk", "local", "mini"),
    ("API only", (DEAR_API, CHEAP_API), {}, {}, None, "mini", "fallback", "big"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("routes", "facts", "depths", "share", "route", "label", "first_fallback"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decision_table(
    routes: tuple[RouteInfo, ...],
    facts: dict[str, object],
    depths: dict[str, float | None],
    share: float | None,
    route: str,
    label: str,
    first_fallback: str,
) -> None:
    request = RequestFacts(**{"model": "Llama-3.1-8B", "prompt_tokens": 500, "max_tokens": 256, **facts})  # type: ignore[arg-type]
    decision = DefaultPolicy(SETTINGS).decide(request, routes, RoutingState(depths, share))
    assert (decision.route, decision.label) == (route, label), decision.reason
    assert decision.fallbacks[0] == first_fallback
    fitting = {r.name for r in routes if r.fits(request.context_tokens)}
    assert decision.route not in decision.fallbacks
    assert set(decision.fallbacks) | {decision.route} == fitting
    assert decision.reason


def test_down_pools_come_last_among_fallbacks() -> None:
    decision = DefaultPolicy(SETTINGS).decide(
        RequestFacts("m", 100, 100), (BULK, BULK2, CHEAP_API), RoutingState({"bulk": None, "bulk2": 0.0})
    )
    assert (decision.route, decision.fallbacks) == ("bulk2", ("mini", "bulk"))


def test_a_request_no_route_can_hold_names_the_fix() -> None:
    facts = RequestFacts("m", prompt_tokens=9000, max_tokens=1000)
    with pytest.raises(NoRouteError, match=r"needs 10000 tokens.*'bulk' takes 8192; shorten the prompt"):
        DefaultPolicy(SETTINGS).decide(facts, (BULK, BULK2), RoutingState({}))
    with pytest.raises(NoRouteError, match="no route serves model 'm'"):
        DefaultPolicy(SETTINGS).decide(facts, (), RoutingState({}))


def test_priority_header() -> None:
    assert parse_priority(None) == "normal"
    assert parse_priority(" HIGH ") == "high"
    assert parse_priority("low") == "low"
    with pytest.raises(UsageError, match=r"x-servewise-priority: 'urgent' .* use high, normal or low"):
        parse_priority("urgent")


def test_settings_reject_nonsense() -> None:
    with pytest.raises(UsageError, match="local_ratio_target must be in"):
        RoutingSettings(local_ratio_target=1.5)
    with pytest.raises(UsageError, match="max_retries"):
        RoutingSettings(max_retries=-1)
    assert RoutingSettings(poll_interval_s=0.5).stale_s == 3 * (
        0.5 + 1.0
    )  # three polls missed, timeouts included
    assert RoutingSettings(poll_interval_s=0.5, stale_after_s=2).stale_s == 2
    with pytest.raises(UsageError, match="poll_timeout_s"):
        RoutingSettings(poll_timeout_s=0)


def test_local_share_over_a_window() -> None:
    tracker = LocalShareTracker(window=4)
    assert tracker.share() is None
    for kind in ("local", "local", "api", "local"):
        tracker.record(kind)
    assert tracker.share() == 0.75
    tracker.record("api")  # the first "local" leaves the window
    tracker.record("api")
    assert tracker.share() == 0.25


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retry_budget_allows_the_reserve_then_a_share_of_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_per_s=0.5, ttl_s=10, clock=clock)  # reserve: 5 retries per 10 s
    assert [budget.try_withdraw() for _ in range(6)] == [True] * 5 + [False]
    for _ in range(10):
        budget.deposit()  # 10 requests → 2 more retries
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    clock.now += 11  # everything expired: the reserve is back, deposits gone
    assert budget.balance() == pytest.approx(5.0)


def test_retry_budget_with_no_reserve_is_a_pure_ratio() -> None:
    clock = FakeClock()
    budget = RetryBudget(ratio=0.1, min_per_s=0, ttl_s=10, clock=clock)
    assert not budget.try_withdraw()
    for second in range(20):
        clock.now = 1000.0 + second * 0.5
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    with pytest.raises(UsageError, match="retry_ttl_s must be in"):
        RetryBudget(ttl_s=120)
