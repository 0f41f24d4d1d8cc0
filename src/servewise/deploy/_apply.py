"""``servewise deploy --apply``: server-side apply of a checked bundle's objects to the current kubeconfig context.

How: the ``kubernetes`` Python client (optional extra ``servewise[kube]``, imported only here and only when
applying) loads the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``; ``--context`` picks a context), asks the
API server for ``/version`` with a short timeout (an unreachable cluster fails fast, in one line, before anything
is sent), then for each object: ``GET`` it (absent → ``created``), and ``PATCH`` it with
``Content-Type: application/apply-patch+yaml``, ``fieldManager=servewise``, ``fieldValidation=Strict`` and, for a
server-side dry run, ``dryRun=All``. The action is ``unchanged`` when the object the server returns equals the one
it had (ignoring ``metadata.managedFields``, ``resourceVersion``, ``generation`` and timestamps), else
``configured``. URLs are built from a fixed table of the kinds Servewise generates (no discovery), so a kind
outside the table is refused before anything is applied; the same table is the RBAC in docs/deploy-check-apply.md.

Why ``force=true`` is not sent: a field another manager owns (say ``spec.replicas`` owned by KEDA's HPA) is a
conflict the user should see, not silently take over; the error names the field and the manager.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from servewise.errors import UsageError

__all__ = [
    "APPLY_ORDER",
    "FIELD_MANAGER",
    "RESOURCES",
    "AppliedObject",
    "ApplyResult",
    "KubeTarget",
    "apply_objects",
    "kube_target",
    "kubeconfig_path",
    "resource_path",
]

FIELD_MANAGER = "servewise"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0

RESOURCES: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "namespaces",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "ResourceQuota"): "resourcequotas",
    ("v1", "LimitRange"): "limitranges",
    ("apps/v1", "Deployment"): "deployments",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
    ("serving.kserve.io/v1beta1", "InferenceService"): "inferenceservices",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrules",
}
"""(apiVersion, kind) → resource plural of every kind ``--apply`` may send. All namespaced except Namespace."""

APPLY_ORDER = (
    "Namespace",
    "ServiceAccount",
    "ResourceQuota",
    "LimitRange",
    "ConfigMap",
    "Service",
    "Deployment",
)
"""Kinds applied first, in this order (a namespace before what lives in it); the rest follow in bundle order."""

_CLUSTER_SCOPED = frozenset({"Namespace"})
_VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")


@dataclass(frozen=True, slots=True)
class KubeTarget:
    """Where an apply goes: the kubeconfig context, its user and the API server URL."""

    context: str | None
    user: str | None
    server: str | None


@dataclass(frozen=True, slots=True)
class AppliedObject:
    kind: str
    namespace: str | None
    name: str
    action: str
    """``created``, ``configured`` or ``unchanged`` (what the server did, or would do in a dry run)."""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "namespace": self.namespace or "",
            "name": self.name,
            "action": self.action,
        }


@dataclass(frozen=True, slots=True)
class ApplyResult:
    target: KubeTarget
    objects: tuple[AppliedObject, ...]
    dry_run: bool


def _kubernetes() -> ModuleType:
    """The ``kubernetes`` package, imported lazily: it is an optional extra."""
    try:
        import kubernetes
    except ImportError:
        raise UsageError(
            "--apply needs the kubernetes client, which is not installed: install servewise[kube] "
            "(pip install 'servewise[kube]')"
        ) from None
    return kubernetes


def resource_path(obj: Mapping[str, Any], namespace: str | None = None) -> str:
    """The API path of ``obj`` (``/apis/apps/v1/namespaces/ns/deployments/name``); ``UsageError`` for a kind
    ``--apply`` does not know."""
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    plural = RESOURCES.get((api_version, kind))
    if plural is None:
        known = ", ".join(sorted(k for _, k in RESOURCES))
        raise UsageError(
            f"--apply does not know {kind} {api_version}; it applies {known}; nothing was applied"
        )
    name = obj["metadata"]["name"]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if kind in _CLUSTER_SCOPED:
        return f"{prefix}/{plural}/{name}"
    ns = obj["metadata"].get("namespace") or namespace or "default"
    return f"{prefix}/namespaces/{ns}/{plural}/{name}"


def kubeconfig_path() -> str:
    """``KUBECONFIG`` (may list several files, ``:``-separated) or ``~/.kube/config``, read at call time (the
    client reads it once at import, which would pin the value of the first import)."""
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def kube_target(context: str | None = None) -> KubeTarget:
    """The context (``--context`` or the current one), its user and server, read from the kubeconfig."""
    kubernetes = _kubernetes()
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig_path())
    except (kubernetes.config.ConfigException, OSError) as err:
        raise UsageError(_no_kubeconfig(err)) from None
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    if chosen is None:
        names = ", ".join(sorted(str(c.get("name")) for c in contexts)) or "none"
        raise UsageError(
            f"--context {context!r} is not in the kubeconfig (contexts: {names}); pick one of them"
        )
    details = chosen.get("context") or {}
    return KubeTarget(chosen.get("name"), details.get("user"), None)


def _no_kubeconfig(err: BaseException) -> str:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"no usable kubeconfig ({reason}); --apply uses the current kubectl context: set KUBECONFIG or create "
        "~/.kube/config (e.g. `aws eks update-kubeconfig`, `gcloud container clusters get-credentials`), or drop "
        "--apply and apply the written files yourself"
    )


def _client(context: str | None) -> tuple[Any, KubeTarget]:
    kubernetes = _kubernetes()
    target = kube_target(context)
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(
            config_file=kubeconfig_path(),
            context=target.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (kubernetes.config.ConfigException, OSError, ValueError) as err:
        raise UsageError(_no_kubeconfig(err)) from None
    configuration.retries = False  # fail fast: one attempt, the error says so
    return kubernetes.client.ApiClient(configuration), KubeTarget(
        target.context, target.user, configuration.host
    )


def _request(
    api: Any, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/apply-patch+yaml"
    serialized = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized, _request_timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    raw = response.read()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, {"message": raw[:200].decode("utf-8", "replace")}


def _unreachable(target: KubeTarget, err: BaseException, applied: int) -> UsageError:
    reason = str(getattr(err, "reason", None) or err).strip().splitlines()
    first = reason[-1][:200] if reason else type(err).__name__
    done = f"{applied} object(s) were applied before it failed" if applied else "nothing was applied"
    return UsageError(
        f"cannot reach the Kubernetes API server {target.server} (context {target.context}): {first}; check "
        f"`kubectl cluster-info` and --context; {done}"
    )


def _comparable(obj: Any) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    out = {k: v for k, v in obj.items() if k != "status"}
    metadata = out.get("metadata")
    if isinstance(metadata, Mapping):
        out["metadata"] = {k: v for k, v in metadata.items() if k not in _VOLATILE_METADATA}
    return out


def _ordered(objects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rank = {kind: index for index, kind in enumerate(APPLY_ORDER)}
    return sorted(objects, key=lambda o: rank.get(str(o.get("kind")), len(APPLY_ORDER)))


def _api_error(status: int, payload: Any, obj: Mapping[str, Any], applied: int) -> UsageError:
    message = payload.get("message") if isinstance(payload, Mapping) else None
    label = f"{obj.get('kind')}/{obj['metadata']['name']}"
    hint = {
        401: "the kubeconfig credentials were refused; log in again",
        403: "the kube user lacks RBAC for this (see docs/deploy-check-apply.md for the Role --apply needs)",
        404: "the API is not served: is the CRD (KServe, KEDA, Prometheus Operator) installed?",
        409: "another field manager owns a field we set; resolve it with that manager (we never force)",
        422: "the server rejected the object",
    }.get(status, "the server refused the request")
    return UsageError(
        f"apply of {label} failed: HTTP {status}: {message or 'no message'}; {hint}; {applied} object(s) were "
        "applied before it"
    )


def apply_objects(
    objects: Sequence[Mapping[str, Any]],
    *,
    context: str | None = None,
    dry_run: bool = False,
    namespace: str | None = None,
) -> ApplyResult:
    """Server-side apply every object (see the module docstring); one-line ``UsageError`` on the first failure."""
    for obj in objects:
        resource_path(obj, namespace)  # refuse an unknown kind before anything is sent
    api, target = _client(context)
    import urllib3  # a dependency of the kubernetes client, so present whenever _client succeeded

    connection_errors = (_kubernetes().client.exceptions.ApiException, OSError, urllib3.exceptions.HTTPError)
    applied: list[AppliedObject] = []
    try:
        status, _ = _request(api, "GET", "/version")
        if status in (401, 403):
            raise UsageError(
                f"the API server {target.server} refused the kubeconfig credentials (HTTP {status}); log in again"
            )
        query = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
        if dry_run:
            query.append(("dryRun", "All"))
        for obj in _ordered(objects):
            path = resource_path(obj, namespace)
            before_status, before = _request(api, "GET", path)
            if before_status >= 300 and before_status != 404:
                raise _api_error(before_status, before, obj, len(applied))
            after_status, after = _request(api, "PATCH", path, query=query, body=dict(obj))
            if after_status >= 300:
                raise _api_error(after_status, after, obj, len(applied))
            if before_status == 404:
                action = "created"
            else:
                action = "unchanged" if _comparable(before) == _comparable(after) else "configured"
            metadata = obj["metadata"]
            ns = (
                None
                if obj.get("kind") in _CLUSTER_SCOPED
                else metadata.get("namespace") or namespace or "default"
            )
            applied.append(AppliedObject(str(obj.get("kind")), ns, str(metadata["name"]), action))
    except connection_errors as err:
        raise _unreachable(target, err, len(applied)) from None
    finally:
        api.close()
    return ApplyResult(target, tuple(applied), dry_run)
