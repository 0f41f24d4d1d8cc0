"""CPU specs of CPU-only instance types (memory bandwidth, cores, matrix peaks) for CPU serving options.

Revision ID: 0002_cpus
Revises: 0001_initial
Create Date: 2026-11-25

Why written out instead of importing the ORM: a migration must keep creating this exact schema after the ORM
has moved on; the tests compare ``upgrade head`` with the current ORM metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_cpus"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cpus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("instance_type", sa.String(), nullable=False),
        sa.Column("cpu_model", sa.String(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("physical_cores", sa.Integer(), nullable=False),
        sa.Column("socket_cores", sa.Integer(), nullable=False),
        sa.Column("socket_memory_bw_gbps", sa.Double(), nullable=False),
        sa.Column("memory_bw_gbps", sa.Double(), nullable=False),
        sa.Column("bf16_tflops", sa.Double(), nullable=True),
        sa.Column("int8_tops", sa.Double(), nullable=True),
        sa.Column("isa", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("notes", sa.String(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cpus")),
        sa.UniqueConstraint("provider", "instance_type", name=op.f("uq_cpus_provider_instance_type")),
    )
    op.create_index(op.f("ix_cpus_origin"), "cpus", ["origin"])


def downgrade() -> None:
    op.drop_table("cpus")
