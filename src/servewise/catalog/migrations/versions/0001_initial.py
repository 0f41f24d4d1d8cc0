"""Initial catalog schema: accelerators, models, offers, API prices, benchmarks, use cases, aliases, meta.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25

Why written out instead of importing the ORM: a migration must keep creating this exact schema after the ORM
has moved on; the tests compare ``upgrade head`` with the current ORM metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FACT_TABLES = (
    "accelerators",
    "aliases",
    "api_prices",
    "benchmark_rows",
    "cloud_offers",
    "models",
    "use_case_templates",
)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), nullable=False)


def _text(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _int(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _num(name: str, *, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _provenance() -> list[sa.Column[object]]:
    return [
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("notes", sa.String(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "accelerators",
        _id(),
        _text("name"),
        _text("vendor"),
        _num("memory_gb"),
        _num("memory_bw_gbps"),
        _num("fp16_tflops", nullable=True),
        _num("bf16_tflops", nullable=True),
        _num("fp8_tflops", nullable=True),
        _num("int8_tops", nullable=True),
        _num("fp4_tflops", nullable=True),
        _text("interconnect"),
        _num("intra_node_bw_gbps"),
        _int("max_per_node"),
        _num("tdp_w", nullable=True),
        _int("launch_year", nullable=True),
        _num("list_price_usd", nullable=True),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accelerators")),
        sa.UniqueConstraint("name", name=op.f("uq_accelerators_name")),
    )
    op.create_table(
        "aliases",
        _id(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _text("alias"),
        _text("target"),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint("kind", "alias", name=op.f("uq_aliases_kind_alias")),
    )
    op.create_table(
        "api_prices",
        _id(),
        _text("provider"),
        _text("model"),
        _num("input_per_1m_usd"),
        _num("output_per_1m_usd"),
        _num("cached_input_per_1m_usd", nullable=True),
        _int("max_input_tokens", nullable=True),
        _int("max_output_tokens", nullable=True),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_prices")),
        sa.UniqueConstraint("provider", "model", name=op.f("uq_api_prices_provider_model")),
    )
    op.create_table(
        "benchmark_rows",
        _id(),
        _text("model"),
        _text("backend"),
        _text("mode"),
        _text("system"),
        _int("gpu_count"),
        _int("tp"),
        _text("precision"),
        _int("isl"),
        _int("osl"),
        _int("concurrency"),
        _num("ttft_ms"),
        _num("tpot_ms"),
        _int("pp"),
        _int("attention_dp", nullable=True),
        _int("moe_tp"),
        _int("moe_ep"),
        _int("batch_size", nullable=True),
        _text("backend_version"),
        _text("gemm_quant_mode"),
        _text("moe_quant_mode"),
        sa.Column("precision_inferred", sa.Boolean(), nullable=False),
        sa.Column("concurrency_from_source", sa.Boolean(), nullable=False),
        sa.Column("measured_date", sa.Date(), nullable=True),
        _text("container_image"),
        _int("id_tp", nullable=True),
        _int("id_ep", nullable=True),
        sa.Column("parallelism_suspect", sa.Boolean(), nullable=False),
        _text("source_row_id"),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_rows")),
    )
    op.create_index(op.f("ix_benchmark_rows_model_system"), "benchmark_rows", ["model", "system"])
    op.create_index(op.f("ix_benchmark_rows_source_row_id"), "benchmark_rows", ["source_row_id"])
    op.create_table(
        "catalog_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        _text("value"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_catalog_meta")),
    )
    op.create_table(
        "cloud_offers",
        _id(),
        _text("provider"),
        _text("region"),
        _text("instance_type"),
        _text("gpu", nullable=True),
        _int("gpu_count"),
        _int("vcpus", nullable=True),
        _num("memory_gb", nullable=True),
        _num("price_per_hour_usd"),
        _num("spot_price_per_hour_usd", nullable=True),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_offers")),
        sa.UniqueConstraint(
            "provider", "region", "instance_type", name=op.f("uq_cloud_offers_provider_region_instance_type")
        ),
    )
    op.create_index(op.f("ix_cloud_offers_gpu"), "cloud_offers", ["gpu"])
    op.create_table(
        "models",
        _id(),
        _text("name"),
        _text("hf_id"),
        _num("params_b"),
        _num("active_params_b"),
        _int("num_layers"),
        _int("hidden_size"),
        _int("intermediate_size", nullable=True),
        _int("num_attention_heads"),
        _int("num_kv_heads"),
        _int("head_dim", nullable=True),
        _int("vocab_size"),
        _int("max_context"),
        _int("moe_num_experts", nullable=True),
        _int("moe_top_k", nullable=True),
        _int("moe_intermediate_size", nullable=True),
        _text("attention"),
        _int("kv_bytes_per_token_fp16"),
        _text("license"),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "use_case_templates",
        _id(),
        _text("name"),
        _text("description"),
        _int("prompt_tokens"),
        _int("output_tokens"),
        _num("ttft_p95_ms"),
        _num("itl_p95_ms"),
        _num("e2e_p95_ms"),
        _num("min_params_b"),
        *_provenance(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_use_case_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_use_case_templates_name")),
    )
    for table in _FACT_TABLES:
        op.create_index(op.f(f"ix_{table}_origin"), table, ["origin"])


def downgrade() -> None:
    for table in (*_FACT_TABLES, "catalog_meta"):
        op.drop_table(table)
