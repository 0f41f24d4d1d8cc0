"""A workload from its layers (use-case template < workload data < overrides), with catalog names resolved.

Why here and not in the CLI: ``servewise plan`` (flags), the REST API (JSON bodies) and the web pages (forms) all
describe a workload the same way — a use case, some file-like data, some overrides — and must get the same
validated ``Workload`` with canonical GPU and model names, so the merge lives in one library function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from servewise.catalog import Catalog
from servewise.workload import Workload, build_workload

__all__ = ["resolve_workload_names", "workload_from_layers"]


def resolve_workload_names(workload: Workload, catalog: Catalog) -> Workload:
    """Canonical catalog names for the GPUs and models the workload allows (aliases, families, HF ids)."""
    gpus: list[str] = []
    for name in workload.constraints.gpus:
        gpus.extend(g for g in catalog.resolve_gpus(name) if g not in gpus)
    models = [catalog.resolve_model(name) for name in workload.constraints.models]
    constraints = workload.constraints.model_copy(
        update={"gpus": gpus, "models": list(dict.fromkeys(models))}
    )
    return workload.model_copy(update={"constraints": constraints})


def workload_from_layers(
    catalog: Catalog,
    *,
    use_case: str | None = None,
    data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    source: str = "workload",
) -> Workload:
    """The validated workload: the template of ``use_case`` (else of ``data["use_case"]``), then ``data`` (what a
    workload file holds), then ``overrides`` (a nested dict, as flags set it); names resolved in ``catalog``.

    Raises ``UnknownNameError`` for an unknown use case, GPU or model and ``UsageError`` naming the first invalid
    field."""
    template_name = use_case or (str(data["use_case"]) if data and data.get("use_case") else None)
    template = catalog.use_case(template_name) if template_name else None
    workload = build_workload(
        template=template,
        file_data=dict(data) if data is not None else None,
        overrides=dict(overrides or {}),
        source=source,
    )
    return resolve_workload_names(workload, catalog)
