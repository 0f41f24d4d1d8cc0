"""The gateway's Prometheus series, on a registry of its own (several apps in one process never collide).

Labels: ``org`` and ``team`` (the tenant; ``""`` for no team), ``route`` (the upstream that answered; ``cache`` for a
hit), ``decision`` (the routing label) and ``status`` (``ok``, ``error``, ``cancelled``, ``rejected``,
``cache_hit``). API keys and end users are NOT labels (unbounded cardinality); they are on the ledger.

**Gateway overhead** (``servewise_gateway_overhead_seconds``): the wall time a request spends in the gateway's own
code — from the handler's first line until its response (or, streamed, its last chunk) is handed to the server —
MINUS every interval spent awaiting the upstream: connecting and sending, waiting for the response head, and for
a stream each wait for the next upstream chunk (``OverheadTimer.upstream()`` brackets each such await). Included:
auth, body parsing, token estimate, cache lookup, routing, budget reservation and settlement, re-encoding chunks,
ledger enqueue. Excluded: the ASGI server's HTTP parsing before the handler runs and the socket write after it.
A rejected or cached request's overhead is its whole time (no upstream).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["OVERHEAD_BUCKETS_S", "PROMETHEUS_CONTENT_TYPE", "AlertLike", "GatewayMetrics", "OverheadTimer"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OVERHEAD_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""Around the targets: p50 ≤ 3 ms, p99 ≤ 15 ms."""
_REQUEST = ("org", "team", "route", "decision", "status")
_SPEND = ("org", "team", "route", "decision")
_BUDGET = ("budget_id", "scope", "scope_id", "window")


class AlertLike(Protocol):
    """What ``on_alert`` reads from the alerter's ``Alert`` (a ``window`` attribute is used when present)."""

    @property
    def kind(self) -> str: ...

    @property
    def scope(self) -> str: ...

    @property
    def threshold_pct(self) -> float | None: ...


class OverheadTimer:
    """Measures one request's gateway overhead: total time minus the intervals inside ``upstream()``."""

    __slots__ = ("_clock", "_start", "_upstream_s")

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._start = self._clock()
        self._upstream_s = 0.0

    @contextmanager
    def upstream(self) -> Iterator[None]:
        """Bracket each await on the upstream (send, response head, each stream chunk)."""
        began = self._clock()
        try:
            yield
        finally:
            self._upstream_s += self._clock() - began

    @property
    def upstream_s(self) -> float:
        return self._upstream_s

    def overhead_s(self) -> float:
        return max(0.0, self._clock() - self._start - self._upstream_s)


