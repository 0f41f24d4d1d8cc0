"""Hand-written deploy bundles for the validator tests: valid by construction (each test then breaks one thing), in
the layout ``servewise.deploy.render_bundle`` writes, with the objects the real CRDs and Kubernetes 1.33 accept."""

from __future__ import annotations

from pathlib import Path

from servewise.deploy._report import TextFile

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: vllm
  namespace: servewise
  labels: {app.kubernetes.io/name: vllm}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: vllm}
  template:
    metadata:
      labels: {app.kubernetes.io/name: vllm}
    spec:
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.11.0
          args: ["--model", "Qwen/Qwen2.5-7B-Instruct", "--tensor-parallel-size", "1"]
          ports: [{containerPort: 8000, name: http}]
          env:
            - name: HF_TOKEN
              valueFrom:
                secretKeyRef: {name: hf-token, key: token, optional: true}
            - name: VLLM_LOGGING_LEVEL
              value: INFO
          resources:
            limits: {nvidia.com/gpu: 1}
            requests: {nvidia.com/gpu: 1, cpu: "8", memory: 64Gi}
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: vllm, namespace: servewise, labels: {app.kubernetes.io/name: vllm}}
spec:
  selector: {app.kubernetes.io/name: vllm}
  ports: [{name: http, port: 8000, targetPort: http}]
"""

SCALED_OBJECT = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: vllm, namespace: servewise}
spec:
  scaleTargetRef: {name: vllm}
  minReplicaCount: 1
  maxReplicaCount: 2
  pollingInterval: 15
  cooldownPeriod: 300
  triggers:
    - type: prometheus
      metadata:
        serverAddress: http://prometheus-operated.monitoring:9090
        query: sum(vllm:num_requests_running{namespace="servewise"})
        threshold: "64"
"""

SERVICE_MONITOR = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: vllm, namespace: servewise}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: vllm}
  endpoints:
    - port: http
      path: /metrics
      interval: 15s
"""

PROMETHEUS_RULE = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: vllm-slo, namespace: servewise}
spec:
  groups:
    - name: servewise.slo
      rules:
        - alert: TTFTp95AboveSLO
          expr: histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[5m]))) > 0.15
          for: 10m
          labels: {severity: warning}
          annotations: {summary: TTFT p95 above the 150 ms SLO}
"""

INFERENCE_SERVICE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: qwen
  namespace: servewise
  annotations: {serving.kserve.io/deploymentMode: RawDeployment}
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 2
    model:
      modelFormat: {name: huggingface}
      args: ["--model_name=qwen", "--model_id=Qwen/Qwen2.5-7B-Instruct"]
      env:
        - name: HF_TOKEN
          valueFrom: {secretKeyRef: {name: hf-token, key: token, optional: true}}
      resources:
        limits: {nvidia.com/gpu: "1", memory: 64Gi}
        requests: {nvidia.com/gpu: "1", cpu: "8", memory: 64Gi}
"""

AWS_BUDGET = """\
resource "aws_budgets_budget" "servewise" {
  name         = "servewise-qwen"
  budget_type  = "COST"
  limit_amount = "1671.70"
  limit_unit   = "USD"
  time_unit    = "MONTHLY"
%s}
"""
AWS_NOTIFICATION = """\
  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = %s
    threshold_type             = "PERCENTAGE"
    notification_type          = "ACTUAL"
    subscriber_email_addresses = var.alert_emails
  }
"""

GCP_BUDGET = """\
resource "google_billing_budget" "servewise" {
  billing_account = var.billing_account
  display_name    = "servewise-qwen"
  amount {
    specified_amount {
      currency_code = "USD"
      units         = "1672"
    }
  }
%s}
"""
GCP_RULE = "  threshold_rules {\n    threshold_percent = %s\n  }\n"

THRESHOLDS_PCT = (80.0, 95.0, 100.0)

CHART = "apiVersion: v2\nname: servewise-vllm\nversion: 0.1.0\nappVersion: v0.11.0\ntype: application\n"
VALUES = "replicas: 2\nimage:\n  repository: vllm/vllm-openai\n  tag: v0.11.0\n"
VALUES_SCHEMA = """\
{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["replicas", "image"],
  "properties": {
    "replicas": {"type": "integer", "minimum": 0},
    "image": {
      "type": "object",
      "required": ["repository", "tag"],
      "properties": {"repository": {"type": "string"}, "tag": {"type": "string"}}
    }
  }
}
"""
TEMPLATE = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
    "spec:\n  replicas: {{ .Values.replicas }}\n"
)


def aws_budget(thresholds: tuple[float, ...] = THRESHOLDS_PCT) -> str:
    return AWS_BUDGET % "".join(AWS_NOTIFICATION % f"{t:g}" for t in thresholds)


def gcp_budget(thresholds: tuple[float, ...] = THRESHOLDS_PCT) -> str:
    return GCP_BUDGET % "".join(GCP_RULE % f"{t / 100:g}" for t in thresholds)


def vllm_bundle() -> dict[str, str]:
    """A valid ``--target vllm`` bundle as {path: text}."""
    return {
        "README.md": "# deploy\n",
        "kubernetes/deployment.yaml": DEPLOYMENT,
        "kubernetes/service.yaml": SERVICE,
        "kubernetes/scaledobject.yaml": SCALED_OBJECT,
        "kubernetes/servicemonitor.yaml": SERVICE_MONITOR,
        "kubernetes/prometheusrule.yaml": PROMETHEUS_RULE,
        "terraform/aws_budget.tf": aws_budget(),
        "terraform/gcp_budget.tf": gcp_budget(),
    }


def kserve_bundle() -> dict[str, str]:
    bundle = vllm_bundle()
    del bundle["kubernetes/deployment.yaml"], bundle["kubernetes/scaledobject.yaml"]
    return bundle | {"kubernetes/inferenceservice.yaml": INFERENCE_SERVICE}


def helm_bundle() -> dict[str, str]:
    return vllm_bundle() | {
        "chart/Chart.yaml": CHART,
        "chart/values.yaml": VALUES,
        "chart/values.schema.json": VALUES_SCHEMA,
        "chart/templates/deployment.yaml": TEMPLATE,
        "chart/.helmignore": ".git\n",
    }


def as_files(bundle: dict[str, str]) -> list[TextFile]:
    return [TextFile(path, text) for path, text in bundle.items()]


def write_bundle(root: Path, bundle: dict[str, str]) -> Path:
    for path, text in bundle.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root
