"""What to serve: traffic, request lengths, latency SLOs, budget and constraints; no knowledge of GPUs."""

from ._build import build_workload, load_workload_file, template_defaults, validation_message
from ._model import DEFAULT_PRECISIONS, Constraints, LengthDistribution, Slo, Traffic, Workload

__all__ = [
    "DEFAULT_PRECISIONS",
    "Constraints",
    "LengthDistribution",
    "Slo",
    "Traffic",
    "Workload",
    "build_workload",
    "load_workload_file",
    "template_defaults",
    "validation_message",
]