class GatewayMetrics:
    """All gateway series; ``render_latest()`` is the ``/metrics`` body (``PROMETHEUS_CONTENT_TYPE``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "servewise_gateway_requests", "Requests answered, by tenant, route, decision, status.", _REQUEST,
            registry=reg,
        )  # fmt: skip
        self.tokens = Counter(
            "servewise_gateway_tokens",
            "Tokens billed (kind: input or output).",
            (*_SPEND, "kind"),
            registry=reg,
        )
        self.spend = Counter(
            "servewise_gateway_spend_usd", "Dollars billed (cache hits: 0).", _SPEND, registry=reg
        )
        self.budget_utilisation = Gauge(
            "servewise_gateway_budget_utilisation_ratio",
            "Spent over hard limit of a budget's current window (1 = exhausted).",
            _BUDGET,
            registry=reg,
        )
        self.budget_spent = Gauge(
            "servewise_gateway_budget_spent_usd", "Spent in a budget's current window.", _BUDGET, registry=reg
        )
        self.budget_reserved = Gauge(
            "servewise_gateway_budget_reserved_usd",
            "Reserved by in-flight requests in a budget's current window.",
            _BUDGET,
            registry=reg,
        )
        self.cache_lookups = Counter(
            "servewise_gateway_cache_lookups",
            "Cache lookups (result: hit or miss).",
            ("result",),
            registry=reg,
        )
        self.cache_hit_ratio = Gauge(
            "servewise_gateway_cache_hit_ratio", "Cache hits over lookups since start.", registry=reg
        )
        self.upstream_errors = Counter(
            "servewise_gateway_upstream_errors",
            "Failed upstream attempts (kind: connect, an HTTP status, or lost_answer: sent, answer lost, billed).",
            ("route", "kind"),
            registry=reg,
        )
        self.retries = Counter(
            "servewise_gateway_retries", "Attempts on a fallback route after an upstream error.", ("route",),
            registry=reg,
        )  # fmt: skip
        self.retries_denied = Counter(
            "servewise_gateway_retries_denied",
            "Retries refused because the retry budget was spent.",
            registry=reg,
        )
        self.over_reservation = Counter(
            "servewise_gateway_over_reservation_usd",
            "Dollars settled above the request's reservation (prompt longer than estimated); recorded in full.",
            ("route",),
            registry=reg,
        )
        self.fallbacks = Counter(
            "servewise_gateway_fallbacks",
            "Attempts moved to a fallback route after an upstream error.",
            ("from_route", "to_route"),
            registry=reg,
        )
        self.overhead = Histogram(
            "servewise_gateway_overhead_seconds",
            "Time in the gateway excluding upstream waits (see docs/gateway-routing.md).",
            buckets=OVERHEAD_BUCKETS_S,
            registry=reg,
        )
        self.alerts = Counter(
            "servewise_gateway_alerts_fired",
            "Budget alerts fired (kind: threshold, anomaly, spike).",
            ("kind", "scope", "window", "threshold_pct"),
            registry=reg,
        )
        self.pool_queue_depth = Gauge(
            "servewise_gateway_pool_queue_depth", "Last known vllm:num_requests_waiting of a local pool.", ("pool",),
            registry=reg,
        )  # fmt: skip
        self.pool_up = Gauge(
            "servewise_gateway_pool_up",
            "1 when the pool's queue depth is known and fresh.",
            ("pool",),
            registry=reg,
        )
        self.schema_checks = Counter(
            "servewise_gateway_schema_checks",
            "Complete JSON answers checked against the request's response_format (result: valid or invalid).",
            ("org", "team", "route", "result"),
            registry=reg,
        )
        self._hits = 0
        self._lookups = 0

    def observe_request(
        self,
        *,
        org: str,
        team: str | None,
        route: str,
        decision: str,
        status: str,
        prompt_tokens: int,
        completion_tokens: int,
        usd: float,
        overhead_s: float | None,
    ) -> None:
        """One answered (or rejected) request; call once, after settlement."""
        team_label = team or ""
        self.requests.labels(org, team_label, route, decision, status).inc()
        spend = (org, team_label, route, decision)
        if prompt_tokens:
            self.tokens.labels(*spend, "input").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(*spend, "output").inc(completion_tokens)
        self.spend.labels(*spend).inc(max(0.0, usd))
        if overhead_s is not None:
            self.overhead.observe(overhead_s)

    def observe_schema_check(self, *, org: str, team: str | None, route: str, valid: bool) -> None:
        """One complete answer checked against its ``response_format`` (read by ``servewise watch``)."""
        self.schema_checks.labels(org, team or "", route, "valid" if valid else "invalid").inc()

    def observe_cache(self, *, hit: bool) -> None:
        self._lookups += 1
        self._hits += hit
        self.cache_lookups.labels("hit" if hit else "miss").inc()
        self.cache_hit_ratio.set(self._hits / self._lookups)

    def observe_upstream_error(self, *, route: str, kind: str) -> None:
        self.upstream_errors.labels(route, kind).inc()

    def observe_over_reservation(self, *, route: str, usd: float) -> None:
        """A settlement exceeded its reservation by ``usd`` (the hard limit may be passed by that much)."""
        self.over_reservation.labels(route).inc(usd)

    def observe_retry(self, *, route: str, allowed: bool) -> None:
        """A retry onto ``route`` (``allowed`` False: the retry budget refused it)."""
        if allowed:
            self.retries.labels(route).inc()
        else:
            self.retries_denied.inc()

    def observe_fallback(self, *, from_route: str, to_route: str) -> None:
        self.fallbacks.labels(from_route, to_route).inc()

    def set_budget_usage(
        self,
        *,
        budget_id: int,
        scope: str,
        scope_id: str,
        window: str,
        spent_usd: float,
        reserved_usd: float,
        hard_usd: float | None,
    ) -> None:
        """A budget's current window; utilisation is spent / hard (not set without a hard limit)."""
        labels = (str(budget_id), scope, scope_id, window)
        self.budget_spent.labels(*labels).set(spent_usd)
        self.budget_reserved.labels(*labels).set(reserved_usd)
        if hard_usd is not None and hard_usd > 0:
            self.budget_utilisation.labels(*labels).set(spent_usd / hard_usd)

    def alert_fired(self, *, kind: str, scope: str, window: str, threshold_pct: float | None = None) -> None:
        """Hook for the alerter: one alert delivered (``threshold_pct`` for threshold alerts)."""
        pct = "" if threshold_pct is None else f"{threshold_pct:g}"
        self.alerts.labels(kind, scope, window, pct).inc()

    def on_alert(self, alert: AlertLike) -> None:
        """``BudgetAlerter.add_listener`` hook: count one delivered alert."""
        window = getattr(alert, "window", None)
        self.alert_fired(
            kind=alert.kind, scope=alert.scope, window=str(window or ""), threshold_pct=alert.threshold_pct
        )

    def set_pool_depth(self, pool: str, depth: float | None) -> None:
        """``QueueDepthPoller``'s ``on_update`` hook."""
        self.pool_up.labels(pool).set(0.0 if depth is None else 1.0)
        if depth is not None:
            self.pool_queue_depth.labels(pool).set(depth)

    def render_latest(self) -> bytes:
        return generate_latest(self.registry)
