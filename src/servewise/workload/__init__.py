"""What to serve: traffic, request lengths, latency SLOs, budget and constraints; no knowledge of GPUs."""

from ._build import build_workload, load_workload_file, template_defaults, validation_message
from ._intent import IntentResult, extract_intent, parse_intent
from ._model import DEFAULT_PRECISIONS, Constraints, LengthDistribution, Slo, Traffic, Workload
from ._overrides import Override, apply_overrides, override_paths, parse_override, parse_variation

__all__ = [
    "DEFAULT_PRECISIONS",
    "Constraints",
    "IntentResult",
    "LengthDistribution",
    "Override",
    "Slo",
    "Traffic",
    "Workload",
    "apply_overrides",
    "build_workload",
    "extract_intent",
    "load_workload_file",
    "override_paths",
    "parse_intent",
    "parse_override",
    "parse_variation",
    "template_defaults",
    "validation_message",
]
