"""Wiring: the stores, ledger, routes, policy, cache, poller and metrics one gateway process runs with.

Why a dataclass built from the config (``build_services``) and passed to the app: tests and the benchmark build
the same objects with their own database, Redis prefix or policy, and the app never reads the environment itself.
Start-up order matters for crash safety: the database is migrated, ``reconcile`` makes the budget counters equal
the ledger (and drops orphan reservations) *before* the first request is admitted, then the ledger writer, the
queue poller and the budget-gauge refresher start. Shutdown flushes the ledger before closing the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from servewise.catalog._db import connect_engine, ensure_ready
from servewise.cost import AlertPolicy
from servewise.settings import Settings

from ._alerts import BudgetAlerter
from ._budget_redis import RedisBudgetStore
from ._budget_sql import SqlBudgetStore
from ._budgets import BudgetStore
from ._cache import LruCache, RedisCache, ResponseCache
from ._config import GatewayConfig
from ._ledger import LedgerWriter
from ._metrics import GatewayMetrics
from ._pricing import RoutePrice, route_prices
from ._queue import QueueDepthPoller
from ._reconcile import ReconcileReport, reconcile
from ._retry import RetryBudget
from ._routing import DefaultPolicy, LocalShareTracker, RouteInfo, RoutingPolicy, RoutingSettings
from ._tenancy import KeyAuthenticator
from ._upstream import HttpUpstream, Upstream

__all__ = ["GatewayServices", "Route", "build_services", "open_gateway_engine"]

_log = logging.getLogger("servewise.gateway")
GAUGE_REFRESH_S = 5.0


@dataclass(frozen=True, slots=True)
class Route:
    """One upstream as the proxy uses it: routing facts, price, HTTP client, model names in and out."""

    info: RouteInfo
    price: RoutePrice
    upstream: Upstream
    upstream_model: str
    client_models: tuple[str, ...]


@dataclass(slots=True)
class GatewayServices:
    config: GatewayConfig
    engine: Engine
    store: BudgetStore
    ledger: LedgerWriter
    keys: KeyAuthenticator
    routes: dict[str, Route]
    policy: RoutingPolicy
    metrics: GatewayMetrics
    retry: RetryBudget
    share: LocalShareTracker = field(default_factory=LocalShareTracker)
    cache: ResponseCache | None = None
    poller: QueueDepthPoller | None = None
    alerter: BudgetAlerter | None = None
    admin_key: str | None = None
    reconciled: ReconcileReport | None = None
    _gauges: asyncio.Task[None] | None = None

    @property
    def default_max_tokens(self) -> int:
        return self.config.default_max_tokens

    @property
    def max_retries(self) -> int:
        return self.config.routing.max_retries

    @property
    def cache_sampled_models(self) -> Sequence[str]:
        return self.config.cache.sampled_models

    def routes_for(self, model: str) -> list[Route]:
        """The routes that may serve a requested model name, in config order."""
        return [r for r in self.routes.values() if model in r.client_models]

    def queue_depths(self) -> dict[str, float | None]:
        return self.poller.depths() if self.poller is not None else {}

    async def start(self) -> None:
        """Reconcile counters with the ledger, then start the writer, the poller and the gauge refresher."""
        self.reconciled = await reconcile(self.engine, self.store)
        _log.info("gateway start-up reconcile: %s", self.reconciled)
        await self.ledger.start()
        if self.alerter is not None:
            await self.alerter.start()
        if self.poller is not None:
            await self.poller.start()
        self._gauges = asyncio.create_task(self._refresh_gauges(), name="servewise-gateway-gauges")

    async def _refresh_gauges(self) -> None:
        from datetime import UTC, datetime

        while True:
            with contextlib.suppress(Exception):  # a gauge refresh never stops the gateway
                budgets = await self.store.list_budgets()
                for usage in await self.store.usage(budgets, datetime.now(UTC)):
                    hard = usage.budget.hard_micro_usd
                    self.metrics.set_budget_usage(
                        budget_id=usage.budget.budget_id,
                        scope=usage.budget.scope,
                        scope_id=usage.budget.scope_id,
                        window=usage.budget.window,
                        spent_usd=usage.spent_micro_usd / 1e6,
                        reserved_usd=usage.reserved_micro_usd / 1e6,
                        hard_usd=None if hard is None else hard / 1e6,
                    )
            await asyncio.sleep(GAUGE_REFRESH_S)

    async def close(self) -> None:
        """Flush the ledger (settling what it holds), then close alerts, poller, cache, upstreams and stores."""
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
        await self.ledger.close()
        if self.alerter is not None:
            await self.alerter.close()
        if self.poller is not None:
            await self.poller.close()
        if self.cache is not None:
            await self.cache.close()
        for route in self.routes.values():
            await route.upstream.aclose()
        await self.store.close()
        self.engine.dispose()


def open_gateway_engine(database_url: str | None) -> Engine:
    """An engine on the gateway's database (the catalog's unless configured), migrated to the gateway tables."""
    engine = connect_engine(database_url if database_url is not None else Settings().db_url)
    try:
        ensure_ready(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def _routes(config: GatewayConfig, engine_url: str | None) -> dict[str, Route]:
    prices = route_prices(config, engine_url)
    routes: dict[str, Route] = {}
    for pool in config.pools:
        info = RouteInfo(
            pool.name,
            "local",
            pool.max_context_tokens,
            prices[pool.name].usd_per_1m_input,
            prices[pool.name].usd_per_1m_output,
        )
        key = os.environ.get(pool.api_key_env) if pool.api_key_env else None
        upstream = HttpUpstream(pool.name, pool.url.rstrip("/") + "/v1", api_key=key)
        routes[pool.name] = Route(info, prices[pool.name], upstream, pool.upstream_model, pool.models)
    for api in config.apis:
        info = RouteInfo(
            api.name,
            "api",
            api.max_context_tokens,
            prices[api.name].usd_per_1m_input,
            prices[api.name].usd_per_1m_output,
        )
        key = os.environ.get(api.api_key_env) if api.api_key_env else None
        upstream = HttpUpstream(api.name, api.base_url, api_key=key)
        routes[api.name] = Route(info, prices[api.name], upstream, api.model, api.client_models)
    return routes


def build_services(
    config: GatewayConfig,
    *,
    engine: Engine | None = None,
    policy: RoutingPolicy | None = None,
    metrics: GatewayMetrics | None = None,
) -> GatewayServices:
    """Everything the app needs, from the config (nothing started yet: ``await services.start()``)."""
    engine = engine if engine is not None else open_gateway_engine(config.database_url)
    levels = config.alerts.levels_pct
    store: BudgetStore
    if config.uses_redis:
        assert config.redis_url is not None
        store = RedisBudgetStore(config.redis_url, engine, prefix=config.redis_prefix, levels_pct=levels)
    else:
        store = SqlBudgetStore(engine, levels_pct=levels)
    metrics = metrics if metrics is not None else GatewayMetrics()
    policy_ = AlertPolicy(
        budget_thresholds_pct=tuple(float(p) for p in levels), anomaly_factor=config.alerts.anomaly_factor
    )
    alerter = BudgetAlerter(
        engine, webhook_url=config.alerts.webhook_url, policy=policy_, timezone=config.timezone
    )
    alerter.add_listener(metrics.on_alert)
    ledger = LedgerWriter(engine, store, on_crossings=alerter.on_crossings)
    routing = RoutingSettings(**config.routing.model_dump())
    cache: ResponseCache | None = None
    if config.cache.exact:
        cache = (
            RedisCache(config.redis_url, prefix=config.redis_prefix, ttl_s=config.cache.ttl_s)
            if config.redis_url
            else LruCache(max_entries=config.cache.max_entries, ttl_s=config.cache.ttl_s)
        )
    pools = {p.name: p.url for p in config.pools}
    poller = (
        QueueDepthPoller(
            pools,
            poll_interval_s=routing.poll_interval_s,
            poll_timeout_s=routing.poll_timeout_s,
            stale_after_s=routing.stale_after_s,
            on_update=metrics.set_pool_depth,
        )
        if pools
        else None
    )
    retry = RetryBudget(
        ratio=routing.retry_budget_ratio, min_per_s=routing.retry_min_per_s, ttl_s=routing.retry_ttl_s
    )
    return GatewayServices(
        config=config,
        engine=engine,
        store=store,
        ledger=ledger,
        keys=KeyAuthenticator(engine),
        routes=_routes(config, config.database_url),
        policy=policy if policy is not None else DefaultPolicy(routing),
        metrics=metrics,
        retry=retry,
        cache=cache,
        poller=poller,
        alerter=alerter,
        admin_key=os.environ.get(config.admin_key_env) or None,
    )
