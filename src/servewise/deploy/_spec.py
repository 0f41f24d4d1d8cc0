"""``DeploySpec``: everything the manifests say, derived from ONE option of a plan document.

Why one object between the plan and the templates: every number a manifest carries (replicas, TP, GPU count,
engine flags, quota, alert thresholds) is computed here, once, from the plan's own fields, so the templates only
place values and the consistency tests compare the rendered YAML with the plan, not with a second derivation.
Formulas: ``_engine_args`` (vLLM flags), ``_scaling`` (min/max replicas, KEDA threshold), ``_resources`` (pod and
quota), ``_nodes`` (affinity); the plan fields each comes from are named in docs/deploy.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from servewise.errors import UsageError
from servewise.planner import check_plan_document

from ._engine_args import VLLM_CPU_IMAGE, VLLM_IMAGE, engine_args
from ._nodes import Placement, node_placement
from ._resources import PodResources, Quota, cpu_pod_resources, gpu_pod_resources, quota
from ._scaling import Scaling, scaling

__all__ = [
    "ERROR_RATIO_SLO",
    "TARGETS",
    "Autoscaler",
    "BudgetLevel",
    "DeploySpec",
    "Target",
    "deploy_spec",
]

Target = Literal["vllm", "kserve", "helm"]
TARGETS: tuple[str, ...] = ("vllm", "kserve", "helm")
Autoscaler = Literal["keda", "hpa"]
_AUTOSCALERS = ("keda", "hpa")

ERROR_RATIO_SLO = 0.01
"""Share of 5xx responses that fires the error-rate alert. An assumption (a 99 % success objective): the workload
has no error-rate target to take it from."""

_RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class BudgetLevel:
    threshold_pct: float
    threshold_usd: float


@dataclass(frozen=True, slots=True)
class DeploySpec:
    """One plan option as deployment settings (units in the names; all numbers from the plan document)."""

    name: str
    namespace: str
    option_rank: int
    chosen: bool
    model: str
    model_id: str
    """The checkpoint served: the catalog's ``hf_id`` unless overridden."""
    gpu: str
    tp: int
    precision: str
    cpu_instance: str | None
    vcpus: int | None
    replicas: int
    scaling: Scaling
    autoscaler: Autoscaler
    image: str
    engine_flags: tuple[str, ...]
    """vLLM flags after the model, without ``--port`` (each target adds its own)."""
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    quantization: str | None
    kv_cache_dtype: str
    prefix_caching: bool
    pod: PodResources
    quota: Quota
    placement: Placement
    provider: str
    region: str
    instance_types: tuple[str, ...]
    usd_per_hour: float
    usd_per_month: float
    usd_per_replica_hour: float
    budget_usd_month: float
    budget_source: str
    budget_levels: tuple[BudgetLevel, ...]
    ttft_p95_target_s: float | None
    itl_p95_target_s: float | None
    e2e_p95_target_s: float | None
    error_ratio_slo: float
    provenance: str
    basis: str
    price_source: str
    peak_qps: float
    max_qps_per_replica: float
    workload_name: str
    why: str

    @property
    def is_cpu(self) -> bool:
        return self.cpu_instance is not None

    @property
    def gpus_per_pod(self) -> int:
        return self.pod.gpus


