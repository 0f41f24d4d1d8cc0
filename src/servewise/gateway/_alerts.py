"""Spend alerts of the gateway: budget thresholds, the daily-spend anomaly, per-tenant spikes; to a webhook and to
metrics listeners, each alert once.

Kinds (``Alert.kind``):

* ``threshold`` — a budget window's spend reached 80/95/100 % (``AlertPolicy.budget_thresholds_pct``) of its hard
  limit (of its soft limit when it has no hard limit); ``soft`` — it reached the soft limit of a budget that also
  has a hard limit. Reported by the store when a settlement crosses the line (``Crossing``); fired once per
  (budget, window, threshold): the first process to insert the row into ``gw_alerts_fired`` fires it, every other
  process and every restart finds the row and stays quiet.
* ``anomaly`` — the gateway's total spend of a day (calendar day in the configured zone) exceeds
  ``anomaly_factor`` × the median of the ``anomaly_window_days`` days before it — the same rule and code as
  ``servewise.cost.spend_anomalies`` (``AlertPolicy``: 1.5× the trailing 7-day median by default). Today's spend so
  far is judged too: once it passes the line the day is anomalous whatever comes later. No day is judged before the
  ledger holds a full window of history (a new gateway's first week would otherwise compare against zeros).
* ``spike`` — one organisation's spend over the last ``spike_window_s`` (1 h) exceeds ``spike_factor`` (3×) its
  average spend per such window over the ``spike_baseline_days`` (7 days) before, and is at least ``spike_min_usd``
  ($1, so that a tenant spending cents does not page anyone). The baseline spans the tenant's history inside those
  7 days when it is younger (at least one window of history is required). Fired once per organisation per
  clock hour (UTC).

These factors are conventions, not measured facts; all are settings. Anomaly and spike checks run every
``check_every_s`` in a background task (and on demand with ``check_spend``), never on the request path; they read
the ledger with per-day / per-organisation sums.

Delivery: an in-memory queue drained by one task that POSTs each alert's JSON to ``webhook_url`` with httpx,
retrying ``retries`` times with back-off; failures are counted and logged (the URL is logged without its path or
query, which often hold a token). Listeners (``add_listener``) are called synchronously with every fired alert —
that is how ``GatewayMetrics`` counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, Table, func, insert, select

from servewise.cost import AlertPolicy, DailySpend, spend_anomalies

from ._budget_defs import SPEND
from ._budgets import SOFT_LIMIT_PCT, Crossing, micro_to_usd
from ._tables import AlertFiredRow, AlertMarkRow
from ._windows import check_timezone, window_bounds

__all__ = ["Alert", "AlertKind", "BudgetAlerter", "SpikeRule"]

log = logging.getLogger("servewise.gateway.alerts")
FIRED = cast(Table, AlertFiredRow.__table__)
MARKS = cast(Table, AlertMarkRow.__table__)
AlertKind = Literal["threshold", "soft", "anomaly", "spike"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One fired alert; ``to_json`` is the webhook body."""

    kind: AlertKind
    scope: str
    """Budget scope (``org``/``team``/``key``/``end_user``), ``gateway`` for the anomaly, ``org`` for a spike."""
    scope_id: str
    message: str
    fired_at: datetime
    budget_id: int | None = None
    window: str | None = None
    window_start: datetime | None = None
    resets_at: datetime | None = None
    threshold_pct: int | None = None
    limit_usd: float | None = None
    spent_usd: float | None = None
    baseline_usd: float | None = None

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "source": "servewise-gateway",
            "kind": self.kind,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "message": self.message,
            "fired_at": iso(self.fired_at),
            "budget_id": self.budget_id,
            "window": self.window,
            "window_start": iso(self.window_start),
            "resets_at": iso(self.resets_at),
            "threshold_pct": self.threshold_pct,
            "limit_usd": self.limit_usd,
            "spent_usd": self.spent_usd,
            "baseline_usd": self.baseline_usd,
        }


@dataclass(frozen=True, slots=True)
class SpikeRule:
    """Per-tenant spike: last ``window_s`` spend > ``factor`` × the average per window over ``baseline_days``."""

    factor: float = 3.0
    window_s: float = 3600.0
    baseline_days: float = 7.0
    min_usd: float = 1.0


