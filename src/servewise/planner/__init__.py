"""Search model × GPU × TP × precision × replicas; keep what meets memory, SLO and budget; rank; explain."""

from ._compare import METRICS, Comparison, Delta, SideSummary, compare_plans, summarize_plan
from ._compare_document import comparison_document
from ._executor import (
    EXECUTORS,
    Executor,
    ExecutorName,
    InProcessExecutor,
    RayExecutor,
    make_executor,
    open_executor,
)
from ._inputs import resolve_workload_names, workload_from_layers
from ._mixed import (
    DEFAULT_THRESHOLD_TOKENS,
    ApiOverflow,
    MixedOption,
    MixedPlan,
    Pool,
    RoutingRule,
    api_overflow,
    make_mixed_plan,
    routing_rule,
)
from ._montecarlo import SAMPLES_PER_CHUNK, MonteCarloResult, OptionRisk, Uncertainty, monte_carlo
from ._plan import (
    PLAN_SCHEMA_VERSION,
    Candidate,
    Plan,
    PlanOption,
    Rejection,
    plan_document,
    plan_json_schema,
    rejection_counts,
)
from ._plan_file import PlanFileError, check_plan_document, load_plan_document
from ._rank import explain_choice, infeasibility_message, rank_options, require_feasible
from ._search import TP_SIZES, ParamsLookup, make_plan, max_model_len, request_shape
from ._split import LengthSplit, length_cdf, partial_moment, split_lengths, threshold_for_share
from ._tco_plan import plan_tco

__all__ = [
    "DEFAULT_THRESHOLD_TOKENS",
    "EXECUTORS",
    "METRICS",
    "PLAN_SCHEMA_VERSION",
    "SAMPLES_PER_CHUNK",
    "TP_SIZES",
    "ApiOverflow",
    "Candidate",
    "Comparison",
    "Delta",
    "Executor",
    "ExecutorName",
    "InProcessExecutor",
    "LengthSplit",
    "MixedOption",
    "MixedPlan",
    "MonteCarloResult",
    "OptionRisk",
    "ParamsLookup",
    "Plan",
    "PlanFileError",
    "PlanOption",
    "Pool",
    "RayExecutor",
    "Rejection",
    "RoutingRule",
    "SideSummary",
    "Uncertainty",
    "api_overflow",
    "check_plan_document",
    "compare_plans",
    "comparison_document",
    "explain_choice",
    "infeasibility_message",
    "length_cdf",
    "load_plan_document",
    "make_executor",
    "make_mixed_plan",
    "make_plan",
    "max_model_len",
    "monte_carlo",
    "open_executor",
    "partial_moment",
    "plan_document",
    "plan_json_schema",
    "plan_tco",
    "rank_options",
    "rejection_counts",
    "request_shape",
    "require_feasible",
    "resolve_workload_names",
    "routing_rule",
    "split_lengths",
    "summarize_plan",
    "threshold_for_share",
    "workload_from_layers",
]