def _slug(model: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", model.casefold()).strip("-")[:40].rstrip("-")
    return slug if slug[:1].isalpha() else f"m-{slug}"


def _option(document: dict[str, Any], option: int | None) -> tuple[int, dict[str, Any]]:
    options: list[dict[str, Any]] = document["options"]
    if option is None:
        chosen = document.get("chosen")
        index = chosen if isinstance(chosen, int) and 0 <= chosen < len(options) else 0
        return index, options[index]
    if not 1 <= option <= len(options):
        raise UsageError(
            f"option {option} is out of range: the plan has {len(options)} option"
            f"{'s' if len(options) != 1 else ''} (1-{len(options)})"
        )
    return option - 1, options[option - 1]


def _seconds(value_ms: float | None) -> float | None:
    return None if value_ms is None else value_ms / 1000.0


def deploy_spec(
    document: dict[str, Any],
    *,
    option: int | None = None,
    namespace: str = "servewise",
    image: str | None = None,
    autoscaler: Autoscaler = "keda",
    shape: str = "weekly",
    min_replicas: int = 1,
    model_id: str | None = None,
) -> DeploySpec:
    """The settings of plan option ``option`` (1-based rank as ``servewise plan`` shows it; None = the plan's
    chosen option). ``model_id`` serves another checkpoint of the same model (a pre-quantised export)."""
    document = check_plan_document(document)
    if not (len(namespace) <= 63 and _RFC1123.match(namespace)):
        raise UsageError(
            f"namespace {namespace!r} is not a valid Kubernetes name (RFC 1123: lower-case letters, digits and "
            "'-', starting and ending with a letter or digit, at most 63 characters); e.g. --namespace servewise"
        )
    if autoscaler not in _AUTOSCALERS:
        raise UsageError(f"unknown autoscaler {autoscaler!r}; choose one of {', '.join(_AUTOSCALERS)}")
    if image is not None and (not image.strip() or any(c.isspace() for c in image)):
        raise UsageError(
            f"--image {image!r} is not an image reference; give one such as {VLLM_IMAGE}, or leave --image out "
            "for that pinned default"
        )
    index, chosen = _option(document, option)
    try:
        return _build(document, index, chosen, namespace, image, autoscaler, shape, min_replicas, model_id)
    except (KeyError, TypeError, IndexError) as err:
        raise UsageError(
            f"plan option {index + 1} lacks a field deploy needs ({err}); re-plan with this version "
            "(`servewise plan ... -o plan.json`)"
        ) from err


def _build(
    document: dict[str, Any],
    index: int,
    opt: dict[str, Any],
    namespace: str,
    image: str | None,
    autoscaler: Autoscaler,
    shape: str,
    min_replicas: int,
    model_id: str | None,
) -> DeploySpec:
    candidate, perf, cost = opt["candidate"], opt["perf"], opt["cost"]
    workload = document["workload"]
    traffic = workload["traffic"]
    memory = perf["memory"]
    cpu_instance: str | None = candidate.get("cpu")
    tp = int(candidate["tp"])
    replicas = int(opt["replicas"])
    args = engine_args(
        hf_id=candidate["hf_id"],
        precision=candidate["precision"],
        tp=tp,
        engine=candidate["engine"],
        max_model_len=int(memory["max_model_len"]),
        prefix_share=float(traffic.get("prefix_share") or 0.0),
        cpu=cpu_instance is not None,
        model_id=model_id,
    )
    if cpu_instance is not None:
        pod = cpu_pod_resources(
            vcpus=int(candidate["vcpus"]),
            budget_gb=float(memory["budget_gb"]),
            kv_cache_gb=float(memory["kv_cache_gb"]),
            weights_gb=float(memory["weights_gb"]),
        )
    else:
        pod = gpu_pod_resources(
            tp=tp,
            weights_gb_per_gpu=float(memory["weights_gb"]),
            served_precision=candidate["precision"],
            checkpoint_precision=args.checkpoint_precision,
        )
    placements = cost["placements"]
    offer = placements[0]["offer"]
    usd_per_hour = float(cost["usd_per_hour"])
    slo = {s["name"]: (float(s["target_ms"]), s["predicted_ms"]) for s in opt["slo"]}
    scale = scaling(
        replicas=replicas,
        peak_qps=float(document["peak_qps"]),
        peak_factor=float(traffic.get("peak_factor") or 1.0),
        max_qps_per_replica=float(perf["max_qps_per_replica"]),
        usd_per_replica_hour=usd_per_hour / replicas,
        slo=slo,
        shape=shape,
        min_replicas=min_replicas,
    )
    alerts = document["alerts"]
    targets = {name: target for name, (target, _) in slo.items()}
    return DeploySpec(
        name=_slug(candidate["model"]),
        namespace=namespace,
        option_rank=index + 1,
        chosen=index == document.get("chosen"),
        model=candidate["model"],
        model_id=args.args[0],
        gpu=candidate["gpu"],
        tp=tp,
        precision=candidate["precision"],
        cpu_instance=cpu_instance,
        vcpus=candidate.get("vcpus"),
        replicas=replicas,
        scaling=scale,
        autoscaler=autoscaler,
        image=image or (VLLM_CPU_IMAGE if cpu_instance else VLLM_IMAGE),
        engine_flags=args.args[1:-2],
        max_model_len=int(memory["max_model_len"]),
        max_num_seqs=int(candidate["engine"]["max_num_seqs"]),
        max_num_batched_tokens=int(candidate["engine"]["max_num_batched_tokens"]),
        gpu_memory_utilization=float(candidate["engine"]["gpu_memory_utilization"]),
        quantization=args.quantization,
        kv_cache_dtype=args.kv_cache_dtype,
        prefix_caching=args.prefix_caching,
        pod=pod,
        quota=quota(pod, scale.max_replicas),
        placement=node_placement(
            provider=offer["provider"],
            gpu=candidate["gpu"],
            instance_types=tuple(p["offer"]["instance_type"] for p in placements),
            cpu_instance=cpu_instance,
        ),
        provider=offer["provider"],
        region=offer["region"],
        instance_types=tuple(dict.fromkeys(p["offer"]["instance_type"] for p in placements)),
        usd_per_hour=usd_per_hour,
        usd_per_month=float(cost["usd_per_month"]),
        usd_per_replica_hour=usd_per_hour / replicas,
        budget_usd_month=float(alerts["budget_usd_month"]),
        budget_source=str(alerts["budget_source"]),
        budget_levels=tuple(
            BudgetLevel(float(level["threshold_pct"]), float(level["threshold_usd"]))
            for level in alerts["levels"]
        ),
        ttft_p95_target_s=_seconds(targets.get("ttft_p95_ms")),
        itl_p95_target_s=_seconds(targets.get("itl_p95_ms")),
        e2e_p95_target_s=_seconds(targets.get("e2e_p95_ms")),
        error_ratio_slo=ERROR_RATIO_SLO,
        provenance=str(perf["provenance"]),
        basis=str(perf.get("basis", "")),
        price_source=str(offer.get("source", "")),
        peak_qps=float(document["peak_qps"]),
        max_qps_per_replica=float(perf["max_qps_per_replica"]),
        workload_name=str(workload.get("name") or workload.get("use_case") or "workload"),
        why=_why(document, index),
    )


def _why(document: Mapping[str, Any], index: int) -> str:
    """The plan's reason for its chosen option, said of that option only: another option's bundle says what it is
    instead of borrowing the chosen one's reason."""
    why = str(document.get("why", ""))
    chosen = document.get("chosen")
    if index == chosen:
        return why
    if chosen is None:
        return f"option {index + 1} as ranked by the planner; the plan chose none ({why})"
    return (
        f"option {index + 1} as ranked by the planner (`--option {index + 1}`), not the plan's chosen option "
        f"{int(chosen) + 1}; the plan says of that one: {why}"
    )
