"""Search model × GPU × TP × precision × replicas; keep what meets memory, SLO and budget; rank; explain."""

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
from ._rank import explain_choice, infeasibility_message, rank_options, require_feasible
from ._search import TP_SIZES, ParamsLookup, make_plan, max_model_len, request_shape

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "TP_SIZES",
    "Candidate",
    "ParamsLookup",
    "Plan",
    "PlanOption",
    "Rejection",
    "explain_choice",
    "infeasibility_message",
    "make_plan",
    "max_model_len",
    "plan_document",
    "plan_json_schema",
    "rank_options",
    "rejection_counts",
    "request_shape",
    "require_feasible",
]
