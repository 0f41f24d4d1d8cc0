"""``servewise bench``: a load generator for any OpenAI-compatible endpoint, its statistics, predicted-vs-measured
comparison, GuideLLM report import and saving measured points to the catalog (see docs/bench.md)."""

from ._client import Endpoint, OpenAIStreamClient, RequestRecord, RequestShape, list_models, model_cards
from ._guidellm import GuideLLMBenchmark, guidellm_points, read_guidellm_report
from ._load import (
    Level,
    LoadMode,
    Sender,
    closed_loop_shapes,
    poisson_schedule,
    run_closed_loop,
    run_open_loop,
)
from ._predicted import PlanTarget, against_mismatch, compare_levels, plan_target, predicted_flat
from ._prompts import prompt_for_chat, synthetic_prompt
from ._report import (
    COMPARED_KEYS,
    DEFINITIONS,
    comparison_rows,
    flat_row,
    latency_rows,
    lengths_text,
    level_document,
    percent_error,
    run_assumptions,
    summary_keys,
)
from ._run import (
    DEFAULT_OPEN_LOOP_REQUESTS,
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    REQUESTS_PER_CLIENT,
    LevelResult,
    LoadPlan,
    run_plan,
)
from ._save import MeasuredPoint, SystemUnderTest, benchmark_csv_rows, level_points, save_points
from ._stats import METRICS, QUANTILES, Distribution, LevelStats, distribution, summarize

__all__ = [
    "COMPARED_KEYS",
    "DEFAULT_OPEN_LOOP_REQUESTS",
    "DEFAULT_OUTPUT_TOKENS",
    "DEFAULT_PROMPT_TOKENS",
    "DEFINITIONS",
    "METRICS",
    "QUANTILES",
    "REQUESTS_PER_CLIENT",
    "Distribution",
    "Endpoint",
    "GuideLLMBenchmark",
    "Level",
    "LevelResult",
    "LevelStats",
    "LoadMode",
    "LoadPlan",
    "MeasuredPoint",
    "OpenAIStreamClient",
    "PlanTarget",
    "RequestRecord",
    "RequestShape",
    "Sender",
    "SystemUnderTest",
    "against_mismatch",
    "benchmark_csv_rows",
    "closed_loop_shapes",
    "compare_levels",
    "comparison_rows",
    "distribution",
    "flat_row",
    "guidellm_points",
    "latency_rows",
    "lengths_text",
    "level_document",
    "level_points",
    "list_models",
    "model_cards",
    "percent_error",
    "plan_target",
    "poisson_schedule",
    "predicted_flat",
    "prompt_for_chat",
    "read_guidellm_report",
    "run_assumptions",
    "run_closed_loop",
    "run_open_loop",
    "run_plan",
    "save_points",
    "summarize",
    "summary_keys",
    "synthetic_prompt",
]
