"""What the simulator serves: one replica's step model, scheduler limits and KV cache, set up as ``predict`` does.

Two sources, one result (``SimulatorConfig``):

* ``simulator_config(model=…, gpu=…, tp=…, precision=…, backend=…)``: the catalog's model and GPU, the step-model
  efficiencies of (GPU, backend, precision) from the packaged calibration fit (else the analytical defaults), the
  engine ``predict --qps`` simulates (the GPU's vLLM default ``max_num_seqs``, the backend's token budget from
  ``perf._benchpoint.engine_for``, fp8 KV cache for fp8/fp4 weights) and the KV cache of the memory plan;
* ``config_from_plan(document, rank)``: a plan option's candidate and its engine settings as the plan wrote them
  (what ``deploy`` would start), the KV capacity and ``max_model_len`` of its memory plan, the workload's output
  length distribution and prefix share.

The frontend's per-request overhead of the step model is added to each request's first and later tokens, as
``perf.simulate`` adds it to TTFT and E2E. An open server has no fixed client count, so the fitted per-client
terms are left out (``clients = 0``, as ``predict --qps`` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from servewise.catalog import Accelerator, ModelSpec, open_catalog
from servewise.errors import UsageError
from servewise.perf import (
    ANALYTICAL_PARAMS,
    EngineSettings,
    SimEngine,
    StepModel,
    StepParams,
    build_step_model,
    default_engine_settings,
    load_fitted_table,
    memory_plan,
    serving_precision,
    unsupported_reason,
)
from servewise.perf._benchpoint import BACKENDS, engine_for
from servewise.types import Precision
from servewise.workload._model import LengthDistribution

__all__ = ["SimulatorConfig", "config_from_plan", "simulator_config"]

DEFAULT_OUTPUT_TOKENS = 256
"""Output length when a request sets no ``max_tokens`` and no plan gives a distribution (an assumption)."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the server needs; build with ``simulator_config`` or ``config_from_plan``."""

    served_model: str
    """The name ``/v1/models`` lists and requests must use (the Hugging Face id, as ``vllm serve`` does)."""
    model: str
    """The catalog's name for it; requests may use this name too."""
    gpu: str
    tp: int
    precision: str
    backend: str
    step: StepModel
    engine: SimEngine
    max_model_len: int
    """Longest prompt + output accepted (vLLM answers 400 beyond it)."""
    output_tokens: LengthDistribution
    """Output length of a request that sets no ``max_tokens`` (drawn with ``seed``)."""
    provenance: str
    basis: str
    speed: float = 1.0
    """Simulated seconds per wall second: 10 runs the replica ten times faster than real time."""
    max_waiting: int | None = None
    """Requests queued beyond this are refused with 429 (None: unbounded, as vLLM)."""
    seed: int = 0
    prefix_hit_ratio: float = 0.0
    legacy_metrics: bool = False
    """Also expose the metric names vLLM removed (``vllm:gpu_cache_usage_perc``,
    ``vllm:time_per_output_token_seconds``) for dashboards that still read them."""

    def __post_init__(self) -> None:
        if not (self.speed > 0 and math.isfinite(self.speed)):
            raise UsageError(f"--speed must be a positive number (got {self.speed}); 1 is real time")
        if self.max_waiting is not None and self.max_waiting < 0:
            raise UsageError(f"--max-waiting must be >= 0 (got {self.max_waiting})")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.served_model, self.model)

    def describe(self) -> str:
        return f"{self.model} {self.precision} on {self.tp}x{self.gpu} ({self.backend})"

    def draw_output_tokens(self, rng: np.random.Generator) -> int:
        """One output length from the configured distribution."""
        u = min(max(float(rng.random()), 1e-9), 1.0 - 1e-9)
        return max(1, round(self.output_tokens.quantile(u)))


def _params(gpu: Accelerator, backend: str, precision: Precision) -> StepParams:
    table = load_fitted_table()
    if table is None:
        return ANALYTICAL_PARAMS
    return table.params_for(gpu.name, backend, str(precision))


def _kv_bytes(precision: Precision) -> int:
    return 1 if precision in (Precision.fp8, Precision.fp4) else 2


def _tp_reason(model: ModelSpec, tp: int) -> str | None:
    from servewise.cli._predict import tp_reason  # the CLI's check, shared so both refuse the same --tp

    return tp_reason(model, tp)


