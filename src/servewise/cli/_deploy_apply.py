"""``servewise deploy … --apply`` and ``servewise deploy --audit``: apply a validated bundle and log every attempt.

Why the catalog is opened before the cluster is touched: an apply that cannot be logged must not happen, so a
broken ``SERVEWISE_DB_URL`` stops the command before any object is sent. Every attempt is logged — a dry run, a
failure (no kubeconfig, unreachable cluster, a rejected object) and a success — with who (OS user and the kube
context's user), what (plan file SHA-256, option rank, target, objects and what happened to each), when (UTC) and
the result.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servewise.catalog import DeployAuditEntry, open_catalog
from servewise.deploy import (
    ApplyResult,
    BundleFile,
    DeploySpec,
    KubeTarget,
    apply_objects,
    kube_target,
    load_objects,
)
from servewise.errors import UsageError

from ._output import Column, OutputFormat, render

__all__ = ["apply_and_audit", "os_user", "print_audit"]

APPLY_COLUMNS = (
    Column("kind", "kind"),
    Column("namespace", "namespace"),
    Column("name", "name"),
    Column("action", "action"),
)
AUDIT_COLUMNS = (
    Column("id", "#", numeric=True),
    Column("applied_at", "when (UTC)"),
    Column("who", "who (OS user / kube user@context)"),
    Column("target", "target"),
    Column("option", "option", numeric=True),
    Column("plan", "plan sha256"),
    Column("objects", "objects"),
    Column("dry_run", "dry run"),
    Column("result", "result"),
)


def os_user() -> str:
    """The login name; ``unknown`` where there is none (a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _target_or_none(context: str | None) -> KubeTarget | None:
    try:
        return kube_target(context)
    except UsageError:
        return None  # apply_objects raises the same error with its message; the log records it


def apply_and_audit(
    files: Sequence[BundleFile],
    *,
    spec: DeploySpec,
    target: str,
    plan_path: Path,
    plan_sha256: str,
    context: str | None,
    dry_run: bool,
    fmt: OutputFormat,
    document: dict[str, Any],
) -> None:
    """Apply the bundle's objects, log the attempt, print what happened to each object."""
    objects = load_objects(files)
    with open_catalog() as catalog:
        started = datetime.now(UTC)
        result: ApplyResult | None = None
        error: UsageError | None = None
        try:
            result = apply_objects(objects, context=context, dry_run=dry_run, namespace=spec.namespace)
        except UsageError as err:
            error = err
        kube = result.target if result is not None else _target_or_none(context)
        applied = [o.as_dict() for o in result.objects] if result is not None else []
        planned = [
            {
                "kind": str(o.get("kind")),
                "namespace": spec.namespace,
                "name": str(o["metadata"]["name"]),
                "action": "not applied",
            }
            for o in objects
        ]
        entry = DeployAuditEntry(
            applied_at=started,
            os_user=os_user(),
            kube_user=kube.user if kube else None,
            kube_context=kube.context if kube else context,
            cluster=kube.server if kube else None,
            plan_path=str(plan_path.resolve()),
            plan_sha256=plan_sha256,
            option_rank=spec.option_rank,
            target=target,
            namespace=spec.namespace,
            objects=tuple(applied or planned),
            dry_run=dry_run,
            result="ok" if error is None else "failed",
            message="" if error is None else str(error),
        )
        audit_id = catalog.record_deploy(entry)
    if error is not None or result is None:
        raise UsageError(f"{error} (logged as deploy audit #{audit_id})")
    mode = "server dry run: nothing stored" if dry_run else "applied"
    title = f"{mode} to {result.target.context} ({result.target.server}); audit #{audit_id}"
    document["apply"] = {
        "context": result.target.context,
        "server": result.target.server,
        "kube_user": result.target.user,
        "dry_run": dry_run,
        "objects": applied,
        "audit_id": audit_id,
    }
    render(applied, APPLY_COLUMNS, fmt, title=title, json_document=document)


def print_audit(limit: int, fmt: OutputFormat) -> None:
    """The most recent applies, newest first."""
    if limit < 1:
        raise UsageError(f"--limit must be at least 1 (got {limit})")
    with open_catalog() as catalog:
        entries = catalog.deploy_audit(limit=limit)
    rows = []
    for e in entries:
        actions: dict[str, int] = {}
        for obj in e.objects:
            actions[obj.get("action", "?")] = actions.get(obj.get("action", "?"), 0) + 1
        kube = f"{e.kube_user or '?'}@{e.kube_context or '?'}"
        rows.append(
            {
                "id": e.id,
                "applied_at": e.applied_at.strftime("%Y-%m-%d %H:%M:%S"),
                "who": f"{e.os_user} / {kube}",
                "target": e.target,
                "option": e.option_rank,
                "plan": e.plan_sha256[:12],
                "objects": ", ".join(f"{n} {a}" for a, n in sorted(actions.items())) or "none",
                "dry_run": e.dry_run,
                "result": e.result if not e.message else f"{e.result}: {e.message[:80]}",
            }
        )
    document = [
        {
            "id": e.id,
            "applied_at": e.applied_at.isoformat(),
            "os_user": e.os_user,
            "kube_user": e.kube_user,
            "kube_context": e.kube_context,
            "cluster": e.cluster,
            "plan_path": e.plan_path,
            "plan_sha256": e.plan_sha256,
            "option_rank": e.option_rank,
            "target": e.target,
            "namespace": e.namespace,
            "objects": list(e.objects),
            "dry_run": e.dry_run,
            "result": e.result,
            "message": e.message,
        }
        for e in entries
    ]
    caption = None if entries else "no applies logged yet (servewise deploy PLAN --apply logs each one)"
    render(
        rows,
        AUDIT_COLUMNS,
        fmt,
        title="deploy audit log (newest first)",
        json_document=document,
        caption=caption,
    )
