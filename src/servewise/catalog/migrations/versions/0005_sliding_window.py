"""Models: sliding-window attention facts (window length in tokens, how many layers use it).

Revision ID: 0005_sliding_window
Revises: 0004_gateway
Create Date: 2026-11-25

Why: gpt-oss and Gemma alternate windowed and global attention layers. A windowed layer reads at most its window
of KV per token, so step times and KV reads computed as if every layer were global overstate long-context
decode (docs/perf-model.md). Both columns are nullable: ``NULL`` means every layer attends globally.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sliding_window"
down_revision: str | None = "0004_gateway"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("sliding_window_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sliding_layers", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("sliding_layers")
        batch.drop_column("sliding_window_tokens")
