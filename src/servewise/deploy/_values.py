"""The values every template reads: the Helm chart's ``values.yaml`` and the Jinja templates of ``kubernetes/``.

Why one dict for both: the helm target ships a chart *and* the objects it renders, so the two must agree; they do
when both template sets only place these values. PromQL is built here (the numbers it compares with are the
plan's), so the chart's PrometheusRule is one ``toYaml``.
"""

from __future__ import annotations

import math
from typing import Any

from ._engine_args import VLLM_PORT
from ._spec import DeploySpec

__all__ = [
    "CACHE_MOUNT",
    "COMPILE_CACHE_GIB",
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
KSERVE_PORT = 8080
"""KServe model servers listen on 8080."""
MONITORING_NAMESPACE = "monitoring"
PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""The Prometheus Operator's governing service in ``monitoring``; KEDA queries it. Change it to your Prometheus."""
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "servewise-gateway"}
HOURS_PER_MONTH = 730
STARTUP_FAILURES = 180
"""x 10 s = 30 minutes for the first start: download, weight load and CUDA-graph capture of a large model."""


def _num(value: float) -> str:
    """A plan number exactly as the plan has it (shortest round-trip form), never rounded for display."""
    return repr(float(value)) if value != int(value) else str(int(value))


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


def _selector(spec: DeploySpec, target: str) -> str:
    service = f"{spec.name}-predictor" if target == "kserve" else spec.name
    return f'namespace="{spec.namespace}",service="{service}"'


def _histogram_alert(name: str, metric: str, target_s: float, selector: str, what: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": (
            f"histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{selector}}}[5m]))) > {_num(target_s)}"
        ),
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": f"p95 {what} above the SLO of {target_s * 1000:g} ms",
            "description": f"p95 of {metric} over 5 minutes exceeds the workload's target ({target_s:g} s).",
        },
    }


def _rule_groups(spec: DeploySpec, target: str) -> list[dict[str, Any]]:
    selector = _selector(spec, target)
    deployment = f"{spec.name}-predictor" if target == "kserve" else spec.name
    slo_rules: list[dict[str, Any]] = []
    for name, metric, target_s, what in (
        ("ServewiseTTFTp95AboveSLO", "vllm:time_to_first_token_seconds", spec.ttft_p95_target_s, "TTFT"),
        (
            "ServewiseITLp95AboveSLO",
            "vllm:inter_token_latency_seconds",
            spec.itl_p95_target_s,
            "inter-token latency",
        ),
        ("ServewiseE2Ep95AboveSLO", "vllm:e2e_request_latency_seconds", spec.e2e_p95_target_s, "E2E latency"),
    ):
        if target_s is not None:
            slo_rules.append(_histogram_alert(name, metric, target_s, selector, what))
    slo_rules.append(
        {
            "alert": "ServewiseErrorRateHigh",
            "expr": (
                f'sum(rate(http_requests_total{{{selector},status=~"5.."}}[5m])) / '
                f"sum(rate(http_requests_total{{{selector}}}[5m])) > {_num(spec.error_ratio_slo)}"
            ),
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": f"more than {spec.error_ratio_slo:.0%} of requests fail (5xx)",
                "description": "Error-rate threshold is an assumption (99% success objective); the workload has none.",
            },
        }
    )
    rate = f'servewise:deployment_cost_usd_per_hour{{namespace="{spec.namespace}",deployment="{deployment}"}}'
    cost_rules: list[dict[str, Any]] = [
        {
            "record": "servewise:deployment_cost_usd_per_hour",
            "expr": (
                f'sum by (namespace, deployment) (kube_deployment_status_replicas_ready{{namespace="{spec.namespace}",'
                f'deployment="{deployment}"}}) * {_num(spec.usd_per_replica_hour)}'
            ),
        }
    ]
    for level in spec.budget_levels:
        pct = f"{level.threshold_pct:g}"
        usd = _num(level.threshold_usd)
        cost_rules += [
            {
                "alert": f"ServewiseProjectedMonthlySpend{pct.replace('.', '_')}Pct",
                "expr": f"{rate} * {HOURS_PER_MONTH} > {usd}",
                "for": "1h",
                "labels": {"severity": "critical" if level.threshold_pct >= 100 else "warning"},
                "annotations": {
                    "summary": f"projected month above {pct}% of the ${spec.budget_usd_month:,.2f} budget (${usd})",
                    "description": "ready replicas x $/replica-hour x 730 h, at the current replica count.",
                },
            },
            {
                "alert": f"ServewiseRolling30dSpend{pct.replace('.', '_')}Pct",
                "expr": f"sum_over_time({rate}[30d:1h]) > {usd}",
                "labels": {"severity": "critical" if level.threshold_pct >= 100 else "warning"},
                "annotations": {
                    "summary": f"last 30 days' spend above {pct}% of the ${spec.budget_usd_month:,.2f} budget (${usd})",
                    "description": "hourly samples of the cost rate summed over 30 days (the month-to-date stand-in "
                    "PromQL can compute; calendar-month spend is what the cloud budget in terraform/ alerts on).",
                },
            },
        ]
    return [
        {"name": f"servewise-{spec.name}-slo", "rules": slo_rules},
        {"name": f"servewise-{spec.name}-cost", "interval": "1m", "rules": cost_rules},
    ]


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
    query = f"sum(vllm:num_requests_waiting{{{_selector(spec, target)}}})"
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
        "workloadName": f"{spec.name}-predictor" if kserve else spec.name,
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
        "limitRange": {"max": _resources(spec)["limits"]},
        "networkPolicy": {
            "gatewayPodLabels": dict(GATEWAY_POD_LABELS),
            "monitoringNamespace": MONITORING_NAMESPACE,
        },
        "serviceMonitor": {"interval": "15s", "path": "/metrics"},
        "prometheusRule": {"groups": _rule_groups(spec, target)},
        "hfTokenSecret": dict(HF_TOKEN_SECRET),
    }
