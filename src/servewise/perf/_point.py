"""One configuration under one load, predicted by the scheduler simulation: the ``predict`` document.

Closed loop (``concurrency``): C clients each send their next request when the previous one completes, as a
benchmark does; open loop (``qps``): Poisson arrivals, the first 10 % warm the engine up. Why a library function:
``servewise predict`` and ``POST /api/v1/predict`` must give the same numbers for the same inputs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from servewise.catalog import Accelerator, ModelSpec
from servewise.errors import UsageError
from servewise.types import Precision

from ._arrivals import closed_loop, poisson_arrivals, uniform_lengths
from ._benchpoint import RANGE_RATIO, BenchmarkSetup, setup_for_point, step_model_for
from ._calibrate import CalibrationTable
from ._engine import default_engine_settings
from ._estimate import with_correction
from ._params import ANALYTICAL_PARAMS, StepParams
from ._roofline import StepModel
from ._scheduler import SimResult, simulate

__all__ = [
    "DEFAULT_OPEN_LOOP_REQUESTS",
    "PREDICT_METRICS",
    "PREDICT_QUANTILES",
    "placement_text",
    "predict_point",
    "tp_reason",
]

DEFAULT_OPEN_LOOP_REQUESTS = 2000
MIN_QPS = 0.001
"""Below one request per ~17 minutes the simulated arrival times overflow; no serving question needs less."""
PREDICT_QUANTILES = (50, 90, 95, 99)
PREDICT_METRICS = (("ttft", "TTFT"), ("itl", "ITL"), ("tpot", "TPOT"), ("e2e", "E2E"))


def tp_reason(model: ModelSpec, tp: int) -> str | None:
    """Why ``tp`` cannot serve ``model`` (vLLM splits attention heads evenly and splits or replicates KV heads;
    MLA keeps one latent per rank), or None."""
    kv = model.num_kv_heads
    if model.num_attention_heads % tp == 0 and (model.is_mla or kv % tp == 0 or tp % kv == 0):
        return None
    valid = [t for t in (1, 2, 4, 8, 16) if tp_reason(model, t) is None]
    return (
        f"--tp {tp} does not split {model.name}'s {model.num_attention_heads} attention heads and {kv} KV heads "
        f"evenly; valid: {', '.join(map(str, valid))}"
    )


def placement_text(tp: int, dp: int, gpu: str) -> str:
    """``2xH100`` or ``2xH100 x dp4``."""
    return f"{tp}x{gpu}" + (f" x dp{dp}" if dp > 1 else "")


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    if values.size == 0 or float(weights.sum()) <= 0:
        return math.nan
    return float(np.average(values, weights=weights))


def _latency(result: SimResult) -> dict[str, dict[str, float | None]]:
    """p50/p90/p95/p99 and mean of each metric, in ms (None where no request produced one)."""

    def ms(seconds: float) -> float | None:
        return round(seconds * 1000.0, 3) if math.isfinite(seconds) else None

    out: dict[str, dict[str, float | None]] = {}
    for metric, _ in PREDICT_METRICS:
        values = {f"p{q}": ms(result.percentile(metric, q)) for q in PREDICT_QUANTILES}
        mean = _weighted_mean(result.itl_s, result.itl_weight) if metric == "itl" else result.mean(metric)
        values["mean"] = ms(mean)
        out[metric] = values
    return out


def _document(
    setup: BenchmarkSetup,
    result: SimResult,
    params: StepParams,
    step: StepModel,
    calibration: str,
    load: dict[str, Any],
) -> dict[str, Any]:
    dp = setup.dp
    return {
        "model": setup.model.name,
        "gpu": setup.gpu.name,
        "tp": setup.tp,
        "dp": dp,
        "precision": str(setup.precision),
        "backend": setup.backend,
        "expert_parallel": setup.expert_parallel,
        "load": load,
        "latency_ms": _latency(result),
        "output_tokens_per_s": round(result.output_tokens_per_s * dp, 2),
        "requests_per_s": round(result.requests_per_s * dp, 4),
        "completed": result.completed,
        "preemptions": result.preemptions,
        "dropped": result.dropped,
        "peak_kv_usage": round(result.peak_kv_blocks / result.kv_blocks, 4) if result.kv_blocks else None,
        "engine": {
            "max_num_seqs": setup.engine.max_num_seqs,
            "max_num_batched_tokens": setup.engine.max_num_batched_tokens,
            "kv_blocks": setup.engine.kv_blocks,
            "block_size": setup.engine.block_size,
            "kv_cache_bytes_per_element": setup.kv_bytes,
        },
        "provenance": str(params.provenance),
        "basis": with_correction(params.basis, step),
        "correction": (
            {
                "step_time_factor": round(step.step_time_factor, 4),
                "prefill_factor": round(step.prefill_factor, 4),
                "basis": step.correction,
            }
            if step.correction
            else None
        ),
        "calibration": calibration,
    }


def expert_parallel_reason(spec: ModelSpec, gpus: int) -> str | None:
    """Why ``spec`` on ``gpus`` GPUs cannot split its experts by expert, or None."""
    if not (spec.moe_num_experts and spec.moe_num_experts > 1):
        return f"--expert-parallel splits a mixture-of-experts model's experts; {spec.name} is dense: drop it"
    if gpus < 2:
        return "--expert-parallel needs more than one GPU per replica: add --tp N or --dp N (N >= 2)"
    return None


def predict_point(
    spec: ModelSpec,
    accelerator: Accelerator,
    precision: Precision,
    backend: str,
    *,
    isl: int,
    osl: int,
    tp: int = 1,
    dp: int = 1,
    concurrency: int | None = None,
    qps: float | None = None,
    requests: int | None = None,
    max_num_seqs: int | None = None,
    seed: int = 0,
    calibration: tuple[CalibrationTable | None, str] = (None, "analytical defaults"),
    expert_parallel: bool = False,
) -> dict[str, Any]:
    """The predict document (latency percentiles in ms, throughput, engine, provenance) of ``spec`` on ``tp`` x
    ``accelerator`` under ``concurrency`` clients or ``qps`` Poisson requests/s (exactly one); ``calibration`` is
    the table of fitted efficiencies (None: the analytical defaults) and the label saying which;
    ``expert_parallel`` splits a MoE's routed experts by expert over the replica's GPUs (vLLM's
    ``--enable-expert-parallel``: an all-to-all per MoE layer) instead of slicing every expert by tensor."""
    if (concurrency is None) == (qps is None):
        raise UsageError(
            "give exactly one of --concurrency (closed loop, as a benchmark) or --qps (open loop, Poisson)"
        )
    if qps is not None and not (qps >= MIN_QPS and math.isfinite(qps)):
        raise UsageError(
            f"--qps must be a positive number of requests per second, at least {MIN_QPS:g} (got {qps})"
        )
    reason = tp_reason(spec, tp) or (expert_parallel_reason(spec, tp * dp) if expert_parallel else None)
    if reason:
        raise UsageError(reason)
    if isl + osl > spec.max_context:  # the planner's "context" rejection, for one configuration
        raise UsageError(
            f"{spec.name}'s context is {spec.max_context} tokens; --isl {isl} + --osl {osl} = {isl + osl} do not "
            "fit: shorten them or pick a model with a longer context"
        )
    if concurrency is None:
        # Open loop: the engine's own sequence cap (vLLM's default for this GPU), per data-parallel rank.
        clients = (max_num_seqs or default_engine_settings(accelerator).max_num_seqs) * dp
    else:
        clients = concurrency
    setup = setup_for_point(
        spec,
        accelerator,
        precision,
        str(backend),
        tp=tp,
        dp=dp,
        isl=isl,
        osl=osl,
        concurrency=clients,
        max_num_seqs=max_num_seqs,
        seed=seed,
        expert_parallel=expert_parallel,
    )
    if isinstance(setup, str):
        raise UsageError(f"{spec.name} {precision} on {placement_text(tp, dp, accelerator.name)}: {setup}")
    if qps is not None:
        # The fitted per-client frontend terms describe a benchmark's pool of concurrent clients; an open-loop rate
        # has none, as in the planner's open-loop capacity.
        setup = dataclasses.replace(setup, clients=0)
    table, calibration_label = calibration
    params = (
        ANALYTICAL_PARAMS
        if table is None
        else table.params_for(setup.gpu.name, setup.backend, str(setup.precision))
    )
    lengths = uniform_lengths(isl, osl, RANGE_RATIO)
    workload: Any
    if qps is not None:
        n = requests or DEFAULT_OPEN_LOOP_REQUESTS
        workload = poisson_arrivals(qps / dp, n, lengths, seed=seed)
        load: dict[str, Any] = {"mode": "open-loop", "qps": qps, "concurrency": None}
    else:
        workload = setup.workload
        if requests is not None:
            workload = closed_loop(setup.workload.concurrency, requests, lengths, seed=seed)
        n = len(workload.requests)
        load = {"mode": "closed-loop", "qps": None, "concurrency": concurrency}
    load |= {"isl": isl, "osl": osl, "requests": n, "seed": seed, "range_ratio": RANGE_RATIO}
    step = step_model_for(setup, params)
    result = simulate(step, setup.engine, workload)
    return _document(setup, result, params, step, calibration_label, load)
