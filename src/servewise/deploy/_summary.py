"""What a deploy bundle deploys, in one small dict: the ``summary`` of ``servewise deploy --format json`` and of
the REST API's ``POST /api/v1/deploy`` (shared so both describe a bundle the same way)."""

from __future__ import annotations

from typing import Any

from ._spec import DeploySpec

__all__ = ["spec_summary"]


def spec_summary(spec: DeploySpec) -> dict[str, Any]:
    """The one-line summary of what the bundle deploys (also the ``summary`` of the JSON document)."""
    hardware = f"{spec.cpu_instance} (CPU)" if spec.is_cpu else f"{spec.tp}x{spec.gpu}"
    return {
        "option_rank": spec.option_rank,
        "chosen": spec.chosen,
        "model": spec.model,
        "precision": spec.precision,
        "hardware": hardware,
        "tp": spec.tp,
        "replicas": spec.replicas,
        "min_replicas": spec.scaling.min_replicas,
        "max_replicas": spec.scaling.max_replicas,
        "autoscaler": spec.autoscaler,
        "usd_per_month": spec.usd_per_month,
        "namespace": spec.namespace,
    }
