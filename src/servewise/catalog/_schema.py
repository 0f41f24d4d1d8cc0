"""SQLAlchemy 2 tables of the catalog database.

Why the column names equal the record fields of ``_records.py``: rows and records convert by name, so a new
field needs one column, one migration and nothing else. Every fact table carries ``source``, ``as_of`` and
``notes`` (the provenance every number keeps) and ``origin`` (``packaged`` rows are replaced when the packaged
CSVs change; ``user`` rows, written by ``servewise catalog import``, are never touched by that refresh).

A change here needs a new migration in ``migrations/versions`` and a new ``HEAD_REVISION`` in ``_db.py``; the
tests compare the migrated database with this metadata.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, Double, Index, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AcceleratorRow",
    "AliasRow",
    "ApiPriceRow",
    "Base",
    "BenchmarkRowRow",
    "CatalogMetaRow",
    "CloudOfferRow",
    "CpuRow",
    "DeployAuditRow",
    "ModelRow",
    "UseCaseRow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base; constraint names are fixed so SQLite and PostgreSQL migrate alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {float: Double(), str: String()}


class _Fact:
    """Provenance columns shared by every fact table."""

    source: Mapped[str]
    as_of: Mapped[date | None]
    notes: Mapped[str] = mapped_column(default="")
    origin: Mapped[str] = mapped_column(String(16), default="packaged", index=True)


class AcceleratorRow(_Fact, Base):
    __tablename__ = "accelerators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    vendor: Mapped[str]
    memory_gb: Mapped[float]
    memory_bw_gbps: Mapped[float]
    fp16_tflops: Mapped[float | None]
    bf16_tflops: Mapped[float | None]
    fp8_tflops: Mapped[float | None]
    int8_tops: Mapped[float | None]
    fp4_tflops: Mapped[float | None]
    interconnect: Mapped[str]
    intra_node_bw_gbps: Mapped[float]
    max_per_node: Mapped[int]
    tdp_w: Mapped[float | None]
    launch_year: Mapped[int | None]
    list_price_usd: Mapped[float | None]


class ModelRow(_Fact, Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    hf_id: Mapped[str]
    params_b: Mapped[float]
    active_params_b: Mapped[float]
    num_layers: Mapped[int]
    hidden_size: Mapped[int]
    intermediate_size: Mapped[int | None]
    num_attention_heads: Mapped[int]
    num_kv_heads: Mapped[int]
    head_dim: Mapped[int | None]
    vocab_size: Mapped[int]
    max_context: Mapped[int]
    moe_num_experts: Mapped[int | None]
    moe_top_k: Mapped[int | None]
    moe_intermediate_size: Mapped[int | None]
    attention: Mapped[str]
    kv_bytes_per_token_fp16: Mapped[int]
    license: Mapped[str]
    sliding_window_tokens: Mapped[int | None]
    sliding_layers: Mapped[int | None]


class CloudOfferRow(_Fact, Base):
    __tablename__ = "cloud_offers"
    __table_args__ = (UniqueConstraint("provider", "region", "instance_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str]
    region: Mapped[str]
    instance_type: Mapped[str]
    gpu: Mapped[str | None] = mapped_column(index=True)
    gpu_count: Mapped[int]
    vcpus: Mapped[int | None]
    memory_gb: Mapped[float | None]
    price_per_hour_usd: Mapped[float]
    spot_price_per_hour_usd: Mapped[float | None]


class CpuRow(_Fact, Base):
    __tablename__ = "cpus"
    __table_args__ = (UniqueConstraint("provider", "instance_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str]
    instance_type: Mapped[str]
    cpu_model: Mapped[str]
    vcpus: Mapped[int]
    physical_cores: Mapped[int]
    socket_cores: Mapped[int]
    socket_memory_bw_gbps: Mapped[float]
    memory_bw_gbps: Mapped[float]
    bf16_tflops: Mapped[float | None]
    int8_tops: Mapped[float | None]
    isa: Mapped[str]


class ApiPriceRow(_Fact, Base):
    __tablename__ = "api_prices"
    __table_args__ = (UniqueConstraint("provider", "model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str]
    model: Mapped[str]
    input_per_1m_usd: Mapped[float]
    output_per_1m_usd: Mapped[float]
    cached_input_per_1m_usd: Mapped[float | None]
    max_input_tokens: Mapped[int | None]
    max_output_tokens: Mapped[int | None]


class BenchmarkRowRow(_Fact, Base):
    """One measured point; a surrogate id because the source repeats configurations with different results."""

    __tablename__ = "benchmark_rows"
    __table_args__ = (Index(None, "model", "system"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str]
    backend: Mapped[str]
    mode: Mapped[str]
    system: Mapped[str]
    gpu_count: Mapped[int]
    tp: Mapped[int]
    precision: Mapped[str]
    isl: Mapped[int]
    osl: Mapped[int]
    concurrency: Mapped[int]
    ttft_ms: Mapped[float]
    tpot_ms: Mapped[float]
    pp: Mapped[int]
    attention_dp: Mapped[int | None]
    moe_tp: Mapped[int]
    moe_ep: Mapped[int]
    batch_size: Mapped[int | None]
    backend_version: Mapped[str]
    gemm_quant_mode: Mapped[str]
    moe_quant_mode: Mapped[str]
    precision_inferred: Mapped[bool]
    concurrency_from_source: Mapped[bool]
    measured_date: Mapped[date | None]
    container_image: Mapped[str]
    id_tp: Mapped[int | None]
    id_ep: Mapped[int | None]
    parallelism_suspect: Mapped[bool]
    source_row_id: Mapped[str] = mapped_column(index=True)


class UseCaseRow(_Fact, Base):
    __tablename__ = "use_case_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str]
    prompt_tokens: Mapped[int]
    output_tokens: Mapped[int]
    ttft_p95_ms: Mapped[float]
    itl_p95_ms: Mapped[float]
    e2e_p95_ms: Mapped[float]
    min_params_b: Mapped[float]


class AliasRow(_Fact, Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("kind", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    alias: Mapped[str]
    target: Mapped[str]


class CatalogMetaRow(Base):
    """Key/value facts about the database itself (e.g. ``packaged_fingerprint``)."""

    __tablename__ = "catalog_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str]


class DeployAuditRow(Base):
    """One ``servewise deploy --apply`` (dry runs and failures too): who, what, when and how it ended.

    ``objects`` is a JSON list of ``{kind, namespace, name, action}``; ``plan_sha256`` names the exact plan file."""

    __tablename__ = "deploy_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    os_user: Mapped[str]
    kube_user: Mapped[str | None]
    kube_context: Mapped[str | None]
    cluster: Mapped[str | None]
    plan_path: Mapped[str]
    plan_sha256: Mapped[str] = mapped_column(String(64))
    option_rank: Mapped[int]
    target: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str]
    objects: Mapped[str]
    object_count: Mapped[int]
    dry_run: Mapped[bool]
    result: Mapped[str] = mapped_column(String(16))
    message: Mapped[str]
