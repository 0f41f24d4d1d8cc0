"""Performance predictions with provenance: memory fit, roofline step time, capacity under an SLO.

Pure functions of catalog records and plain data; no I/O. Formulas are written out in each module's docstring.
"""

from ._capacity import (
    QUANTILES,
    LatencyPercentiles,
    LoadPoint,
    RequestShape,
    SloCheck,
    max_qps_under_slo,
    saturation_qps,
    slo_checks,
    slo_value,
    steady_state,
)
from ._engine import EngineSettings, default_engine_settings
from ._estimate import PerfEstimate, PerfRejection, estimate_replica, latency_at
from ._memory import MemoryPlan, kv_bytes_per_token_per_gpu, memory_plan, weight_bytes
from ._params import ANALYTICAL_PARAMS, StepParams
from ._precision import BYTES_PER_PARAM, peak_tflops, serving_precision, unsupported_reason
from ._roofline import StepModel, build_step_model

__all__ = [
    "ANALYTICAL_PARAMS",
    "BYTES_PER_PARAM",
    "QUANTILES",
    "EngineSettings",
    "LatencyPercentiles",
    "LoadPoint",
    "MemoryPlan",
    "PerfEstimate",
    "PerfRejection",
    "RequestShape",
    "SloCheck",
    "StepModel",
    "StepParams",
    "build_step_model",
    "default_engine_settings",
    "estimate_replica",
    "kv_bytes_per_token_per_gpu",
    "latency_at",
    "max_qps_under_slo",
    "memory_plan",
    "peak_tflops",
    "saturation_qps",
    "serving_precision",
    "slo_checks",
    "slo_value",
    "steady_state",
    "unsupported_reason",
    "weight_bytes",
]
