"""Typed catalog records: the plain data every other room reads.

Why frozen dataclasses and not the ORM rows: ``perf``, ``cost`` and ``planner`` are pure and must not depend on a
database session. The catalog turns its rows into these records (and CSV rows into them on import), so the math only
ever sees immutable values with units in their names.

Units: ``_gb`` are vendor GB (10^9 bytes); ``_gbps`` are GB/s (not Gbit/s); ``_tflops`` / ``_tops`` are dense
tensor-core peaks in 10^12 operations per second; ``_b`` are billions of parameters; ``_usd`` are US dollars.
``as_of`` is the date the fact was read from its source, ``None`` where the source gives none (``catalog health``
lists those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = [
    "Accelerator",
    "Alias",
    "ApiPrice",
    "BenchmarkRow",
    "CatalogSnapshot",
    "CloudOffer",
    "CpuSpec",
    "ModelSpec",
    "UseCaseTemplate",
]


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One accelerator model (a GPU, TPU or Gaudi), specs per device."""

    name: str
    vendor: str
    memory_gb: float
    memory_bw_gbps: float
    fp16_tflops: float | None
    bf16_tflops: float | None
    fp8_tflops: float | None
    int8_tops: float | None
    fp4_tflops: float | None
    interconnect: str
    intra_node_bw_gbps: float
    """Per-device bidirectional scale-up bandwidth (NVLink, Infinity Fabric, or the PCIe link)."""
    max_per_node: int
    tdp_w: float | None
    launch_year: int | None
    list_price_usd: float | None
    source: str
    as_of: date | None = None
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Architecture facts of one open-weights model, enough to size memory and FLOPs."""

    name: str
    hf_id: str
    params_b: float
    """Total parameters (all experts of a MoE), billions."""
    active_params_b: float
    """Parameters used per token (shared + routed top-k experts), billions."""
    num_layers: int
    hidden_size: int
    intermediate_size: int | None
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int | None
    vocab_size: int
    max_context: int
    moe_num_experts: int | None
    moe_top_k: int | None
    moe_intermediate_size: int | None
    attention: str
    """``gqa``, ``mha``, ``mla``, ``gqa+sliding`` …, as the source names it."""
    kv_bytes_per_token_fp16: int
    """KV-cache bytes per token at 16-bit, summed over all layers (MLA: the compressed latent)."""
    license: str
    source: str
    as_of: date | None = None
    notes: str = ""
    sliding_window_tokens: int | None = None
    """Keys a sliding-window layer attends to (gpt-oss 128, Gemma-2 4096); ``None``: every layer is global."""
    sliding_layers: int | None = None
    """How many of ``num_layers`` attend within the window; the rest attend to the whole context."""

    @property
    def is_moe(self) -> bool:
        return bool(self.moe_num_experts and self.moe_top_k)

    @property
    def is_mla(self) -> bool:
        return self.attention.startswith("mla")

    @property
    def sliding_share(self) -> float:
        """Share of layers whose attention (FLOPs, KV reads) stops growing at the window."""
        if not self.sliding_window_tokens or not self.sliding_layers:
            return 0.0
        return min(self.sliding_layers / self.num_layers, 1.0)


@dataclass(frozen=True, slots=True)
class CloudOffer:
    """A rentable instance: the whole machine's price per hour, with ``gpu_count`` accelerators of one type."""

    provider: str
    region: str
    instance_type: str
    gpu: str | None
    """Canonical accelerator name, ``None`` for CPU-only instances."""
    gpu_count: int
    vcpus: int | None
    memory_gb: float | None
    """Host RAM as the provider lists it."""
    price_per_hour_usd: float
    spot_price_per_hour_usd: float | None
    source: str
    as_of: date | None = None
    notes: str = ""


@dataclass(frozen=True, slots=True)
class CpuSpec:
    """The CPU share of one CPU-only instance type: what the CPU step model (``perf/_cpu.py``) needs.

    Why per instance type and not per CPU SKU: a cloud VM gets a slice of a socket, and its memory bandwidth and
    matrix throughput scale with that slice. ``memory_bw_gbps`` is that slice's share of the socket's bandwidth,
    an assumption (providers do not publish it) that each row's ``notes`` states.
    """

    provider: str
    instance_type: str
    cpu_model: str
    vcpus: int
    physical_cores: int
    """Cores behind the vCPUs (two hyper-threads per core on x86)."""
    socket_cores: int
    socket_memory_bw_gbps: float
    """Peak DRAM bandwidth of the whole socket (channels × transfer rate × 8 bytes)."""
    memory_bw_gbps: float
    """Peak DRAM bandwidth this instance can count on: the socket's × physical_cores / socket_cores."""
    bf16_tflops: float | None
    """Dense BF16 matrix peak of the instance's cores (AMX on Sapphire Rapids); empty without BF16 units."""
    int8_tops: float | None
    isa: str
    """Matrix/vector extensions, ``+``-separated (``avx512+amx_bf16+amx_int8``)."""
    source: str
    as_of: date | None = None
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ApiPrice:
    """A hosted LLM API's token prices, USD per million tokens."""

    provider: str
    model: str
    input_per_1m_usd: float
    output_per_1m_usd: float
    cached_input_per_1m_usd: float | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    source: str
    as_of: date | None = None
    notes: str = ""


@dataclass(frozen=True, slots=True)
class BenchmarkRow:
    """One measured closed-loop serving point (all columns of ``calibration.csv``)."""

    model: str
    backend: str
    mode: str
    system: str
    gpu_count: int
    tp: int
    precision: str
    isl: int
    osl: int
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    pp: int
    attention_dp: int
    moe_tp: int
    moe_ep: int
    batch_size: int | None
    backend_version: str
    gemm_quant_mode: str
    moe_quant_mode: str
    precision_inferred: bool
    concurrency_from_source: bool
    measured_date: date | None
    container_image: str
    id_tp: int | None
    id_ep: int | None
    parallelism_suspect: bool
    source_row_id: str
    source: str
    as_of: date | None = None


@dataclass(frozen=True, slots=True)
class UseCaseTemplate:
    """A named workload shape with p95 SLO targets; lengths are means of their distributions."""

    name: str
    description: str
    prompt_tokens: int
    output_tokens: int
    ttft_p95_ms: float
    itl_p95_ms: float
    e2e_p95_ms: float
    min_params_b: float
    """Default quality floor (total parameters, billions): a product default, overridable, printed as an assumption."""
    source: str
    as_of: date | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    """Another name for a catalog entry: ``kind`` is ``gpu`` or ``model``."""

    kind: str
    alias: str
    target: str
    source: str
    notes: str = ""


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    """Everything the planner needs, read once: pure code takes this instead of a database session."""

    accelerators: tuple[Accelerator, ...]
    models: tuple[ModelSpec, ...]
    offers: tuple[CloudOffer, ...]
    api_prices: tuple[ApiPrice, ...] = ()
    use_cases: tuple[UseCaseTemplate, ...] = ()
    cpus: tuple[CpuSpec, ...] = ()
    """CPU specs of CPU-only instance types (for CPU serving options)."""
