"""Render a ``DeploySpec`` as a bundle of files: Kubernetes objects, a Helm chart, Terraform budgets, a README.

Layout (relative POSIX paths; what ``servewise deploy -o DIR`` writes and ``deploy --check`` walks):

    README.md
    kubernetes/<kind-lowercase>.yaml      one object per file          (every target)
    chart/Chart.yaml, chart/values.yaml, chart/values.schema.json, chart/templates/*.yaml     (helm)
    terraform/aws_budget.tf, terraform/gcp_budget.tf                                          (every target)

The Jinja templates (``templates/**.j2``) and the chart's Go templates (``templates/helm/templates``) read the same
values (``_values.values``), so the helm target's ``kubernetes/`` is what ``helm template`` makes of the chart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import yaml

from servewise.errors import UsageError

from ._spec import TARGETS, DeploySpec, Target
from ._values import values

__all__ = ["RenderedFile", "render_bundle", "values_schema"]

_TEMPLATES = resources.files("servewise.deploy").joinpath("templates")
_COMMON_KINDS = (
    "poddisruptionbudget",
    "resourcequota",
    "limitrange",
    "servicemonitor",
    "prometheusrule",
    "networkpolicy",
)


@dataclass(frozen=True, slots=True)
class RenderedFile:
    path: str
    """Relative POSIX path inside the output folder."""
    text: str


class _Dumper(yaml.SafeDumper):
    """Block style, keys in insertion order, long strings (PromQL) kept on one line."""


def _to_yaml(value: Any, indent: int = 0) -> str:
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000)
    pad = " " * indent
    return "\n".join(pad + line for line in text.rstrip("\n").splitlines())


def _quote(value: Any) -> str:
    return json.dumps(str(value))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _TEMPLATES.joinpath(name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["toyaml"] = _to_yaml
    env.filters["q"] = _quote
    return env


_ENV = _environment()


def _kinds(spec: DeploySpec, target: Target) -> tuple[str, ...]:
    autoscaler = "scaledobject" if spec.autoscaler == "keda" else "horizontalpodautoscaler"
    if target == "kserve":
        if spec.is_cpu:
            raise UsageError(
                "KServe's Hugging Face runtime serves vLLM on GPUs; this option is a CPU replica: use "
                "--target vllm or --target helm (both use vLLM's CPU image)"
            )
        # KServe makes the ScaledObject itself from the InferenceService; an HPA is ours (autoscalerClass external)
        extra = () if spec.autoscaler == "keda" else ("horizontalpodautoscaler",)
        return ("inferenceservice", *extra, *_COMMON_KINDS)
    return ("deployment", "service", autoscaler, *_COMMON_KINDS)


def _kubernetes(spec: DeploySpec, target: Target, v: dict[str, Any]) -> list[RenderedFile]:
    return [
        RenderedFile(f"kubernetes/{kind}.yaml", _ENV.get_template(f"kubernetes/{kind}.yaml.j2").render(v=v))
        for kind in _kinds(spec, target)
    ]


def values_schema(v: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of ``values.yaml`` (Helm validates values against ``values.schema.json`` before rendering):
    every key required with its type, the counts positive."""

    def schema(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "integer", "minimum": 0}
        if isinstance(value, float):
            return {"type": "number"}
        if isinstance(value, str):
            return {"type": "string", "minLength": 1} if value else {"type": "string"}
        if isinstance(value, list):
            return {"type": "array"}
        if isinstance(value, dict):
            return {"type": "object"}
        return {}

    properties = {key: schema(value) for key, value in v.items()}
    properties["replicas"] = {"type": "integer", "minimum": 1}
    properties["autoscaling"] = {
        "type": "object",
        "required": ["autoscaler", "minReplicas", "maxReplicas", "waitingPerReplica"],
        "properties": {
            "autoscaler": {"enum": ["keda", "hpa"]},
            "minReplicas": {"type": "integer", "minimum": 1},
            "maxReplicas": {"type": "integer", "minimum": 1},
            "waitingPerReplica": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "prometheusServer": {"type": "string", "minLength": 1},
            "query": {"type": "string", "minLength": 1},
            "hpaMetric": {"type": "string", "minLength": 1},
        },
    }
    properties["profile"] = {"enum": ["gpu", "cpu"]}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Servewise vLLM deployment values",
        "type": "object",
        "required": sorted(v),
        "properties": properties,
    }


def _chart(spec: DeploySpec, v: dict[str, Any]) -> list[RenderedFile]:
    tag = spec.image.rsplit(":", 1)[-1] if ":" in spec.image else "latest"
    chart = {
        "apiVersion": "v2",
        "name": f"servewise-{spec.name}"[:53],
        "description": f"vLLM serving {spec.model} on {spec.gpu}, from a Servewise plan (option {spec.option_rank})",
        "type": "application",
        "version": "0.1.0",
        "appVersion": tag,
    }
    header = (
        f"# Values of plan option {spec.option_rank}: {spec.model} on {spec.gpu}; profile "
        f"{'cpu (vLLM CPU image)' if spec.is_cpu else 'gpu (vLLM CUDA image)'}. Numbers are the plan's.\n"
    )
    files = [
        RenderedFile("chart/Chart.yaml", _to_yaml(chart) + "\n"),
        RenderedFile("chart/values.yaml", header + _to_yaml(v) + "\n"),
        RenderedFile("chart/values.schema.json", json.dumps(values_schema(v), indent=2) + "\n"),
    ]
    folder = _TEMPLATES.joinpath("helm", "templates")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            files.append(RenderedFile(f"chart/templates/{entry.name}", entry.read_text(encoding="utf-8")))
    return files


def _terraform(spec: DeploySpec) -> list[RenderedFile]:
    tf_name = f"servewise_{spec.name.replace('-', '_')}"
    units = math.floor(spec.budget_usd_month)
    nanos = round((spec.budget_usd_month - units) * 1e9)
    context = {
        "s": spec,
        "tf_name": tf_name,
        "units": str(units),
        "nanos": nanos,
        "budget": repr(spec.budget_usd_month),
    }
    return [
        RenderedFile(f"terraform/{name}.tf", _ENV.get_template(f"terraform/{name}.tf.j2").render(**context))
        for name in ("aws_budget", "gcp_budget")
    ]


def render_bundle(spec: DeploySpec, target: Target) -> tuple[RenderedFile, ...]:
    """Every file of the bundle for ``target`` (``vllm``, ``kserve`` or ``helm``), README first."""
    if target not in TARGETS:
        raise UsageError(f"unknown deploy target {target!r}; choose one of {', '.join(TARGETS)}")
    v = values(spec, target)
    files = _kubernetes(spec, target, v)
    if target == "helm":
        files += _chart(spec, v)
    files += _terraform(spec)
    readme = _ENV.get_template("README.md.j2").render(
        s=spec,
        target=target,
        files=[f.path for f in files],
        args=v["kserveArgs"] if target == "kserve" else v["args"],
    )
    return (RenderedFile("README.md", readme), *files)
