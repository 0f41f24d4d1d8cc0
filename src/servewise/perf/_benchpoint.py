"""A measured benchmark row as a simulation: the same model, GPUs, parallelism, engine limits and client load.

Why one place: ``calibrate`` fits on these simulations, ``accuracy`` scores them and ``predict`` answers the same
question for a point nobody measured, so all three must set the engine up identically.

How the rows were measured (shared/data/benchmarks/README.md; the InferenceX harness the source database comes
from): a fork of vLLM's ``benchmark_serving.py`` with ``--max-concurrency C --num-prompts 10·C
--random-range-ratio 0.8 --ignore-eos``, after ``2·C`` warm-up requests; the row holds the *mean* TTFT and TPOT
over the 10·C requests. We simulate the first wave (all C clients sending at once) and two more waves' worth of
requests, and weigh the first wave as 1/10 of the run, so a short simulation stands for the whole one.

Engine limits per backend (their serving defaults): token budget 8192 per step (vLLM ``max_num_batched_tokens`` on
large GPUs, TensorRT-LLM ``max_num_tokens``, SGLang ``chunked_prefill_size`` below 160 GB), 16384 for SGLang on
GPUs with more memory; the sequence cap is the row's per-rank batch size (the harness sets it to the concurrency).
KV cache: fp8 for fp8/fp4 checkpoints (the recipes' ``--kv-cache-dtype fp8``), 16-bit otherwise. A row's ``dp``
attention data-parallel ranks each serve C/dp clients; the simulation runs one rank. ``row_parallelism`` reads
rows whose attention-DP flag the source lost (their concurrency and per-rank batch give it away).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator, Alias, BenchmarkRow, ModelSpec
from servewise.catalog._aliases import resolve_gpu, resolve_model
from servewise.types import Precision

from ._arrivals import ClosedLoop, closed_loop, uniform_lengths
from ._engine import EngineSettings
from ._memory import memory_plan
from ._params import StepParams
from ._precision import unsupported_reason
from ._roofline import StepModel, build_step_model
from ._scheduler import SimEngine, SimResult, simulate

__all__ = [
    "BACKENDS",
    "RANGE_RATIO",
    "BenchmarkSetup",
    "PointResult",
    "engine_for",
    "row_parallelism",
    "setup_for_point",
    "setup_for_row",
    "simulate_point",
    "step_model_for",
]

BACKENDS = ("vllm", "sglang", "trtllm")
RANGE_RATIO = 0.8
"""InferenceX draws each request's lengths uniformly from [0.8 × len, len]."""
REQUESTS_PER_CLIENT = 10
SIMULATED_WAVES = 3
_SGLANG_LARGE_GPU_GB = 160


@dataclass(frozen=True, slots=True)
class BenchmarkSetup:
    """Everything needed to simulate one closed-loop point."""

    model: ModelSpec
    gpu: Accelerator
    precision: Precision
    backend: str
    tp: int
    dp: int
    engine: SimEngine
    kv_bytes: int
    workload: ClosedLoop
    label: str
    clients: int = 0
    """The benchmark's concurrency (all ranks): the frontend serves every client."""
    expert_parallel: bool = False
    """Routed experts split by expert (all-to-all dispatch), not by tensor: the row's ``moe_ep`` > 1."""


@dataclass(frozen=True, slots=True)
class PointResult:
    ttft_ms: float
    tpot_ms: float
    result: SimResult


def engine_for(gpu: Accelerator, backend: str, max_num_seqs: int) -> tuple[int, int]:
    """(max_num_seqs, token budget) of ``backend`` on ``gpu`` with a sequence cap of ``max_num_seqs``."""
    budget = 16384 if backend == "sglang" and gpu.memory_gb >= _SGLANG_LARGE_GPU_GB else 8192
    return max_num_seqs, max(budget, max_num_seqs)


def _kv_bytes(precision: Precision) -> int:
    return 1 if precision in (Precision.fp8, Precision.fp4) else 2


