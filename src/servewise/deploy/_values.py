"""The values every template reads: the Helm chart's ``values.yaml`` and the Jinja templates of ``kubernetes/``.

Why one dict for both: the helm target ships a chart *and* the objects it renders, so the two must agree; they do
when both template sets only place these values. PromQL is built in ``_alerts`` (the numbers it compares with
are the plan's), so the chart's PrometheusRule is one ``toYaml``.
"""

from __future__ import annotations

import math
from typing import Any

from ._alerts import metric_selector, rule_groups, workload_name
from ._engine_args import VLLM_PORT
from ._spec import DeploySpec

__all__ = [
    "CACHE_MOUNT",
    "COMPILE_CACHE_GIB",
    "CONTAINER_DEFAULT_LIMITS",
    "CONTAINER_DEFAULT_REQUESTS",
    "HF_TOKEN_SECRET",
    "KSERVE_PORT",
    "MONITORING_NAMESPACE",
    "PROMETHEUS_URL",
    "values",
]

CACHE_MOUNT = "/cache"
COMPILE_CACHE_GIB = 10
"""Room on the cache volume besides the checkpoint: vLLM's torch.compile, Triton and FlashInfer kernel caches
(``VLLM_CACHE_ROOT``, ~/.triton, ~/.cache) written at start-up. An assumption; raise ``cache.sizeLimit`` if a pod is
evicted for ephemeral storage."""
HF_TOKEN_SECRET = {"name": "hf-token", "key": "HF_TOKEN"}
CONTAINER_DEFAULT_LIMITS = {"cpu": "500m", "memory": "512Mi"}
CONTAINER_DEFAULT_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
"""LimitRange defaults for containers that set no resources (an assumption: enough for a debug shell or a small
sidecar); the vLLM container sets its own."""
KSERVE_PORT = 8080
"""KServe model servers listen on 8080."""
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""The Prometheus Operator's governing service in ``monitoring``; KEDA queries it. Change it to your Prometheus."""
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "servewise-gateway"}
STARTUP_FAILURES = 180
"""x 10 s = 30 minutes for the first start: download, weight load and CUDA-graph capture of a large model."""


def _quantity_mib(mib: int) -> str:
    return f"{mib}Mi"


def _cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _resources(spec: DeploySpec) -> dict[str, Any]:
    amounts: dict[str, Any] = {
        "cpu": _cpu(spec.pod.cpu_millicores),
        "memory": _quantity_mib(spec.pod.memory_mib),
    }
    if spec.pod.gpus:
        amounts["nvidia.com/gpu"] = spec.pod.gpus
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _limit_range(spec: DeploySpec) -> dict[str, Any]:
    """Per-container bounds: at most one replica's CPU and memory, and small defaults for containers that set none.

    Why explicit defaults and no GPU key: the API server defaults a LimitRange's ``default`` to its ``max`` and
    ``defaultRequest`` to ``default``, so a ``max`` alone would give every container without resources (a debug
    pod, a sidecar) a whole replica's memory and, with ``nvidia.com/gpu`` in ``max``, a GPU. The ResourceQuota
    caps GPUs for the namespace; the defaults let a container that names no resources be admitted under it."""
    limits = _resources(spec)["limits"]
    return {
        "max": {"cpu": limits["cpu"], "memory": limits["memory"]},
        "default": dict(CONTAINER_DEFAULT_LIMITS),
        "defaultRequest": dict(CONTAINER_DEFAULT_REQUESTS),
    }


def _cache_gib(spec: DeploySpec) -> int:
    """The checkpoint (GB, rounded up as GiB) + the kernel caches."""
    return math.ceil(spec.pod.checkpoint_gb) + COMPILE_CACHE_GIB


def _env(spec: DeploySpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": CACHE_MOUNT},
        {"name": "HF_HOME", "value": f"{CACHE_MOUNT}/huggingface"},
        {"name": "VLLM_CACHE_ROOT", "value": f"{CACHE_MOUNT}/vllm"},
        {"name": "XDG_CACHE_HOME", "value": CACHE_MOUNT},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if spec.pod.kv_cache_space_gib is not None:
        env += [
            {"name": "VLLM_CPU_KVCACHE_SPACE", "value": str(spec.pod.kv_cache_space_gib)},
            # no NUMA binding: it needs CAP_SYS_NICE and an unconfined seccomp profile, which the restricted
            # securityContext does not grant; OpenMP uses the pod's cores
            {"name": "VLLM_CPU_OMP_THREADS_BIND", "value": "nobind"},
            {"name": "OMP_NUM_THREADS", "value": str(max(1, spec.pod.cpu_millicores // 1000))},
        ]
    env.append(
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {**HF_TOKEN_SECRET, "optional": True}},
        }
    )
    return env


def _affinity(spec: DeploySpec) -> dict[str, Any]:
    node: dict[str, Any] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": t.key, "operator": "In", "values": list(t.values)}
                        for t in spec.placement.required
                    ]
                }
            ]
        }
    }
    if spec.placement.preferred:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {
                "weight": 100,
                "preference": {
                    "matchExpressions": [
                        {"key": t.key, "operator": "In", "values": list(t.values)}
                        for t in spec.placement.preferred
                    ]
                },
            }
        ]
    return {"nodeAffinity": node}


