"""Which upstream serves a request: a pluggable ``RoutingPolicy`` and the default rules.

The proxy gathers the facts about one request (``RequestFacts``), the routes that may serve the requested model
(``RouteInfo``) and the live state (``RoutingState``: queue depth per local pool from ``QueueDepthPoller``, the
recent local share from ``LocalShareTracker``), and asks the policy. The answer names one route, a label for the
ledger and the metrics, the ordered fallbacks to try on an upstream error and a one-line reason.

``DefaultPolicy`` decides in this order (the first rule that applies wins):

1. **fit**: only routes whose ``max_context_tokens`` holds ``prompt_tokens + max_tokens`` are candidates; none →
   ``NoRouteError`` (the proxy answers 400). A local route whose depth is *unknown* (poll failed or stale) is
   avoided while any other candidate exists.
2. **long_context**: ``prompt_tokens > long_context_tokens`` → the configured long-context route if it fits and is
   up, else the best fitting route (label ``long_context`` either way).
3. **force_local**: priority ``high`` → the least-loaded live local pool, whatever its queue and the ratio target.
4. **budget_cloud**: the tightest budget's remaining fraction < ``downgrade_below_fraction`` → the route with the
   lowest worst-case cost for this request (local or API: the budget, not the queue, decides).
5. **queue**: the least-loaded live local pool has ``depth > queue_threshold`` → the cheapest API route
   (``queue_cloud``) while the recent local share is at or above ``local_ratio_target`` (no history counts as
   1.0); otherwise it stays local (``queue_local``). Priority ``low`` never overflows to an API (it waits:
   ``queue_local``).
6. **local**: the least-loaded live local pool.
7. **fallback**: no live local pool → the cheapest API; no API either → the first fitting local pool anyway
   (trying beats refusing; the proxy's retries cover the rest).

Costs compare the request's worst case: ``prompt_tokens × usd_per_1m_input + max_tokens × usd_per_1m_output``
(÷ 1e6). Ties keep the configured route order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from servewise.errors import UsageError

from ._queue import stale_default_s

__all__ = [
    "DECISION_LABELS",
    "DecisionLabel",
    "DefaultPolicy",
    "LocalShareTracker",
    "NoRouteError",
    "Priority",
    "RequestFacts",
    "RouteDecision",
    "RouteInfo",
    "RoutingPolicy",
    "RoutingSettings",
    "RoutingState",
    "parse_priority",
]

DecisionLabel = Literal[
    "local", "queue_local", "queue_cloud", "force_local", "budget_cloud", "long_context", "fallback", "cache"
]
DECISION_LABELS: tuple[str, ...] = (
    "local", "queue_local", "queue_cloud", "force_local", "budget_cloud", "long_context", "fallback", "cache",
)  # fmt: skip
Priority = Literal["high", "normal", "low"]
PRIORITY_HEADER = "x-servewise-priority"


class NoRouteError(UsageError):
    """No configured route can hold the request (too long for every route's context)."""


def parse_priority(header_value: str | None) -> Priority:
    """The ``x-servewise-priority`` header as a priority; absent → ``normal``; anything else is a usage error."""
    if header_value is None or not header_value.strip():
        return "normal"
    value = header_value.strip().lower()
    if value == "high":
        return "high"
    if value == "normal":
        return "normal"
    if value == "low":
        return "low"
    raise UsageError(f"header {PRIORITY_HEADER}: {header_value!r} is not a priority; use high, normal or low")


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """The ``routing:`` block of the gateway config (G1's pydantic model carries the same field names)."""

    long_context_tokens: int = 4096
    long_context_route: str | None = None
    local_ratio_target: float = 0.98
    """Share of requests (over the tracker's window) that must stay on local pools when the queue is deep."""
    queue_threshold: float = 8.0
    """``vllm:num_requests_waiting`` above which a local pool counts as congested."""
    poll_interval_s: float = 2.0
    poll_timeout_s: float = 1.0
    stale_after_s: float | None = None
    """A depth older than this is unknown (None: three intervals plus timeouts, ``stale_default_s``)."""
    downgrade_below_fraction: float = 0.1
    max_retries: int = 2
    """Upstream attempts after the first, per request (each also needs a token from ``RetryBudget``)."""
    retry_budget_ratio: float = 0.2
    retry_min_per_s: float = 10.0
    retry_ttl_s: float = 10.0

    def __post_init__(self) -> None:
        if self.long_context_tokens <= 0:
            raise UsageError(f"routing.long_context_tokens must be > 0 (got {self.long_context_tokens})")
        if not 0.0 <= self.local_ratio_target <= 1.0:
            raise UsageError(f"routing.local_ratio_target must be in [0, 1] (got {self.local_ratio_target})")
        if self.queue_threshold < 0:
            raise UsageError(f"routing.queue_threshold must be >= 0 (got {self.queue_threshold})")
        if self.poll_interval_s <= 0:
            raise UsageError(f"routing.poll_interval_s must be > 0 (got {self.poll_interval_s})")
        if self.poll_timeout_s <= 0:
            raise UsageError(f"routing.poll_timeout_s must be > 0 (got {self.poll_timeout_s})")
        if self.stale_after_s is not None and self.stale_after_s <= 0:
            raise UsageError(f"routing.stale_after_s must be > 0 or null (got {self.stale_after_s})")
        if not 0.0 <= self.downgrade_below_fraction <= 1.0:
            raise UsageError(
                f"routing.downgrade_below_fraction must be in [0, 1] (got {self.downgrade_below_fraction})"
            )
        if self.max_retries < 0:
            raise UsageError(f"routing.max_retries must be >= 0 (got {self.max_retries})")

    @property
    def stale_s(self) -> float:
        if self.stale_after_s is not None:
            return self.stale_after_s
        return stale_default_s(self.poll_interval_s, self.poll_timeout_s)


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One upstream the request may go to; prices in $ per 1M tokens (local pools: $/hour spread over tokens)."""

    name: str
    kind: Literal["local", "api"]
    max_context_tokens: int | None
    usd_per_1m_input: float
    usd_per_1m_output: float

    def fits(self, context_tokens: int) -> bool:
        return self.max_context_tokens is None or context_tokens <= self.max_context_tokens

    def worst_case_usd(self, prompt_tokens: int, max_tokens: int) -> float:
        return (prompt_tokens * self.usd_per_1m_input + max_tokens * self.usd_per_1m_output) / 1e6


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the policy knows about one request; ``budgets_left_fraction`` is the tightest applicable budget's
    ``(hard − spent − reserved) / hard`` (None: no hard budget applies)."""

    model: str
    prompt_tokens: int
    max_tokens: int
    priority: Priority = "normal"
    budgets_left_fraction: float | None = None
    stream: bool = False

    @property
    def context_tokens(self) -> int:
        return self.prompt_tokens + self.max_tokens


@dataclass(frozen=True, slots=True)
class RoutingState:
    """Live inputs. ``queue_depth``: a local route ABSENT from it is not polled (assumed up, depth 0); PRESENT with
    None is down, unreadable or stale (avoided). ``local_share``: fraction of recent requests served locally (None:
    no history yet)."""

    queue_depth: Mapping[str, float | None]
    local_share: float | None = None

    def depth(self, route: str) -> float | None:
        return self.queue_depth.get(route, 0.0)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: str
    label: DecisionLabel
    fallbacks: tuple[str, ...]
    """Routes to try, in order, if ``route`` fails before its first byte (each retry labelled ``fallback``)."""
    reason: str


class RoutingPolicy(Protocol):
    """A routing policy: pure, fast (called on every request), no I/O."""

    def decide(
        self, facts: RequestFacts, routes: Sequence[RouteInfo], state: RoutingState
    ) -> RouteDecision: ...


class LocalShareTracker:
    """Share of the last ``window`` routed requests that went to a local pool (the ratio the target holds)."""

    def __init__(self, window: int = 1000) -> None:
        if window <= 0:
            raise UsageError(f"the local-share window must be > 0 requests (got {window})")
        self._kinds: deque[bool] = deque(maxlen=window)
        self._local = 0

    def record(self, kind: Literal["local", "api"]) -> None:
        """Count one request served by a route of ``kind`` (call once per request, with the route that served)."""
        if len(self._kinds) == self._kinds.maxlen and self._kinds[0]:
            self._local -= 1
        is_local = kind == "local"
        self._kinds.append(is_local)
        self._local += is_local

    def share(self) -> float | None:
        return self._local / len(self._kinds) if self._kinds else None


class DefaultPolicy:
    """The rules in this module's docstring; ``settings`` is the config's ``routing:`` block."""

    def __init__(self, settings: RoutingSettings | None = None) -> None:
        self.settings = settings or RoutingSettings()

    def decide(self, facts: RequestFacts, routes: Sequence[RouteInfo], state: RoutingState) -> RouteDecision:
        s = self.settings
        fitting = [r for r in routes if r.fits(facts.context_tokens)]
        if not fitting:
            raise NoRouteError(_no_route_message(facts, routes))

        def cost(r: RouteInfo) -> float:
            return r.worst_case_usd(facts.prompt_tokens, facts.max_tokens)

        order = {r.name: i for i, r in enumerate(routes)}
        live_local = sorted(
            (r for r in fitting if r.kind == "local" and state.depth(r.name) is not None),
            key=lambda r: (state.depth(r.name) or 0.0, order[r.name]),
        )
        apis = sorted((r for r in fitting if r.kind == "api"), key=lambda r: (cost(r), order[r.name]))
        unknown_local = [r for r in fitting if r.kind == "local" and state.depth(r.name) is None]
        preference = [*live_local, *apis, *unknown_local]

        def decide(route: RouteInfo, label: DecisionLabel, reason: str) -> RouteDecision:
            fallbacks = tuple(r.name for r in preference if r.name != route.name)
            return RouteDecision(route.name, label, fallbacks, reason)

        if facts.prompt_tokens > s.long_context_tokens:
            wanted = next((r for r in fitting if r.name == s.long_context_route), None)
            if wanted is not None and (wanted.kind == "api" or state.depth(wanted.name) is not None):
                return decide(
                    wanted, "long_context", f"prompt {facts.prompt_tokens} > {s.long_context_tokens} tokens"
                )
            return decide(
                preference[0],
                "long_context",
                f"prompt {facts.prompt_tokens} > {s.long_context_tokens} tokens; long-context route "
                f"{s.long_context_route!r} {'is down' if wanted else 'does not fit or is not configured'}",
            )

        if facts.priority == "high" and live_local:
            return decide(live_local[0], "force_local", "priority high stays on a local pool")

        left = facts.budgets_left_fraction
        if left is not None and left < s.downgrade_below_fraction:
            cheapest = min([*live_local, *apis] or preference, key=lambda r: (cost(r), order[r.name]))
            return decide(
                cheapest,
                "budget_cloud",
                f"budget {left:.0%} left < {s.downgrade_below_fraction:.0%}: cheapest route",
            )

        if live_local:
            best = live_local[0]
            depth = state.depth(best.name) or 0.0
            if depth <= s.queue_threshold:
                return decide(best, "local", f"pool {best.name!r} queue {depth:g} <= {s.queue_threshold:g}")
            share = 1.0 if state.local_share is None else state.local_share
            if apis and facts.priority != "low" and share >= s.local_ratio_target:
                return decide(
                    apis[0],
                    "queue_cloud",
                    f"pool {best.name!r} queue {depth:g} > {s.queue_threshold:g}; local share {share:.1%} "
                    f">= target {s.local_ratio_target:.1%}",
                )
            why = (
                "priority low waits"
                if apis and facts.priority == "low"
                else "no API route"
                if not apis
                else f"local share {share:.1%} < target {s.local_ratio_target:.1%}"
            )
            return decide(
                best, "queue_local", f"pool {best.name!r} queue {depth:g} > {s.queue_threshold:g}; {why}"
            )

        down = ", ".join(r.name for r in unknown_local) or "none configured"
        return decide(preference[0], "fallback", f"no live local pool ({down})")


def _no_route_message(facts: RequestFacts, routes: Sequence[RouteInfo]) -> str:
    if not routes:
        return f"no route serves model {facts.model!r}; add a pool or API for it to the gateway config"
    largest = max(routes, key=lambda r: r.max_context_tokens or 0)
    return (
        f"the request needs {facts.context_tokens} tokens of context (prompt {facts.prompt_tokens} + max_tokens "
        f"{facts.max_tokens}) but the largest route {largest.name!r} takes {largest.max_context_tokens}; "
        "shorten the prompt or lower max_tokens"
    )
