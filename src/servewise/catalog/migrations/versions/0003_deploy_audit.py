"""Audit log of ``servewise deploy --apply``: one row per apply (who, what, when, dry run, result).

Revision ID: 0003_deploy_audit
Revises: 0002_cpus
Create Date: 2026-11-25

Why written out instead of importing the ORM: a migration must keep creating this exact schema after the ORM
has moved on; the tests compare ``upgrade head`` with the current ORM metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_deploy_audit"
down_revision: str | None = "0002_cpus"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deploy_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("os_user", sa.String(), nullable=False),
        sa.Column("kube_user", sa.String(), nullable=True),
        sa.Column("kube_context", sa.String(), nullable=True),
        sa.Column("cluster", sa.String(), nullable=True),
        sa.Column("plan_path", sa.String(), nullable=False),
        sa.Column("plan_sha256", sa.String(length=64), nullable=False),
        sa.Column("option_rank", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("objects", sa.String(), nullable=False),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_audit")),
    )
    op.create_index(op.f("ix_deploy_audit_applied_at"), "deploy_audit", ["applied_at"])


def downgrade() -> None:
    op.drop_table("deploy_audit")