def _tolerations(spec: DeploySpec) -> list[dict[str, Any]]:
    out = []
    for t in spec.placement.tolerations:
        item: dict[str, Any] = {"key": t.key, "operator": t.operator, "effect": t.effect}
        if t.value is not None:
            item["value"] = t.value
        out.append(item)
    return out


def values(spec: DeploySpec, target: str) -> dict[str, Any]:
    """The values of ``spec`` for ``target`` (``kserve`` changes port, selectors and names)."""
    port = KSERVE_PORT if target == "kserve" else VLLM_PORT
    labels = {
        "app.kubernetes.io/name": spec.name,
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/managed-by": "servewise",
    }
    annotations = {
        "servewise.dev/plan-option": str(spec.option_rank),
        "servewise.dev/usd-per-month": f"{spec.usd_per_month:.2f}",
        "servewise.dev/usd-per-hour": f"{spec.usd_per_hour:g}",
        "servewise.dev/provenance": spec.provenance,
        "servewise.dev/offer": f"{spec.provider} {spec.region} {', '.join(spec.instance_types)}",
        "servewise.dev/price-source": spec.price_source,
    }
    query = f"sum(vllm:num_requests_waiting{{{metric_selector(spec, target)}}})"
    kserve = target == "kserve"
    return {
        "name": spec.name,
        "namespace": spec.namespace,
        "profile": "cpu" if spec.is_cpu else "gpu",
        "labels": labels,
        "annotations": annotations,
        "image": spec.image,
        "model": spec.model_id,
        "args": [spec.model_id, *spec.engine_flags, "--port", str(VLLM_PORT)],
        "kserveArgs": [
            f"--model_name={spec.name}",
            f"--model_id={spec.model_id}",
            "--backend=vllm",
            *spec.engine_flags,
        ],
        "port": port,
        "serviceSelector": {"serving.kserve.io/inferenceservice": spec.name}
        if kserve
        else {
            "app.kubernetes.io/name": spec.name,
            "app.kubernetes.io/instance": spec.name,
        },
        "workloadName": workload_name(spec, target),
        "podSelector": {"serving.kserve.io/inferenceservice": spec.name}
        if kserve
        else {
            "app.kubernetes.io/name": spec.name,
            "app.kubernetes.io/instance": spec.name,
        },
        "replicas": spec.replicas,
        "env": _env(spec),
        "resources": _resources(spec),
        "shmSizeLimit": f"{spec.pod.shm_gib}Gi",
        "cache": {"mountPath": CACHE_MOUNT, "sizeLimit": f"{_cache_gib(spec)}Gi"},
        "affinity": _affinity(spec),
        "tolerations": _tolerations(spec),
        "startupFailureThreshold": STARTUP_FAILURES,
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
        "autoscaling": {
            "autoscaler": spec.autoscaler,
            "minReplicas": spec.scaling.min_replicas,
            "maxReplicas": spec.scaling.max_replicas,
            "waitingPerReplica": f"{spec.scaling.waiting_per_replica:g}",
            "prometheusServer": PROMETHEUS_URL,
            "query": query,
            "hpaMetric": "vllm_num_requests_waiting",
        },
        "pdb": {"maxUnavailable": 1},
        "quota": {
            "hard": {
                **({"requests.nvidia.com/gpu": spec.quota.gpus} if spec.quota.gpus else {}),
                "requests.cpu": _cpu(spec.quota.cpu_millicores),
                "limits.cpu": _cpu(spec.quota.cpu_millicores),
                "requests.memory": _quantity_mib(spec.quota.memory_mib),
                "limits.memory": _quantity_mib(spec.quota.memory_mib),
            }
        },
        "limitRange": _limit_range(spec),
        "networkPolicy": {
            "gatewayPodLabels": dict(GATEWAY_POD_LABELS),
            "monitoringNamespace": MONITORING_NAMESPACE,
        },
        "serviceMonitor": {"interval": "15s", "path": "/metrics"},
        "prometheusRule": {"groups": rule_groups(spec, target)},
        "hfTokenSecret": dict(HF_TOKEN_SECRET),
    }