def _insert_once(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless the primary key exists; True when this call inserted it (and so owns the alert).

    Why ``RETURNING`` and not ``rowcount``: psycopg reports no reliable row count for ``ON CONFLICT DO NOTHING``.
    """
    key = next(iter(table.primary_key.columns))
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).values(values).on_conflict_do_nothing().returning(key)
        return connection.execute(statement).first() is not None
    if connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement_lite = sqlite_insert(table).values(values).on_conflict_do_nothing().returning(key)
        return connection.execute(statement_lite).first() is not None
    from sqlalchemy.exc import IntegrityError  # pragma: no cover - other databases

    try:  # pragma: no cover
        with connection.begin_nested():
            connection.execute(insert(table).values(values))
        return True
    except IntegrityError:  # pragma: no cover
        return False


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


class BudgetAlerter:
    """Fires each alert once (persisted), delivers it to the webhook and to listeners. ``start()`` / ``close()``."""

    def __init__(
        self,
        engine: Engine,
        *,
        webhook_url: str | None = None,
        policy: AlertPolicy | None = None,
        timezone: str = "UTC",
        spike: SpikeRule | None = None,
        check_every_s: float | None = 300.0,
        http_timeout_s: float = 5.0,
        retries: int = 3,
        retry_initial_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.webhook_url = webhook_url
        self.policy = policy or AlertPolicy()
        self.timezone = check_timezone(timezone)
        self.spike = spike or SpikeRule()
        self.check_every_s = check_every_s
        self.http_timeout_s = http_timeout_s
        self.retries = retries
        self.retry_initial_s = retry_initial_s
        self.fired_total: dict[str, int] = {}
        self.delivered = 0
        self.delivery_failures = 0
        self._listeners: list[Callable[[Alert], None]] = []
        self._outbox: asyncio.Queue[Alert] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def levels_pct(self) -> tuple[int, ...]:
        """The thresholds for the budget store (``AlertPolicy`` percentages as whole numbers)."""
        return tuple(round(p) for p in self.policy.budget_thresholds_pct)

    def add_listener(self, listener: Callable[[Alert], None]) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._tasks:
            return
        if self.webhook_url:
            self._tasks.append(asyncio.create_task(self._deliver(), name="servewise-alert-webhook"))
        if self.check_every_s:
            self._tasks.append(asyncio.create_task(self._check_loop(), name="servewise-alert-checks"))

    # -- firing ------------------------------------------------------------------------------------------------
    def _emit(self, alert: Alert) -> None:
        self.fired_total[alert.kind] = self.fired_total.get(alert.kind, 0) + 1
        log.warning("alert %s: %s", alert.kind, alert.message)
        for listener in self._listeners:
            try:
                listener(alert)
            except Exception:
                log.exception("alert listener %r failed", listener)
        if self.webhook_url:
            self._outbox.put_nowait(alert)

    def _claim_crossings(self, crossings: Sequence[Crossing], now: datetime) -> list[Crossing]:
        claimed = []
        with self.engine.begin() as connection:
            for c in crossings:
                values = {
                    "budget_id": c.budget.budget_id,
                    "window_start": c.window_start.astimezone(UTC),
                    "threshold_pct": c.threshold_pct,
                    "fired_at": now,
                }
                if _insert_once(connection, FIRED, values):
                    claimed.append(c)
        return claimed

    async def on_crossings(self, crossings: list[Crossing]) -> list[Alert]:
        """The store's crossings → alerts fired now (those not fired before by any process)."""
        if not crossings:
            return []
        now = datetime.now(UTC)
        claimed = await asyncio.to_thread(self._claim_crossings, crossings, now)
        alerts = []
        for c in claimed:
            budget = c.budget
            _, resets_at = window_bounds(budget.window, c.window_start, budget.timezone)
            if c.threshold_pct == SOFT_LIMIT_PCT:
                what = f"reached its soft limit ${micro_to_usd(c.limit_micro_usd):,.2f}"
            else:
                what = f"reached {c.threshold_pct} % (${micro_to_usd(c.limit_micro_usd):,.2f})"
            alert = Alert(
                kind=c.kind,
                scope=budget.scope,
                scope_id=budget.scope_id,
                message=(
                    f"{budget.label} {what}: ${micro_to_usd(c.spent_micro_usd):,.2f} spent; "
                    f"it resets {resets_at:%Y-%m-%d %H:%M} {budget.timezone}"
                ),
                fired_at=now,
                budget_id=budget.budget_id,
                window=budget.window,
                window_start=c.window_start,
                resets_at=resets_at,
                threshold_pct=c.threshold_pct,
                limit_usd=micro_to_usd(c.limit_micro_usd),
                spent_usd=micro_to_usd(c.spent_micro_usd),
            )
            alerts.append(alert)
            self._emit(alert)
        return alerts

    # -- anomaly and spike checks ------------------------------------------------------------------------------
    def _sum(self, connection: Connection, start: datetime, end: datetime) -> int:
        query = select(func.coalesce(func.sum(SPEND.c.micro_usd), 0)).where(
            SPEND.c.at >= start.astimezone(UTC), SPEND.c.at < end.astimezone(UTC)
        )
        return int(connection.execute(query).scalar_one())

    def _anomalies_sync(self, now: datetime) -> list[Alert]:
        window = self.policy.anomaly_window_days
        today_start, _ = window_bounds("daily", now, self.timezone)
        days: list[tuple[date, datetime, datetime]] = []
        cursor = now
        for _ in range(window + 2):  # the baseline of yesterday needs window days before it
            start, end = window_bounds("daily", cursor, self.timezone)
            days.append((start.date(), start, end))
            cursor = start - timedelta(seconds=1)
        days.reverse()
        alerts: list[Alert] = []
        with self.engine.begin() as connection:
            first = connection.execute(select(func.min(SPEND.c.at))).scalar()
            if first is None:
                return []
            # days before the ledger's first row are not zero-spend days, they are no data
            first_day, _ = window_bounds("daily", first.replace(tzinfo=first.tzinfo or UTC), self.timezone)
            days = [d for d in days if d[1] >= first_day]
            if len(days) <= window:
                return []  # not a full window of history yet
            series = [DailySpend(day, micro_to_usd(self._sum(connection, s, e))) for day, s, e in days]
            for found in spend_anomalies(self.policy, series):
                key = f"anomaly:{found.day.isoformat()}"
                if not _insert_once(connection, MARKS, {"key": key, "kind": "anomaly", "fired_at": now}):
                    continue
                ratio = "" if found.ratio is None else f" ({found.ratio:.1f}×)"
                alerts.append(
                    Alert(
                        kind="anomaly",
                        scope="gateway",
                        scope_id="all",
                        message=(
                            f"daily spend {found.day} is ${found.usd:,.2f}{ratio}, above "
                            f"{self.policy.anomaly_factor:g}× the trailing {window}-day "
                            f"{self.policy.anomaly_baseline} ${found.baseline_usd:,.2f}"
                            + (" (so far today)" if found.day == today_start.date() else "")
                        ),
                        fired_at=now,
                        window="daily",
                        window_start=next(s for d, s, _ in days if d == found.day),
                        spent_usd=found.usd,
                        baseline_usd=found.baseline_usd,
                    )
                )
        return alerts

    def _spikes_sync(self, now: datetime) -> list[Alert]:
        rule = self.spike
        recent_start = now - timedelta(seconds=rule.window_s)
        base_start = recent_start - timedelta(days=rule.baseline_days)
        c = SPEND.c
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        alerts: list[Alert] = []
        with self.engine.begin() as connection:
            recent = dict(
                connection.execute(
                    select(c.org_id, func.sum(c.micro_usd))
                    .where(c.at >= recent_start, c.at < now)
                    .group_by(c.org_id)
                ).all()
            )
            base = {
                org: (int(total or 0), first)
                for org, total, first in connection.execute(
                    select(c.org_id, func.sum(c.micro_usd), func.min(c.at))
                    .where(c.at >= base_start, c.at < recent_start)
                    .group_by(c.org_id)
                ).all()
            }
            for org, micro in sorted(recent.items()):
                spent_usd = micro_to_usd(int(micro or 0))
                if org not in base or spent_usd < rule.min_usd:
                    continue
                total, first = base[org]
                first_utc = first.replace(tzinfo=UTC) if first.tzinfo is None else first
                history_s = (recent_start - first_utc).total_seconds()
                if history_s < rule.window_s:
                    continue  # less than one window of history: no baseline to judge against
                baseline_usd = micro_to_usd(total) * rule.window_s / history_s
                if spent_usd <= rule.factor * baseline_usd:
                    continue
                key = f"spike:{org}:{hour.isoformat()}"
                if not _insert_once(connection, MARKS, {"key": key, "kind": "spike", "fired_at": now}):
                    continue
                alerts.append(
                    Alert(
                        kind="spike",
                        scope="org",
                        scope_id=org,
                        message=(
                            f"org {org!r} spent ${spent_usd:,.2f} in the last {rule.window_s / 60:g} min, above "
                            f"{rule.factor:g}× its average ${baseline_usd:,.2f} per {rule.window_s / 60:g} min "
                            f"over the previous {rule.baseline_days:g} days"
                        ),
                        fired_at=now,
                        spent_usd=spent_usd,
                        baseline_usd=baseline_usd,
                    )
                )
        return alerts

    async def check_spend(self, now: datetime | None = None) -> list[Alert]:
        """Run the anomaly and spike checks now; returns (and fires) the alerts not fired before."""
        now = now or datetime.now(UTC)
        alerts = await asyncio.to_thread(self._anomalies_sync, now)
        alerts += await asyncio.to_thread(self._spikes_sync, now)
        for alert in alerts:
            self._emit(alert)
        return alerts

    async def _check_loop(self) -> None:
        assert self.check_every_s
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                await self.check_spend()
            except Exception:
                log.exception("spend anomaly/spike check failed; the next check retries")

    # -- delivery ----------------------------------------------------------------------------------------------
    async def _post(self, client: Any, alert: Alert) -> None:
        import httpx

        assert self.webhook_url
        delay = self.retry_initial_s
        for attempt in range(1, self.retries + 1):
            try:
                response = await client.post(self.webhook_url, json=alert.to_json())
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as err:
                problem = type(err).__name__
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay *= 2
        self.delivery_failures += 1
        log.error(
            "alert webhook %s failed after %d attempts (%s); alert was: %s",
            _safe_url(self.webhook_url),
            self.retries,
            problem,
            alert.message,
        )

    async def _deliver(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=self.http_timeout_s) as client:
            while True:
                alert = await self._outbox.get()
                try:
                    await self._post(client, alert)
                finally:
                    self._outbox.task_done()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued alert was delivered or given up (tests, shutdown)."""
        if self._tasks and self.webhook_url:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), timeout=timeout_s)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then stop the background tasks."""
        await self.drain(timeout_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
