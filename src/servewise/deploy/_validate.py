"""Validate a deploy bundle offline: every Kubernetes object against a pinned schema, the Terraform budgets, the
Helm chart, and no credentials anywhere. ``check_files`` runs on rendered files before anything is written;
``check_directory`` on a bundle on disk (``servewise deploy --check DIR``).

Which check a file gets is decided by where it lies in the bundle (the layout ``render_bundle`` writes):

==============================  ===========================================================================
``kubernetes/*.yaml``           every YAML document is one object: ``apiVersion``, ``kind`` and
                                ``metadata.name`` required; validated against Kubernetes ``K8S_VERSION``
                                (strict) or a shipped CRD schema; an unknown kind is an error (no schema
                                means not checked, and an unchecked object must not pass); secrets check
``terraform/*.tf``              parsed with python-hcl2; the AWS and GCP budgets (``_checks.check_terraform``)
``chart/Chart.yaml``, ``chart/values.yaml``, ``chart/values.schema.json``  the Helm checks
``chart/templates/*``           Go templates: not validated as objects (``helm lint`` when ``helm`` exists)
``*.md``, ``.helmignore``       documentation: listed, not validated
anything else                   an error: a bundle holds nothing else, so a stray file is a mistake
==============================  ===========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from servewise.errors import UsageError

from ._checks import BudgetExpectation, check_chart, check_terraform, secret_problems
from ._report import NO_OBJECT, BundleFile, CheckReport, CheckResult, Problem, TextFile, json_path
from ._schemas import CRD_SCHEMAS, K8S_VERSION, metadata_validator, schema_for

__all__ = ["BudgetExpectation", "check_directory", "check_files", "load_objects"]

_DOCS = (".md", ".helmignore", ".txt")
_MAX_ERRORS_PER_OBJECT = 20


def _object_label(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{document.get('kind', '?')}/{name if name else '?'}"


def _yaml_documents(file: BundleFile) -> tuple[list[Any], Problem | None]:
    try:
        return [doc for doc in yaml.safe_load_all(file.text) if doc is not None], None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        return [], Problem(file.path, NO_OBJECT, "$", f"YAML does not parse{at}: {reason}")


def _check_object(path: str, document: Any, version: str) -> CheckResult:
    if not isinstance(document, Mapping):
        problem = Problem(
            path, NO_OBJECT, "$", f"expected a Kubernetes object (a mapping), got {type(document).__name__}"
        )
        return CheckResult(path, NO_OBJECT, "-", (problem,))
    label = _object_label(document)
    api_version, kind = document.get("apiVersion"), document.get("kind")
    missing = [f for f, v in (("apiVersion", api_version), ("kind", kind)) if not isinstance(v, str) or not v]
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        missing.append("metadata.name")
    if missing:
        return CheckResult(
            path, label, "-", tuple(Problem(path, label, f"$.{f}", "required") for f in missing)
        )
    choice = schema_for(str(api_version), str(kind), version)
    if choice is None:
        known = ", ".join(f"{k} ({a})" for a, k in sorted(CRD_SCHEMAS))
        problem = Problem(
            path,
            label,
            "$.kind",
            f"no schema for {kind} {api_version} (Kubernetes {version} built-ins and {known} are known); an "
            "object that cannot be validated is not accepted",
        )
        return CheckResult(path, label, "none", (problem,))
    errors = sorted(choice.validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [Problem(path, label, json_path(list(e.absolute_path)), e.message) for e in errors]
    if choice.crd:  # CRD schemas leave metadata open; the API server checks it as ObjectMeta
        for error in metadata_validator(version).iter_errors(metadata):
            problems.append(
                Problem(path, label, json_path(["metadata", *error.absolute_path]), error.message)
            )
    if len(problems) > _MAX_ERRORS_PER_OBJECT:
        more = len(problems) - _MAX_ERRORS_PER_OBJECT
        problems = [
            *problems[:_MAX_ERRORS_PER_OBJECT],
            Problem(path, label, "$", f"… and {more} more errors"),
        ]
    problems.extend(secret_problems(document, file=path, obj=label))
    return CheckResult(path, label, choice.label, tuple(problems))


def _check_manifest(file: BundleFile, version: str) -> list[CheckResult]:
    documents, problem = _yaml_documents(file)
    if problem is not None:
        return [CheckResult(file.path, NO_OBJECT, "-", (problem,))]
    if not documents:
        empty = Problem(file.path, NO_OBJECT, "$", "no Kubernetes object in the file")
        return [CheckResult(file.path, NO_OBJECT, "-", (empty,))]
    return [_check_object(file.path, document, version) for document in documents]


def _is_doc(path: str) -> bool:
    return path.endswith(_DOCS) or path == "README"


def check_files(
    files: Sequence[BundleFile],
    *,
    expected_budget: BudgetExpectation | None = None,
    k8s_version: str = K8S_VERSION,
) -> CheckReport:
    """Check a bundle given as files (bundle-relative ``path`` + ``text``); nothing is read from or written to disk
    except a temporary copy of the chart for ``helm lint``. ``expected_budget`` (the plan's thresholds) makes
    the Terraform check compare against the plan, not only AWS against GCP."""
    results: list[CheckResult] = []
    terraform: list[BundleFile] = []
    chart: list[BundleFile] = []
    for file in sorted(files, key=lambda f: f.path):
        path = file.path
        if path.startswith("kubernetes/") and path.endswith((".yaml", ".yml")):
            results.extend(_check_manifest(file, k8s_version))
        elif path.startswith("terraform/") and path.endswith(".tf"):
            terraform.append(file)
        elif path.startswith("chart/") and not path.endswith(".helmignore"):
            chart.append(file)
        elif _is_doc(path) or path.startswith("chart/"):
            results.append(CheckResult(path, NO_OBJECT, "-", skipped="documentation"))
        else:
            problem = Problem(
                path,
                NO_OBJECT,
                "$",
                "unexpected file in a deploy bundle (expected kubernetes/*.yaml, terraform/*.tf, chart/…, *.md); "
                "remove it or move it out of the bundle",
            )
            results.append(CheckResult(path, NO_OBJECT, "-", (problem,)))
    reports = [CheckReport(tuple(results))]
    if terraform:
        reports.append(check_terraform(terraform, expected_budget))
    if chart:
        reports.append(check_chart(chart))
    if not any(f.path.startswith("kubernetes/") for f in files):
        missing = Problem(
            "kubernetes/", NO_OBJECT, "$", "no kubernetes/*.yaml: this is not a servewise deploy bundle"
        )
        reports.append(CheckReport((CheckResult("kubernetes/", NO_OBJECT, "-", (missing,)),)))
    return CheckReport.merge(reports)


def read_bundle(path: Path) -> list[TextFile]:
    """Every non-hidden file under ``path`` as (relative POSIX path, text); ``UsageError`` for a bad folder."""
    if not path.exists():
        raise UsageError(f"--check {path}: no such folder; give the folder `servewise deploy … -o DIR` wrote")
    if not path.is_dir():
        raise UsageError(f"--check {path}: not a folder; give the folder `servewise deploy … -o DIR` wrote")
    files: list[TextFile] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".") or n == ".helmignore"):
            full = Path(root) / name
            relative = full.relative_to(path).as_posix()
            try:
                files.append(TextFile(relative, full.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as err:
                reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
                raise UsageError(f"--check {path}: cannot read {relative} ({reason})") from err
    if not files:
        raise UsageError(
            f"--check {path}: the folder is empty; give the folder `servewise deploy … -o DIR` wrote"
        )
    return files


def check_directory(path: Path, *, k8s_version: str = K8S_VERSION) -> CheckReport:
    """``check_files`` over a bundle on disk."""
    return check_files(read_bundle(path), k8s_version=k8s_version)


def load_objects(files: Sequence[BundleFile]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a (checked) bundle, in file order: what ``--apply`` sends."""
    objects: list[dict[str, Any]] = []
    for file in sorted(files, key=lambda f: f.path):
        if file.path.startswith("kubernetes/") and file.path.endswith((".yaml", ".yml")):
            documents, problem = _yaml_documents(file)
            if problem is not None:
                raise UsageError(problem.line())
            objects.extend(dict(doc) for doc in documents if isinstance(doc, Mapping))
    return objects
