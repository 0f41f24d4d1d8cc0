"""The PrometheusRule of a deployment: SLO alerts on vLLM's histograms and budget-burn alerts in the plan's dollars.

Why PromQL is built in Python: every number it compares with is the plan's (the workload's p95 targets, the
``alerts.levels[].threshold_usd``), so the Jinja templates and the Helm chart only place the finished rules.

SLO group (``sel`` = the ServiceMonitor's target labels ``namespace`` and ``service``):

    histogram_quantile(0.95, sum by (le) (rate(<metric>_bucket{sel}[5m]))) > target_s           for 10m
      TTFT  vllm:time_to_first_token_seconds
      ITL   vllm:inter_token_latency_seconds   (vllm:time_per_output_token_seconds was deprecated in v0.11
                                                and removed, vllm-project/vllm#32661)
      E2E   vllm:e2e_request_latency_seconds
    sum(rate(http_requests_total{sel,status=~"5.."}[5m])) / sum(rate(http_requests_total{sel}[5m])) > 0.01

vLLM's engine has no error counter (``vllm:request_success_total`` counts finished requests by
``finished_reason``); the error rate comes from the API server's HTTP metrics (prometheus-fastapi-instrumentator,
status grouped as ``5xx``, which ``5..`` matches). The 1 % objective is an assumption (``ERROR_RATIO_SLO``).

Cost group (R = ``servewise:deployment_cost_usd_per_hour``, recorded every minute):

    R = kube_deployment_status_replicas{ns, deployment} × $/replica-hour
        (all replicas, ready or not: a starting pod already holds its GPUs)
    month-to-date spend = sum_over_time((R and on() (month() == scalar(month(timestamp(R @ end())))))[31d:1h])
        hourly samples of R since the first hour of the current UTC calendar month; ``@ end()`` pins the inner
        ``month(...)`` to the evaluation time (the PromQL ``@`` modifier, on by default since Prometheus 2.33)
    ServewiseMonthToDateSpend<p>Pct      month-to-date spend > level p's dollars       (one per plan level)
    ServewiseReplicasAboveBudget         replicas > ⌊budget / ($/replica-hour × 730)⌋   for 15m

The month-to-date alerts are what the cloud budgets in ``terraform/`` do with ACTUAL spend (AWS Budgets and GCP
budgets reset at the calendar month), minutes after the spend instead of hours after billing: at the planned rate
the 80 % level fires around day 24 of every month, which is the budget's point. A 31-day month at the planned
rate costs 744 / 730 = 1.9 % more than the plan's 730-hour month, so the 100 % level can fire in its last hours.
"""

from __future__ import annotations

import math
from typing import Any

from ._spec import DeploySpec

__all__ = ["HOURS_PER_MONTH", "affordable_replicas", "metric_selector", "rule_groups", "workload_name"]

HOURS_PER_MONTH = 730
"""The plan's month (``cost`` uses 730 h)."""


def _num(value: float) -> str:
    """A plan number exactly as the plan has it (shortest round-trip form), never rounded for display."""
    return repr(float(value)) if value != int(value) else str(int(value))


def workload_name(spec: DeploySpec, target: str) -> str:
    """The Deployment (and Service) that runs the replicas: KServe names them ``<isvc>-predictor``."""
    return f"{spec.name}-predictor" if target == "kserve" else spec.name


def metric_selector(spec: DeploySpec, target: str) -> str:
    """Label matchers for the replicas' metrics: the target labels the Prometheus Operator adds to every series
    scraped through a ServiceMonitor (``namespace``, ``service``)."""
    return f'namespace="{spec.namespace}",service="{workload_name(spec, target)}"'


def affordable_replicas(spec: DeploySpec) -> int:
    """The most replicas a 730-hour month can run within the budget (≥ the plan's, since the plan fits it)."""
    per_replica_month_usd = spec.usd_per_replica_hour * HOURS_PER_MONTH
    return max(spec.replicas, math.floor(spec.budget_usd_month / per_replica_month_usd + 1e-9))


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


def _slo_rules(spec: DeploySpec, target: str) -> list[dict[str, Any]]:
    selector = metric_selector(spec, target)
    rules: list[dict[str, Any]] = []
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
            rules.append(_histogram_alert(name, metric, target_s, selector, what))
    rules.append(
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
                "description": "HTTP 5xx share from the API server's http_requests_total; the threshold is an "
                "assumption (99% success objective): the workload has none.",
            },
        }
    )
    return rules


def _cost_rules(spec: DeploySpec, target: str) -> list[dict[str, Any]]:
    deployment = workload_name(spec, target)
    where = f'namespace="{spec.namespace}",deployment="{deployment}"'
    rate = f"servewise:deployment_cost_usd_per_hour{{{where}}}"
    month_to_date = (
        f"sum_over_time(({rate} and on() (month() == scalar(month(timestamp({rate} @ end())))))[31d:1h])"
    )
    budget = f"${spec.budget_usd_month:,.2f}"
    rules: list[dict[str, Any]] = [
        {
            "record": "servewise:deployment_cost_usd_per_hour",
            "expr": (
                f"sum by (namespace, deployment) (kube_deployment_status_replicas{{{where}}}) "
                f"* {_num(spec.usd_per_replica_hour)}"
            ),
        }
    ]
    for level in spec.budget_levels:
        pct = f"{level.threshold_pct:g}"
        rules.append(
            {
                "alert": f"ServewiseMonthToDateSpend{pct.replace('.', '_')}Pct",
                "expr": f"{month_to_date} > {_num(level.threshold_usd)}",
                "labels": {"severity": "critical" if level.threshold_pct >= 100 else "warning"},
                "annotations": {
                    "summary": f"spend this month above {pct}% of the {budget} monthly budget "
                    f"(${level.threshold_usd:,.2f})",
                    "description": "hourly samples of replicas x $/replica-hour since the start of the UTC "
                    "calendar month (the cloud budgets in terraform/ alert on billed spend).",
                },
            }
        )
    affordable = affordable_replicas(spec)
    rules.append(
        {
            "alert": "ServewiseReplicasAboveBudget",
            "expr": f"sum(kube_deployment_status_replicas{{{where}}}) > {affordable}",
            "for": "15m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"more than {affordable} replicas: a month at this size exceeds the {budget} budget",
                "description": f"{affordable} replicas x ${spec.usd_per_replica_hour:.4g}/replica-hour x "
                f"{HOURS_PER_MONTH} h is the most the budget pays for; someone scaled past the plan.",
            },
        }
    )
    return rules


def rule_groups(spec: DeploySpec, target: str) -> list[dict[str, Any]]:
    """The PrometheusRule's ``spec.groups`` (formulas in the module docstring)."""
    return [
        {"name": f"servewise-{spec.name}-slo", "rules": _slo_rules(spec, target)},
        {"name": f"servewise-{spec.name}-cost", "interval": "1m", "rules": _cost_rules(spec, target)},
    ]
