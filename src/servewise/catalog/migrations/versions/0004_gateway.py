"""Gateway tables: tenancy (orgs, teams, API keys), budgets and counters, reservations, spend ledger, alerts.

Revision ID: 0004_gateway
Revises: 0003_deploy_audit
Create Date: 2026-11-26

Why written out instead of importing the ORM: a migration must keep creating this exact schema after the ORM
has moved on; the tests compare ``upgrade head`` with the current ORM metadata. Money columns are ``BigInteger``
micro-dollars (exact counters; no 32-bit overflow for large budgets).

Why the import of ``servewise.gateway._tables``: the gateway's ORM classes live in the gateway package, on the
catalog's ``Base``; importing them here registers them on ``Base.metadata`` in every process that migrates, so
whoever compares the migrated database with ``Base.metadata`` (the catalog's tests, Alembic autogenerate) sees
the gateway tables. It is an import for registration only; nothing below reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import servewise.gateway._tables  # noqa: F401  (registers the gateway tables on Base.metadata; see above)

revision: str = "0004_gateway"
down_revision: str | None = "0003_deploy_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _money(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "gw_orgs",
        _str("id", 64),
        _str("name"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_gw_orgs_name")),
    )
    op.create_table(
        "gw_teams",
        _str("id", 64),
        _str("org_id", 64),
        _str("name"),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["org_id"], ["gw_orgs.id"], name=op.f("fk_gw_teams_org_id_gw_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_teams")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_gw_teams_org_id_name")),
    )
    op.create_table(
        "gw_api_keys",
        _str("id", 32),
        _str("org_id", 64),
        _str("team_id", 64, nullable=True),
        _str("name"),
        _str("end_user", nullable=True),
        _str("models", nullable=True),
        _str("secret_sha256", 64),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["gw_orgs.id"], name=op.f("fk_gw_api_keys_org_id_gw_orgs")),
        sa.ForeignKeyConstraint(["team_id"], ["gw_teams.id"], name=op.f("fk_gw_api_keys_team_id_gw_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_api_keys")),
    )
    op.create_index(op.f("ix_gw_api_keys_org_id"), "gw_api_keys", ["org_id"])
    op.create_table(
        "gw_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("scope", 8),
        _str("scope_id", 64),
        _str("window", 16),
        _money("soft_micro_usd", nullable=True),
        _money("hard_micro_usd", nullable=True),
        _str("action", 16),
        _str("downgrade_route", nullable=True),
        _str("timezone", 64),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_budgets")),
        sa.UniqueConstraint("scope", "scope_id", "window", name=op.f("uq_gw_budgets_scope_scope_id_window")),
    )
    op.create_table(
        "gw_budget_usage",
        sa.Column("budget_id", sa.Integer(), nullable=False),
        _ts("window_start"),
        _money("spent_micro_usd"),
        _money("reserved_micro_usd"),
        sa.ForeignKeyConstraint(
            ["budget_id"], ["gw_budgets.id"], name=op.f("fk_gw_budget_usage_budget_id_gw_budgets")
        ),
        sa.PrimaryKeyConstraint("budget_id", "window_start", name=op.f("pk_gw_budget_usage")),
    )
    op.create_table(
        "gw_reservations",
        _str("request_id", 64),
        _str("budget_ids"),
        _str("window_starts"),
        _money("amount_micro_usd"),
        _ts("created_at"),
        _str("meta", nullable=True),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_gw_reservations")),
    )
    op.create_index(op.f("ix_gw_reservations_created_at"), "gw_reservations", ["created_at"])
    op.create_table(
        "gw_spend",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("request_id", 64),
        _ts("at"),
        _str("org_id", 64),
        _str("team_id", 64, nullable=True),
        _str("key_id", 32),
        _str("end_user", nullable=True),
        _str("route"),
        _str("model"),
        _str("decision", 32),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        _money("micro_usd"),
        _str("status", 16),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_spend")),
        sa.UniqueConstraint("request_id", name=op.f("uq_gw_spend_request_id")),
    )
    op.create_index(op.f("ix_gw_spend_at"), "gw_spend", ["at"])
    op.create_index(op.f("ix_gw_spend_org_id_at"), "gw_spend", ["org_id", "at"])
    op.create_table(
        "gw_alerts_fired",
        sa.Column("budget_id", sa.Integer(), nullable=False),
        _ts("window_start"),
        sa.Column("threshold_pct", sa.Integer(), nullable=False),
        _ts("fired_at"),
        sa.ForeignKeyConstraint(
            ["budget_id"], ["gw_budgets.id"], name=op.f("fk_gw_alerts_fired_budget_id_gw_budgets")
        ),
        sa.PrimaryKeyConstraint(
            "budget_id", "window_start", "threshold_pct", name=op.f("pk_gw_alerts_fired")
        ),
    )
    op.create_table(
        "gw_alert_marks",
        _str("key", 200),
        _str("kind", 16),
        _ts("fired_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_gw_alert_marks")),
    )


def downgrade() -> None:
    for table in (
        "gw_alert_marks",
        "gw_alerts_fired",
        "gw_spend",
        "gw_reservations",
        "gw_budget_usage",
        "gw_budgets",
        "gw_api_keys",
        "gw_teams",
        "gw_orgs",
    ):
        op.drop_table(table)
