"""``servewise deploy``: render one plan option as a deploy bundle, validate it, write it (``-o``, default
``deploy/``), and optionally apply it (``--apply``); or validate an existing bundle (``--check DIR``); or list the
audit log of applies (``--audit``).

Exit codes: 0 fine; 1 a check found problems (each printed as one line ``file: kind/name: JSON path: message``);
2 bad input (one line). A rendered bundle is validated in memory before anything is written: an invalid bundle is
never written. Without ``-o`` the bundle goes to ``deploy/``, except with ``--apply``, which then applies from memory
and writes nothing (give ``-o`` to keep the files too).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from servewise.deploy import (
    BudgetExpectation,
    CheckReport,
    DeploySpec,
    check_directory,
    check_files,
    deploy_spec,
    load_plan_document,
    render_bundle,
    spec_summary,
)
from servewise.errors import UsageError

from ._deploy_apply import apply_and_audit, print_audit
from ._deploy_io import FILE_COLUMNS, file_objects, print_check, write_bundle
from ._output import OutputFormat, render, stdout_console

__all__ = ["deploy_command"]

DEFAULT_OUTPUT = Path("deploy")


class TargetChoice(StrEnum):
    vllm = "vllm"
    kserve = "kserve"
    helm = "helm"


class AutoscalerChoice(StrEnum):
    keda = "keda"
    hpa = "hpa"


class DryRun(StrEnum):
    none = "none"
    server = "server"


def summary_line(spec: DeploySpec) -> str:
    s = spec_summary(spec)
    star = " ★" if s["chosen"] else ""
    return (
        f"option {s['option_rank']}{star}: {s['model']} {s['precision']} on {s['hardware']} x{s['replicas']} "
        f"replica(s); autoscaling {s['min_replicas']}-{s['max_replicas']} ({s['autoscaler']}); "
        f"${s['usd_per_month']:,.0f}/month at the planned replicas; namespace {s['namespace']}"
    )


def _check_only(check: Path, fmt: OutputFormat) -> None:
    report = check_directory(check)
    print_check(report, fmt, title=f"deploy --check {check}")
    if not report.ok:
        raise SystemExit(1)


def _refuse_invalid(report: CheckReport) -> None:
    if report.ok:
        return
    print_check(report, OutputFormat.table, title="rendered bundle (not written)")
    raise UsageError(
        f"the rendered bundle failed {len(report.problems)} check(s) (listed above); nothing was written or "
        "applied — this is a Servewise bug, please report it with the plan file"
    )


def deploy_command(
    plan: Annotated[
        Path | None,
        typer.Argument(help="plan document written by `servewise plan -o plan.json`", show_default=False),
    ] = None,
    option: Annotated[
        int | None,
        typer.Option("--option", help="rank of the option to deploy (default: the plan's chosen one)"),
    ] = None,
    target: Annotated[
        TargetChoice, typer.Option("--target", help="vllm, kserve or helm")
    ] = TargetChoice.vllm,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="folder to write the bundle to (default deploy/)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a non-empty -o folder")] = False,
    namespace: Annotated[str, typer.Option("--namespace", help="Kubernetes namespace")] = "servewise",
    image: Annotated[
        str | None, typer.Option("--image", help="serving image (default: the pinned vLLM image)")
    ] = None,
    autoscaler: Annotated[
        AutoscalerChoice, typer.Option("--autoscaler", help="keda (queue-based) or hpa")
    ] = AutoscalerChoice.keda,
    shape: Annotated[
        str, typer.Option("--shape", help="traffic shape the autoscaling bounds assume")
    ] = "weekly",
    min_replicas: Annotated[
        int, typer.Option("--min-replicas", help="replicas kept at the quietest hour")
    ] = 1,
    model_id: Annotated[
        str | None,
        typer.Option(
            "--model-id",
            help="serve this checkpoint (e.g. an AWQ/NVFP4 export) instead of the catalog's Hugging Face id",
        ),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="server-side apply to the current kubeconfig context (servewise[kube])"),
    ] = False,
    dry_run: Annotated[
        DryRun,
        typer.Option("--dry-run", help="with --apply: server = the API server validates, stores nothing"),
    ] = DryRun.none,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context for --apply")] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="validate an existing bundle folder instead of rendering")
    ] = None,
    audit: Annotated[bool, typer.Option("--audit", help="list the most recent --apply runs")] = False,
    limit: Annotated[int, typer.Option("--limit", help="rows --audit lists")] = 20,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="table, json, csv or markdown")
    ] = OutputFormat.table,
) -> None:
    """Render a plan option as Kubernetes/KServe/Helm + budget Terraform, validate it, write it, optionally apply it."""
    modes = [
        name
        for name, given in (("PLAN", plan is not None), ("--check", check is not None), ("--audit", audit))
        if given
    ]
    if len(modes) != 1:
        raise UsageError(
            "give exactly one of PLAN (render a plan), --check DIR (validate a bundle) or --audit (list applies)"
            + (f"; got {' and '.join(modes)}" if modes else "")
        )
    if audit:
        print_audit(limit, fmt)
        return
    if check is not None:
        _check_only(check, fmt)
        return
    if plan is None:  # unreachable: exactly one mode was given and it is neither --check nor --audit
        raise UsageError("give the plan file: servewise deploy plan.json")
    if (dry_run is DryRun.server or context is not None) and not apply:
        flag = "--dry-run server" if dry_run is DryRun.server else "--context"
        raise UsageError(
            f"{flag} only applies with --apply; add --apply (it sends the objects to the cluster)"
        )
    document = load_plan_document(plan)
    spec = deploy_spec(
        document,
        option=option,
        namespace=namespace,
        image=image,
        autoscaler=autoscaler.value,
        shape=shape,
        min_replicas=min_replicas,
        model_id=model_id,
    )
    files = render_bundle(spec, target.value)
    expected = BudgetExpectation(
        tuple(level.threshold_pct for level in spec.budget_levels), spec.budget_usd_month
    )
    report = check_files(files, expected_budget=expected)
    _refuse_invalid(report)
    destination = output if output is not None or apply else DEFAULT_OUTPUT
    written = write_bundle(destination, files, force=force) if destination is not None else None
    results = {r.file: r.result for r in report.results}
    rows = [{"file": f.path, "objects": file_objects(f), "check": results.get(f.path, "ok")} for f in files]
    document_out: dict[str, Any] = {
        "output": str(written) if written else None,
        "target": target.value,
        "summary": spec_summary(spec),
        "files": rows,
        "check": report.document(),
    }
    where = f"written to {written}" if written else "not written (--apply without -o)"
    if not apply:
        render(
            rows,
            FILE_COLUMNS,
            fmt,
            title=f"deploy bundle ({target.value}) {where}",
            json_document=document_out,
        )
        if fmt is OutputFormat.table:
            stdout_console().print(summary_line(spec), highlight=False)
            if written:
                stdout_console().print(
                    f"next: read {written / 'README.md'}; check again with `servewise deploy --check {destination}`"
                )
        return
    if fmt is OutputFormat.table:
        render(rows, FILE_COLUMNS, fmt, title=f"deploy bundle ({target.value}) {where}")
        stdout_console().print(summary_line(spec), highlight=False)
    plan_sha256 = hashlib.sha256(plan.read_bytes()).hexdigest()
    apply_and_audit(
        files,
        spec=spec,
        target=target.value,
        plan_path=plan,
        plan_sha256=plan_sha256,
        context=context,
        dry_run=dry_run is DryRun.server,
        fmt=fmt,
        document=document_out,
    )
