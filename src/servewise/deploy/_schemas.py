"""The schemas ``deploy --check`` validates against: Kubernetes core APIs from ``kubernetes-validate`` and the CRDs we
generate from the files in ``schemas/`` (their sources are in ``schemas/SOURCES.md``).

Why Kubernetes 1.33, strict: a bundle must apply on the oldest cluster we promise to support, and every API we
generate (``v1``, ``apps/v1``, ``autoscaling/v2``, ``policy/v1``) is GA long before 1.33, so validating against the
oldest version is the stricter choice; the tests also validate rendered bundles against the newest schemas the
package ships (``K8S_NEWEST_CHECKED``). Strict schemas reject unknown fields, the way the API server does with
``fieldValidation=Strict`` (what ``--apply`` sends), so a typo fails here instead of being silently dropped.

Why CRD schemas are made strict in code: a CRD's structural schema does not say ``additionalProperties: false``,
yet the API server prunes unknown fields (and rejects them under strict field validation) except below
``x-kubernetes-preserve-unknown-fields: true``. ``strict_crd_schema`` adds ``additionalProperties: false`` to
every object node that lists ``properties`` and does not preserve unknown fields, which is that behaviour.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

__all__ = [
    "CRD_SCHEMAS",
    "K8S_NEWEST_CHECKED",
    "K8S_STRICT",
    "K8S_VERSION",
    "SCHEMA_DIR",
    "CrdSchema",
    "SchemaChoice",
    "metadata_validator",
    "schema_for",
    "strict_crd_schema",
]

K8S_VERSION = "1.33"
"""The Kubernetes minor every object is validated against (see the module docstring for why)."""
K8S_STRICT = True
K8S_NEWEST_CHECKED = "1.37"
"""The newest schemas ``kubernetes-validate`` ships here; tests check rendered bundles against it too."""

SCHEMA_DIR = Path(__file__).with_name("schemas")
"""The shipped CRD schema files and their SOURCES.md (package data)."""

_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


@dataclass(frozen=True, slots=True)
class CrdSchema:
    """One shipped CRD schema file: ``reduced`` when it covers a subset of the CRD (see SOURCES.md)."""

    api_version: str
    kind: str
    file: str
    source: str
    reduced: bool


CRD_SCHEMAS: dict[tuple[str, str], CrdSchema] = {
    (crd.api_version, crd.kind): crd
    for crd in (
        CrdSchema(
            "serving.kserve.io/v1beta1",
            "InferenceService",
            "serving.kserve.io_v1beta1_inferenceservice.reduced.json",
            "kserve/kserve Go types",
            reduced=True,
        ),
        CrdSchema(
            "monitoring.coreos.com/v1",
            "ServiceMonitor",
            "monitoring.coreos.com_v1_servicemonitor.reduced.json",
            "prometheus-operator v0.87.0",
            reduced=True,
        ),
        CrdSchema(
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            "monitoring.coreos.com_v1_prometheusrule.json",
            "prometheus-operator v0.76.0",
            reduced=False,
        ),
        CrdSchema(
            "keda.sh/v1alpha1",
            "ScaledObject",
            "keda.sh_v1alpha1_scaledobject.json",
            "kedacore/keda@756b2de",
            reduced=False,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class SchemaChoice:
    """The validator for one (apiVersion, kind) and the label the ``--check`` table shows for it."""

    validator: Draft202012Validator
    label: str
    crd: bool


def _k8s_dir(version: str) -> str:
    return f"v{version}.0-local{'-strict' if K8S_STRICT else ''}"


def _k8s_file(version: str, name: str) -> Any | None:
    entry = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", _k8s_dir(version), name)
    if not entry.is_file():
        return None
    with entry.open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def _registry(version: str) -> Registry:
    definitions = _k8s_file(version, "_definitions.json")
    if definitions is None:
        raise LookupError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    registry: Registry = Registry().with_resource(_DEFINITIONS_ID, Resource.from_contents(definitions))
    return registry


def _fix_pattern(pattern: str) -> str:
    """Go's RE2 accepts ``^(?i)…``; Python needs global flags first."""
    match = re.match(r"^\^(\(\?[a-z]+\))", pattern)
    return f"{match.group(1)}^{pattern[match.end() :]}" if match else pattern


def strict_crd_schema(node: Any) -> Any:
    """A copy of a CRD ``openAPIV3Schema`` whose objects reject unknown fields, except where the CRD preserves them."""
    if isinstance(node, list):
        return [strict_crd_schema(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out = {key: strict_crd_schema(value) for key, value in node.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _fix_pattern(out["pattern"])
    preserves = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in node and "additionalProperties" not in node and not preserves:
        out["additionalProperties"] = False
    return out


def _crd_file(name: str) -> Any:
    return json.loads(SCHEMA_DIR.joinpath(name).read_text(encoding="utf-8"))


def _api_file_part(api_version: str) -> str:
    """kubernetes-validate's file naming: ``apps/v1`` → ``apps-v1``, ``rbac.authorization.k8s.io/v1`` → ``rbac-v1``."""
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


@cache
def schema_for(api_version: str, kind: str, version: str = K8S_VERSION) -> SchemaChoice | None:
    """The validator for an object, or ``None`` when no schema is known (an error for ``--check``)."""
    crd = CRD_SCHEMAS.get((api_version, kind))
    if crd is not None:
        schema = strict_crd_schema(_crd_file(crd.file))
        label = f"CRD {api_version} {kind} ({crd.source}{', reduced' if crd.reduced else ''})"
        return SchemaChoice(Draft202012Validator(schema, registry=_registry(version)), label, crd=True)
    group = api_version.rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):
        return None  # a CRD group without a shipped schema; built-in groups are dotless or end in .k8s.io
    schema = _k8s_file(version, f"{kind.lower()}-{_api_file_part(api_version)}.json")
    if schema is None:
        return None
    label = f"Kubernetes {version} {'strict ' if K8S_STRICT else ''}{api_version} {kind}"
    return SchemaChoice(Draft202012Validator(schema, registry=_registry(version)), label, crd=False)


@cache
def metadata_validator(version: str = K8S_VERSION) -> Draft202012Validator:
    """``ObjectMeta`` of the pinned version: CRD schemas leave ``metadata`` open, the API server does not."""
    return Draft202012Validator(
        {"$ref": f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        registry=_registry(version),
    )
