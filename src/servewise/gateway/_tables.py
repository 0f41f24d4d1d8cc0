"""SQLAlchemy tables of the gateway: tenancy, budgets and their counters, reservations, the spend ledger, alerts.

Why on the catalog's ``Base``: the gateway lives in the catalog database (same URL, same Alembic chain, migration
``0004_gateway``), so one ``open_catalog`` migrates both and the catalog's test that compares the migrated database
with ``Base.metadata`` covers these tables too. Money is integer micro-dollars (``usd × 1e6``) in ``BigInteger``
columns so counters add exactly and a $1M budget (1e12 µ$) does not overflow a 32-bit integer.

A change here needs a new migration and a new ``HEAD_REVISION`` in ``servewise.catalog._db``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from servewise.catalog._schema import Base

__all__ = [
    "AlertFiredRow",
    "AlertMarkRow",
    "ApiKeyRow",
    "BudgetRow",
    "BudgetUsageRow",
    "OrgRow",
    "ReservationRow",
    "SpendRowRecord",
    "TeamRow",
]

_TS = DateTime(timezone=True)


class OrgRow(Base):
    """An organisation: the top tenancy level; its id is a short slug (the name unless given)."""

    __tablename__ = "gw_orgs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(_TS)


class TeamRow(Base):
    """A team inside one organisation; names are unique per organisation only."""

    __tablename__ = "gw_teams"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), ForeignKey("gw_orgs.id"))
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(_TS)


class ApiKeyRow(Base):
    """A client key ``sk-sw-<id>-<secret>``: only ``sha256(secret)`` is stored; the plaintext is shown once."""

    __tablename__ = "gw_api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), ForeignKey("gw_orgs.id"), index=True)
    team_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("gw_teams.id"))
    name: Mapped[str]
    end_user: Mapped[str | None]
    models: Mapped[str | None]
    """Comma-separated model names the key may use; ``None`` = every model the gateway serves."""
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)


class BudgetRow(Base):
    """One budget: a scope (org, team or key), a calendar window in a time zone, soft and hard limits."""

    __tablename__ = "gw_budgets"
    __table_args__ = (UniqueConstraint("scope", "scope_id", "window"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    scope_id: Mapped[str] = mapped_column(String(64))
    window: Mapped[str] = mapped_column(String(16))
    soft_micro_usd: Mapped[int | None] = mapped_column(BigInteger)
    hard_micro_usd: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    downgrade_route: Mapped[str | None]
    timezone: Mapped[str] = mapped_column(String(64))


class BudgetUsageRow(Base):
    """The SQL store's counter for one budget window: settled spend and open reservations."""

    __tablename__ = "gw_budget_usage"

    budget_id: Mapped[int] = mapped_column(ForeignKey("gw_budgets.id"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    spent_micro_usd: Mapped[int] = mapped_column(BigInteger)
    reserved_micro_usd: Mapped[int] = mapped_column(BigInteger)


class ReservationRow(Base):
    """An open reservation of the SQL store (JSON lists of budget ids and window starts); Redis keeps its own."""

    __tablename__ = "gw_reservations"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget_ids: Mapped[str]
    window_starts: Mapped[str]
    amount_micro_usd: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_TS, index=True)
    meta: Mapped[str | None]
    """JSON of who/what was admitted (tenancy, route, model, admission time): lets reconciliation write an
    orphaned reservation into the ledger at its worst case (``servewise.gateway._reconcile``)."""


class SpendRowRecord(Base):
    """The ledger: one row per request (served, cancelled, failed, refused or answered from the cache)."""

    __tablename__ = "gw_spend"
    __table_args__ = (Index(None, "org_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(_TS, index=True)
    org_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    end_user: Mapped[str | None]
    route: Mapped[str]
    model: Mapped[str]
    decision: Mapped[str] = mapped_column(String(32))
    prompt_tokens: Mapped[int]
    completion_tokens: Mapped[int]
    micro_usd: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[float]
    cached: Mapped[bool]


class AlertFiredRow(Base):
    """A threshold that has fired for one budget window, so each fires once even across restarts."""

    __tablename__ = "gw_alerts_fired"

    budget_id: Mapped[int] = mapped_column(ForeignKey("gw_budgets.id"), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(_TS, primary_key=True)
    threshold_pct: Mapped[int] = mapped_column(primary_key=True)
    fired_at: Mapped[datetime] = mapped_column(_TS)


class AlertMarkRow(Base):
    """An alert without a budget (daily-spend anomaly, per-tenant spike) that has fired, keyed by what it is
    about, so it fires once even across restarts."""

    __tablename__ = "gw_alert_marks"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    fired_at: Mapped[datetime] = mapped_column(_TS)