def build_config(
    spec: ModelSpec,
    accelerator: Accelerator,
    *,
    tp: int,
    precision: Precision,
    backend: str,
    settings: EngineSettings,
    max_model_len: int | None,
    output_tokens: LengthDistribution,
    speed: float,
    max_waiting: int | None,
    seed: int,
    prefix_hit_ratio: float,
    legacy_metrics: bool = False,
) -> SimulatorConfig:
    """The replica of ``spec`` on ``tp`` × ``accelerator`` with engine ``settings``; ``UsageError`` when it cannot
    run (unsupported precision, bad ``tp``, does not fit in memory)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    reason = unsupported_reason(accelerator, precision) or _tp_reason(spec, tp)
    if reason:
        raise UsageError(f"{spec.name} {precision} on {tp}x{accelerator.name}: {reason}")
    probe = memory_plan(spec, accelerator, tp, precision, settings, mean_seq_tokens=1, max_model_len=1)
    if not probe.fits:
        raise UsageError(f"{spec.name} {precision} on {tp}x{accelerator.name} does not fit: {probe.reason}")
    capacity = probe.kv_capacity_tokens
    length = min(max_model_len or spec.max_context, capacity)
    if max_model_len is not None and max_model_len > capacity:
        raise UsageError(
            f"--max-model-len {max_model_len} exceeds the KV cache of {capacity} tokens on {tp}x{accelerator.name}"
            " (vLLM refuses to start); lower it or add GPUs (--tp)"
        )
    params = _params(accelerator, backend, precision)
    step = build_step_model(
        spec, accelerator, tp, precision, params, kv_bytes=settings.kv_cache_bytes_per_element
    )
    engine = SimEngine(
        settings.max_num_seqs,
        settings.max_num_batched_tokens,
        max(1, capacity // settings.block_size_tokens),
        settings.block_size_tokens,
    )
    return SimulatorConfig(
        served_model=spec.hf_id or spec.name,
        model=spec.name,
        gpu=accelerator.name,
        tp=tp,
        precision=str(precision),
        backend=backend,
        step=step,
        engine=engine,
        max_model_len=length,
        output_tokens=output_tokens,
        provenance=str(params.provenance),
        basis=params.basis,
        speed=speed,
        max_waiting=max_waiting,
        seed=seed,
        prefix_hit_ratio=prefix_hit_ratio,
        legacy_metrics=legacy_metrics,
    )


def simulator_config(
    *,
    model: str,
    gpu: str,
    tp: int = 1,
    precision: str | None = None,
    backend: str = "vllm",
    speed: float = 1.0,
    max_waiting: int | None = None,
    seed: int = 0,
    max_num_seqs: int | None = None,
    max_model_len: int | None = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    prefix_hit_ratio: float = 0.0,
    db_url: str | None = None,
    legacy_metrics: bool = False,
) -> SimulatorConfig:
    """A replica from the catalog, set up as ``servewise predict`` sets up an open-loop point (module docstring).
    ``precision`` defaults to 16-bit (bf16, or fp16 on GPUs without bf16)."""
    if tp < 1:
        raise UsageError(f"--tp must be >= 1 (got {tp})")
    if output_tokens < 1:
        raise UsageError(f"--output-tokens must be >= 1 (got {output_tokens})")
    try:
        wanted = Precision(precision) if precision else Precision.bf16
    except ValueError:
        raise UsageError(
            f"unknown precision {precision!r}; use one of {', '.join(p.value for p in Precision)}"
        ) from None
    with open_catalog(db_url) as catalog:
        spec = catalog.model(model)
        accelerator = catalog.accelerator(gpu)
    chosen = serving_precision(accelerator, wanted) if precision is None else wanted
    seqs = max_num_seqs or default_engine_settings(accelerator).max_num_seqs
    seqs, budget = engine_for(accelerator, backend, seqs)
    settings = EngineSettings(
        max_num_seqs=seqs, max_num_batched_tokens=budget, kv_cache_bytes_per_element=_kv_bytes(chosen)
    )
    return build_config(
        spec,
        accelerator,
        tp=tp,
        precision=chosen,
        backend=backend,
        settings=settings,
        max_model_len=max_model_len,
        output_tokens=LengthDistribution(mean=output_tokens),
        speed=speed,
        max_waiting=max_waiting,
        seed=seed,
        prefix_hit_ratio=prefix_hit_ratio,
        legacy_metrics=legacy_metrics,
    )


def config_from_plan(
    document: dict[str, Any],
    rank: int = 1,
    *,
    speed: float = 1.0,
    max_waiting: int | None = None,
    seed: int = 0,
    db_url: str | None = None,
    legacy_metrics: bool = False,
) -> SimulatorConfig:
    """The option of rank ``rank`` (1 = best) of a plan document (docs/plan-json.md) as a simulator config."""
    options = document.get("options") if isinstance(document, dict) else None
    if not isinstance(options, list) or not options:
        raise UsageError(
            "the plan has no options to simulate; write one with `servewise plan ... -o plan.json`"
        )
    option = next((o for o in options if isinstance(o, dict) and o.get("rank") == rank), None)
    if option is None:
        raise UsageError(f"the plan has no option of rank {rank}; pick --option 1 to {len(options)}")
    try:
        candidate = option["candidate"]
        if candidate.get("cpu"):
            raise UsageError(
                f"option {rank} is a CPU option ({candidate['cpu']}); the simulator models GPU replicas only"
            )
        engine = candidate["engine"]
        settings = EngineSettings(
            max_num_seqs=int(engine["max_num_seqs"]),
            max_num_batched_tokens=int(engine["max_num_batched_tokens"]),
            gpu_memory_utilization=float(engine["gpu_memory_utilization"]),
            block_size_tokens=int(engine["block_size_tokens"]),
            kv_cache_bytes_per_element=int(engine["kv_cache_bytes_per_element"]),
        )
        traffic = document["workload"]["traffic"]
        lengths = LengthDistribution.model_validate(traffic["output_tokens"])
        prefix_share = float(traffic.get("prefix_share") or 0.0)
        max_model_len = int(option["perf"]["memory"]["max_model_len"])
        precision = Precision(candidate["precision"])
        model_name, gpu_name, tp = str(candidate["model"]), str(candidate["gpu"]), int(candidate["tp"])
    except (KeyError, TypeError, ValueError, ValidationError) as err:
        raise UsageError(
            f"the plan's option {rank} is not a plan document option ({type(err).__name__}: {err}); "
            "write the plan with `servewise plan ... -o plan.json`"
        ) from None
    with open_catalog(db_url) as catalog:
        spec = catalog.model(model_name)
        accelerator = catalog.accelerator(gpu_name)
    return build_config(
        spec,
        accelerator,
        tp=tp,
        precision=precision,
        backend="vllm",
        settings=settings,
        max_model_len=max_model_len,
        output_tokens=lengths,
        speed=speed,
        max_waiting=max_waiting,
        seed=seed,
        prefix_hit_ratio=prefix_share,
        legacy_metrics=legacy_metrics,
    )
