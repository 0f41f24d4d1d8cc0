"""Performance predictions with provenance: memory fit, roofline step time, capacity under an SLO.

Pure functions of catalog records and plain data; no I/O. Formulas are written out in each module's docstring.
"""

from ._arrivals import (
    ClosedLoop,
    OpenLoop,
    SimRequest,
    closed_loop,
    gamma_arrivals,
    load_trace,
    poisson_arrivals,
    sampled_lengths,
    uniform_lengths,
)
from ._calibrate import CalibrationTable, load_fitted_table
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
from ._cpu import (
    CPU_ANALYTICAL_PARAMS,
    CPU_ENGINE,
    CpuParams,
    build_cpu_step_model,
    cpu_memory_plan,
    cpu_serving_precision,
    cpu_unsupported_reason,
    estimate_cpu_replica,
)
from ._engine import EngineSettings, default_engine_settings
from ._estimate import PerfEstimate, PerfRejection, estimate_replica, latency_at
from ._memory import MemoryPlan, kv_bytes_per_token_per_gpu, memory_plan, weight_bytes
from ._params import ANALYTICAL_PARAMS, StepParams
from ._point import (
    DEFAULT_OPEN_LOOP_REQUESTS,
    PREDICT_METRICS,
    PREDICT_QUANTILES,
    placement_text,
    predict_point,
    tp_reason,
)
from ._precision import BYTES_PER_PARAM, peak_tflops, serving_precision, unsupported_reason, weight_only
from ._roofline import StepModel, build_step_model
from ._scheduler import SimEngine, SimResult, simulate
from ._simcapacity import SimPoint, simulated_max_qps, simulated_point

__all__ = [
    "ANALYTICAL_PARAMS",
    "BYTES_PER_PARAM",
    "CPU_ANALYTICAL_PARAMS",
    "CPU_ENGINE",
    "DEFAULT_OPEN_LOOP_REQUESTS",
    "PREDICT_METRICS",
    "PREDICT_QUANTILES",
    "QUANTILES",
    "CalibrationTable",
    "ClosedLoop",
    "CpuParams",
    "EngineSettings",
    "LatencyPercentiles",
    "LoadPoint",
    "MemoryPlan",
    "OpenLoop",
    "PerfEstimate",
    "PerfRejection",
    "RequestShape",
    "SimEngine",
    "SimPoint",
    "SimRequest",
    "SimResult",
    "SloCheck",
    "StepModel",
    "StepParams",
    "build_cpu_step_model",
    "build_step_model",
    "closed_loop",
    "cpu_memory_plan",
    "cpu_serving_precision",
    "cpu_unsupported_reason",
    "default_engine_settings",
    "estimate_cpu_replica",
    "estimate_replica",
    "gamma_arrivals",
    "kv_bytes_per_token_per_gpu",
    "latency_at",
    "load_fitted_table",
    "load_trace",
    "max_qps_under_slo",
    "memory_plan",
    "peak_tflops",
    "placement_text",
    "poisson_arrivals",
    "predict_point",
    "sampled_lengths",
    "saturation_qps",
    "serving_precision",
    "simulate",
    "simulated_max_qps",
    "simulated_point",
    "slo_checks",
    "slo_value",
    "steady_state",
    "tp_reason",
    "uniform_lengths",
    "unsupported_reason",
    "weight_bytes",
    "weight_only",
]