def setup_for_point(
    model: ModelSpec,
    gpu: Accelerator,
    precision: Precision,
    backend: str,
    *,
    tp: int,
    dp: int = 1,
    isl: int,
    osl: int,
    concurrency: int,
    max_num_seqs: int | None = None,
    range_ratio: float = RANGE_RATIO,
    seed: int = 0,
    expert_parallel: bool = False,
) -> BenchmarkSetup | str:
    """The simulation of a closed-loop benchmark point, or why it cannot be simulated (one line)."""
    reason = unsupported_reason(gpu, precision)
    if reason:
        return reason
    per_rank = max(1, math.ceil(concurrency / dp))
    seqs, budget = engine_for(gpu, backend, min(max_num_seqs or per_rank, per_rank))
    kv_bytes = _kv_bytes(precision)
    settings = EngineSettings(
        max_num_seqs=seqs, max_num_batched_tokens=budget, kv_cache_bytes_per_element=kv_bytes
    )
    memory = memory_plan(
        model, gpu, tp, precision, settings, mean_seq_tokens=isl + osl, max_model_len=isl + osl, dp=dp
    )
    if not memory.fits:
        return f"does not fit by the memory model: {memory.reason}"
    total = REQUESTS_PER_CLIENT * per_rank
    simulated = min(total, SIMULATED_WAVES * per_rank)
    workload = closed_loop(
        per_rank,
        simulated,
        uniform_lengths(isl, osl, range_ratio),
        seed=seed,
        first_wave_weight=None if simulated == total else 1.0 / REQUESTS_PER_CLIENT,
    )
    engine = SimEngine(seqs, budget, max(1, memory.kv_capacity_tokens // settings.block_size_tokens))
    label = f"{model.name} {backend} {tp}x{dp} {gpu.name} {precision} {isl}/{osl} c={concurrency}"
    return BenchmarkSetup(
        model,
        gpu,
        precision,
        backend,
        tp,
        dp,
        engine,
        kv_bytes,
        workload,
        label,
        clients=concurrency,
        expert_parallel=expert_parallel,
    )


def setup_for_row(
    row: BenchmarkRow,
    models: tuple[ModelSpec, ...],
    accelerators: tuple[Accelerator, ...],
    aliases: tuple[Alias, ...],
) -> BenchmarkSetup | str:
    """The simulation of a calibration row, or why the row is skipped (one line)."""
    model_name = resolve_model(row.model, models, aliases)
    if model_name is None:
        return f"unknown model {row.model!r}"
    gpu_name = resolve_gpu(row.system, accelerators, aliases)
    if gpu_name is None:
        return f"unknown system {row.system!r}"
    if row.backend not in BACKENDS:
        return f"unknown backend {row.backend!r}"
    try:
        precision = Precision(row.precision)
    except ValueError:
        return f"unknown precision {row.precision!r}"
    if row.pp > 1:
        return "pipeline parallelism is not modelled"
    parallelism = row_parallelism(row)
    if isinstance(parallelism, str):
        return parallelism
    tp, dp = parallelism
    model = next(m for m in models if m.name == model_name)
    gpu = next(g for g in accelerators if g.name == gpu_name)
    return setup_for_point(
        model,
        gpu,
        precision,
        row.backend,
        tp=tp,
        dp=dp,
        isl=row.isl,
        osl=row.osl,
        concurrency=row.concurrency,
        max_num_seqs=row.batch_size or None,
        expert_parallel=(row.id_ep if row.parallelism_suspect and row.id_ep else row.moe_ep) > 1,
    )


def row_parallelism(row: BenchmarkRow) -> tuple[int, int] | str:
    """(tp, attention-DP ranks) of a row's engine, or why the row is not one engine's closed loop.

    The engine holds ``batch_size`` sequences per attention rank, so a closed loop of C clients fits in its slots
    when C ≤ batch_size × dp. 30 TensorRT-LLM rows say C = batch_size × tp with no attention DP (blank or 0) and a
    TTFT that shows no queue (0.4–0.9 s at C = 40–448, where C − batch_size clients waiting for whole requests to
    finish would wait minutes): TensorRT-LLM's ``enable_attention_dp`` runs attention data-parallel over the
    ``tp_size`` ranks, the way the source writes its other attention-DP rows as tp 1 × attention_dp N. Those rows
    are read so (tp 1, dp = tp: the same GPUs); a row whose C is some other multiple of its slots cannot be one
    engine's closed loop and is skipped with the reason.
    """
    tp = max(row.id_tp if row.parallelism_suspect and row.id_tp else row.tp, 1)
    dp = max(row.attention_dp, 1)
    slots = (row.batch_size or row.concurrency) * dp
    if row.concurrency <= slots:
        return tp, dp
    if dp == 1 and tp > 1 and row.concurrency == slots * tp:
        return 1, tp
    return (
        f"concurrency {row.concurrency} exceeds batch_size {row.batch_size} x {dp} attention-DP rank(s): "
        "more clients than the engine's slots, so not one engine's closed loop"
    )


def step_model_for(setup: BenchmarkSetup, params: StepParams) -> StepModel:
    return build_step_model(
        setup.model,
        setup.gpu,
        setup.tp,
        setup.precision,
        params,
        kv_bytes=setup.kv_bytes,
        dp=setup.dp,
        clients=setup.clients,
        expert_parallel=setup.expert_parallel,
    )


def simulate_point(setup: BenchmarkSetup, params: StepParams, *, record_steps: bool = False) -> PointResult:
    """Mean TTFT and TPOT (ms) of the simulated benchmark, as the harness reports them."""
    result = simulate(step_model_for(setup, params), setup.engine, setup.workload, record_steps=record_steps)
    return PointResult(result.mean("ttft") * 1000.0, result.mean("tpot") * 1000.0, result)
