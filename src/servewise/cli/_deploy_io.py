"""Writing a deploy bundle as one set, and the tables ``servewise deploy`` prints.

Why a folder swap: a bundle is many files that only make sense together (the Deployment, its ScaledObject, the
alerts with the same thresholds as the budgets), so either every file of the new bundle is in place or the old
folder is untouched. The files are written into a temporary folder next to ``DIR`` (same file system), then renamed
onto ``DIR``; with ``--force`` an existing ``DIR`` is first renamed aside and removed only after the new one is in
place (and renamed back if that fails).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml
from rich.markup import escape

from servewise.deploy import BundleFile, CheckReport
from servewise.errors import UsageError

from ._output import Column, OutputFormat, render, stderr_console

__all__ = ["CHECK_COLUMNS", "FILE_COLUMNS", "file_objects", "print_check", "write_bundle"]

FILE_COLUMNS = (Column("file", "file"), Column("objects", "objects"), Column("check", "check"))
CHECK_COLUMNS = (
    Column("file", "file"),
    Column("object", "object (kind/name)"),
    Column("schema", "schema"),
    Column("result", "result"),
)


def file_objects(file: BundleFile) -> str:
    """What a bundle file holds, for the table: ``Deployment/vllm``, ``aws_budgets_budget``, ``Helm chart``."""
    if file.path.startswith("kubernetes/"):
        try:
            documents = [d for d in yaml.safe_load_all(file.text) if isinstance(d, dict)]
        except yaml.YAMLError:
            return "?"
        return ", ".join(f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}" for d in documents)
    if file.path.startswith("terraform/"):
        return (
            "aws_budgets_budget"
            if "aws_budgets_budget" in file.text
            else ("google_billing_budget" if "google_billing_budget" in file.text else "Terraform")
        )
    if file.path.startswith("chart/"):
        return "Helm chart" if not file.path.startswith("chart/templates/") else "Helm template"
    return "documentation" if file.path.endswith(".md") else ""


def _check_target(output: Path, force: bool) -> Path:
    target = output.resolve()
    if not target.parent.is_dir():
        raise UsageError(f"cannot write -o {output}: folder {target.parent} does not exist; create it first")
    if target.exists() and not target.is_dir():
        raise UsageError(
            f"cannot write -o {output}: it is a file; give a folder for the bundle (e.g. -o deploy/)"
        )
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UsageError(
            f"-o {output} exists and is not empty; add --force to replace it, or give another -o folder"
        )
    return target


def write_bundle(output: Path, files: Sequence[BundleFile], *, force: bool) -> Path:
    """Write every file under ``output`` or none (see the module docstring); returns the resolved folder."""
    target = _check_target(output, force)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as err:
        raise UsageError(f"cannot write -o {output}: {err.strerror}; choose another -o folder") from err
    backup: Path | None = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700; a bundle is shared
        for file in files:
            path = staging / file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.text, encoding="utf-8")
        if target.exists():
            backup = target.with_name(f".{target.name}.replaced-{os.getpid()}")
            os.rename(target, backup)
        try:
            os.rename(staging, target)
        except OSError:
            if backup is not None:
                os.rename(backup, target)
                backup = None
            raise
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"cannot write -o {output}: {err.strerror or err}; nothing was written") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return target


def print_check(report: CheckReport, fmt: OutputFormat, *, title: str) -> None:
    """The ``--check`` table (or JSON), then every problem as one line on stderr."""
    caption = "; ".join(report.notes) or None
    render(report.rows(), CHECK_COLUMNS, fmt, title=title, json_document=report.document(), caption=caption)
    console = stderr_console()
    for problem in report.problems:
        console.print(f"[bold red]error:[/] {escape(problem.line())}", highlight=False, soft_wrap=True)
