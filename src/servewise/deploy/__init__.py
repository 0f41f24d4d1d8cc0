"""Deployment manifests from a plan: vLLM on Kubernetes, KServe, a Helm chart, cloud budget alerts.

``load_plan_document`` reads what ``servewise plan -o`` wrote, ``deploy_spec`` turns ONE option into every setting
the manifests carry (replicas, TP, engine flags, autoscaling, quota, alerts), ``render_bundle`` writes them as
files. Pure: no I/O besides reading the plan file and the packaged templates. Formulas: docs/deploy.md.
``check_files`` / ``check_directory`` validate a bundle offline (Kubernetes and CRD schemas, Terraform, Helm, no
secrets); ``apply_objects`` server-side applies it (the ``kube`` extra). Checks and RBAC: docs/deploy-check-apply.md.
"""

from servewise.planner import PlanFileError, load_plan_document

from ._apply import AppliedObject, ApplyResult, KubeTarget, apply_objects, kube_target
from ._checks import BudgetExpectation
from ._engine_args import NATIVE_CHECKPOINT_PRECISION, VLLM_CPU_IMAGE, VLLM_IMAGE
from ._render import RenderedFile, render_bundle
from ._report import BundleFile, CheckReport, CheckResult, Problem
from ._schemas import K8S_VERSION
from ._spec import TARGETS, Autoscaler, DeploySpec, Target, deploy_spec
from ._summary import spec_summary
from ._validate import check_directory, check_files, load_objects

__all__ = [
    "K8S_VERSION",
    "NATIVE_CHECKPOINT_PRECISION",
    "TARGETS",
    "VLLM_CPU_IMAGE",
    "VLLM_IMAGE",
    "AppliedObject",
    "ApplyResult",
    "Autoscaler",
    "BudgetExpectation",
    "BundleFile",
    "CheckReport",
    "CheckResult",
    "DeploySpec",
    "KubeTarget",
    "PlanFileError",
    "Problem",
    "RenderedFile",
    "Target",
    "apply_objects",
    "check_directory",
    "check_files",
    "deploy_spec",
    "kube_target",
    "load_objects",
    "load_plan_document",
    "render_bundle",
    "spec_summary",
]
