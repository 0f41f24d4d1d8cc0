"""The non-schema checks of a deploy bundle: secrets, the Terraform budgets and the Helm chart's own files.

Secrets: a bundle is shared and committed, so it must never carry a credential. Two rules: no ``kind: Secret``
with ``data``/``stringData``, and no env var (``env: [{name, value}]`` anywhere in an object or in Helm values)
with a literal non-empty ``value`` whose name looks like a token, key or password — use ``valueFrom.secretKeyRef``.

Terraform: parsed with python-hcl2 (no ``terraform`` binary needed). The budget files must declare an
``aws_budgets_budget`` (``budget_type = "COST"``, ``time_unit = "MONTHLY"``, one ``notification`` per threshold
with ``threshold_type = "PERCENTAGE"``) and a ``google_billing_budget`` (one ``threshold_rules`` per threshold;
Google's ``threshold_percent`` is 1.0-based, 0.8 = 80 %). The two must name the same thresholds; when the plan is
known (rendering), they must be the plan's ``alerts.levels[].threshold_pct`` — a hand-edited file fails.

Helm: ``Chart.yaml`` needs ``apiVersion: v2``, a ``name`` and a SemVer 2 ``version``; ``values.yaml`` must validate
against ``values.schema.json``; templates are Go templates, linted by ``helm lint`` only when ``helm`` is on PATH.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import yaml
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for

from ._report import NO_OBJECT, BundleFile, CheckReport, CheckResult, Problem, TextFile, json_path

__all__ = [
    "SECRET_NAME",
    "SEMVER",
    "BudgetExpectation",
    "check_chart",
    "check_terraform",
    "secret_problems",
]

SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PWD|KEY|APIKEY|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)(_|$)"
)
"""An env var name that looks like it holds a credential (upper-cased first): HF_TOKEN, OPENAI_API_KEY, …"""

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
"""The regular expression semver.org gives for SemVer 2.0.0 (Helm requires chart versions in SemVer 2)."""

_PCT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class BudgetExpectation:
    """What the Terraform budgets must say, from the plan: thresholds in % of ``amount_usd`` per month."""

    thresholds_pct: tuple[float, ...]
    amount_usd: float | None = None


# -- secrets -------------------------------------------------------------------------------------------------


def _env_lists(node: Any, path: tuple[object, ...] = ()) -> Iterator[tuple[tuple[object, ...], list[Any]]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield (*path, key), value
            yield from _env_lists(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _env_lists(item, (*path, index))


def secret_problems(document: Any, *, file: str, obj: str) -> list[Problem]:
    """Credentials written into ``document`` (a Kubernetes object or Helm values)."""
    problems: list[Problem] = []
    if isinstance(document, Mapping) and document.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if document.get(field):
                problems.append(
                    Problem(
                        file,
                        obj,
                        f"$.{field}",
                        "a Secret with literal data must not be in a deploy bundle; create it out of band "
                        "(kubectl create secret) and reference it",
                    )
                )
    for path, entries in _env_lists(document):
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            name, value = entry.get("name"), entry.get("value")
            if isinstance(name, str) and value not in (None, "") and SECRET_NAME.search(name.upper()):
                problems.append(
                    Problem(
                        file,
                        obj,
                        json_path([*path, index, "value"]),
                        f"env var {name} has a literal value that looks like a credential; use "
                        "valueFrom.secretKeyRef instead",
                    )
                )
    return problems


# -- terraform -----------------------------------------------------------------------------------------------


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals (``'"COST"'``)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _resources(tree: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for block in tree.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                yield _unquote(rtype), _unquote(name), body


def _number(value: Any) -> float | None:
    value = _unquote(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _aws_thresholds(file: str, obj: str, body: Mapping[str, Any]) -> tuple[list[float], list[Problem]]:
    problems: list[Problem] = []
    for field, expected in (("budget_type", "COST"), ("time_unit", "MONTHLY")):
        if _unquote(body.get(field)) != expected:
            problems.append(
                Problem(file, obj, f"$.{field}", f"must be {expected!r}, got {body.get(field)!r}")
            )
    if _number(body.get("limit_amount")) is None:
        problems.append(Problem(file, obj, "$.limit_amount", "missing or not a number"))
    notifications = body.get("notification", [])
    if not notifications:
        problems.append(
            Problem(file, obj, "$.notification", "no notification blocks: no budget alert would fire")
        )
    thresholds: list[float] = []
    for index, note in enumerate(notifications):
        where = f"$.notification[{index}]"
        if _unquote(note.get("threshold_type")) != "PERCENTAGE":
            problems.append(Problem(file, obj, f"{where}.threshold_type", "must be 'PERCENTAGE'"))
        threshold = _number(note.get("threshold"))
        if threshold is None or threshold <= 0:
            problems.append(
                Problem(file, obj, f"{where}.threshold", f"not a positive number: {note.get('threshold')!r}")
            )
        else:
            thresholds.append(threshold)
    return thresholds, problems


def _gcp_thresholds(file: str, obj: str, body: Mapping[str, Any]) -> tuple[list[float], list[Problem]]:
    problems: list[Problem] = []
    rules = body.get("threshold_rules", [])
    if not body.get("amount"):
        problems.append(Problem(file, obj, "$.amount", "missing: the budget has no amount"))
    if not rules:
        problems.append(
            Problem(file, obj, "$.threshold_rules", "no threshold_rules: no budget alert would fire")
        )
    thresholds: list[float] = []
    for index, rule in enumerate(rules):
        fraction = _number(rule.get("threshold_percent"))
        if fraction is None or fraction <= 0:
            problems.append(
                Problem(file, obj, f"$.threshold_rules[{index}].threshold_percent", "not a positive number")
            )
        else:
            thresholds.append(fraction * 100.0)
    return thresholds, problems


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(
        abs(x - y) <= _PCT_TOLERANCE * max(1.0, abs(y)) for x, y in zip(a, b, strict=True)
    )


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}%" for v in values) or "none"


def check_terraform(files: Sequence[BundleFile], expected: BudgetExpectation | None) -> CheckReport:
    """Parse every ``terraform/*.tf`` and check the budgets (see the module docstring)."""
    results: list[CheckResult] = []
    found: dict[str, tuple[str, str, list[float]]] = {}
    for file in files:
        try:
            tree = hcl2.loads(file.text)
        except Exception as err:  # python-hcl2 raises lark's exception classes
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            problem = Problem(file.path, NO_OBJECT, "$", f"Terraform does not parse: {first}")
            results.append(CheckResult(file.path, NO_OBJECT, "HCL2 (python-hcl2)", (problem,)))
            continue
        resources = list(_resources(tree))
        if not resources:
            problem = Problem(file.path, NO_OBJECT, "$", "no resource blocks")
            results.append(CheckResult(file.path, NO_OBJECT, "HCL2 (python-hcl2)", (problem,)))
        for rtype, name, body in resources:
            obj = f"{rtype}.{name}"
            if rtype == "aws_budgets_budget":
                thresholds, problems = _aws_thresholds(file.path, obj, body)
            elif rtype == "google_billing_budget":
                thresholds, problems = _gcp_thresholds(file.path, obj, body)
            else:
                thresholds, problems = [], []
            if rtype in ("aws_budgets_budget", "google_billing_budget"):
                thresholds.sort()
                found.setdefault(rtype, (file.path, obj, thresholds))
                if (
                    expected is not None
                    and not problems
                    and not _same(thresholds, sorted(expected.thresholds_pct))
                ):
                    problems.append(
                        Problem(
                            file.path,
                            obj,
                            "$",
                            f"thresholds {_fmt(thresholds)} differ from the plan's "
                            f"{_fmt(sorted(expected.thresholds_pct))}",
                        )
                    )
            results.append(CheckResult(file.path, obj, "Terraform budget checks", tuple(problems)))
    results.extend(_cross_checks(files, found))
    return CheckReport(tuple(results))


def _cross_checks(
    files: Sequence[BundleFile], found: Mapping[str, tuple[str, str, list[float]]]
) -> list[CheckResult]:
    """Both budgets must exist and agree with each other (a tampered file makes them disagree)."""
    if not files:
        return []
    problems: list[Problem] = []
    where = "terraform/"
    for rtype in ("aws_budgets_budget", "google_billing_budget"):
        if rtype not in found:
            problems.append(Problem(where, NO_OBJECT, "$", f"no {rtype} resource in the Terraform files"))
    if not problems:
        (aws_file, aws_obj, aws), (_, gcp_obj, gcp) = (
            found["aws_budgets_budget"],
            found["google_billing_budget"],
        )
        if not _same(aws, gcp):
            problems.append(
                Problem(
                    aws_file,
                    aws_obj,
                    "$.notification",
                    f"thresholds {_fmt(aws)} differ from {gcp_obj}'s {_fmt(gcp)}",
                )
            )
    return [CheckResult(where, "budgets (AWS + GCP)", "Terraform budget checks", tuple(problems))]


# -- helm ----------------------------------------------------------------------------------------------------


def _yaml(file: BundleFile) -> tuple[Any, Problem | None]:
    try:
        return yaml.safe_load(file.text), None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return None, Problem(
            file.path, NO_OBJECT, "$", f"YAML does not parse{at}: {getattr(err, 'problem', err)}"
        )


def _chart_yaml(file: BundleFile) -> CheckResult:
    chart, problem = _yaml(file)
    if problem is not None:
        return CheckResult(file.path, "Chart", "Helm Chart.yaml (apiVersion v2)", (problem,))
    problems: list[Problem] = []
    if not isinstance(chart, Mapping):
        chart = {}
        problems.append(Problem(file.path, "Chart", "$", "not a mapping"))
    name = chart.get("name")
    if chart.get("apiVersion") != "v2":
        problems.append(
            Problem(
                file.path, f"Chart/{name}", "$.apiVersion", f"must be 'v2', got {chart.get('apiVersion')!r}"
            )
        )
    if not isinstance(name, str) or not name:
        problems.append(Problem(file.path, "Chart", "$.name", "required"))
    version = chart.get("version")
    if not isinstance(version, str) or not SEMVER.match(version):
        problems.append(
            Problem(file.path, f"Chart/{name}", "$.version", f"must be a SemVer 2 string, got {version!r}")
        )
    return CheckResult(file.path, f"Chart/{name}", "Helm Chart.yaml (apiVersion v2)", tuple(problems))


def _values(values_file: BundleFile, schema_file: BundleFile | None) -> list[CheckResult]:
    results: list[CheckResult] = []
    schema: Any = None
    if schema_file is not None:
        try:
            schema = json.loads(schema_file.text)
            validator_for(schema, default=Draft202012Validator).check_schema(schema)
            results.append(CheckResult(schema_file.path, "values schema", "JSON Schema meta-schema"))
        except (json.JSONDecodeError, SchemaError) as err:
            message = err.msg if isinstance(err, json.JSONDecodeError) else err.message
            bad = Problem(schema_file.path, NO_OBJECT, "$", f"not a valid JSON Schema: {message}")
            results.append(CheckResult(schema_file.path, "values schema", "JSON Schema meta-schema", (bad,)))
            schema = None
    values, problem = _yaml(values_file)
    problems: list[Problem] = [problem] if problem else []
    if schema_file is None:
        problems.append(Problem(values_file.path, "values", "$", "chart/values.schema.json is missing"))
    elif schema is not None and problem is None:
        validator = validator_for(schema, default=Draft202012Validator)(schema)
        for error in sorted(
            validator.iter_errors(values if values is not None else {}),
            key=lambda e: [str(p) for p in e.absolute_path],
        ):
            problems.append(
                Problem(values_file.path, "values", json_path(list(error.absolute_path)), error.message)
            )
    if problem is None:
        problems.extend(secret_problems(values, file=values_file.path, obj="values"))
    label = "chart/values.schema.json" if schema_file is not None else "-"
    results.append(CheckResult(values_file.path, "values", label, tuple(problems)))
    return results


def _helm_lint(chart_files: Sequence[BundleFile]) -> tuple[list[Problem], str]:
    helm = shutil.which("helm")
    if helm is None:
        return (
            [],
            "helm not found on PATH: `helm lint` skipped (Chart.yaml and values.yaml were still checked)",
        )
    with tempfile.TemporaryDirectory(prefix="servewise-chart-") as tmp:
        root = Path(tmp)
        for file in chart_files:
            target = root / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.text, encoding="utf-8")
        try:
            run = subprocess.run(
                [helm, "lint", str(root / "chart")], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return [Problem("chart/", NO_OBJECT, "$", f"helm lint could not run: {err}")], ""
    if run.returncode == 0:
        return [], "helm lint: passed"
    lines = [line.strip() for line in (run.stdout + run.stderr).splitlines() if "[ERROR]" in line]
    return [Problem("chart/", NO_OBJECT, "$", f"helm lint: {line}") for line in lines or ["failed"]], ""


def check_chart(files: Sequence[BundleFile]) -> CheckReport:
    """Check the ``chart/`` files of a Helm bundle (``files`` are those under ``chart/``)."""
    by_path = {file.path: file for file in files}
    results: list[CheckResult] = []
    chart = by_path.get("chart/Chart.yaml")
    if chart is None:
        problem = Problem("chart/Chart.yaml", NO_OBJECT, "$", "missing: a Helm chart needs Chart.yaml")
        results.append(
            CheckResult("chart/Chart.yaml", NO_OBJECT, "Helm Chart.yaml (apiVersion v2)", (problem,))
        )
    else:
        results.append(_chart_yaml(chart))
    values = by_path.get("chart/values.yaml")
    schema = by_path.get("chart/values.schema.json")
    if values is not None:
        results.extend(_values(values, schema))
    elif schema is not None:
        results.extend(_values(TextFile("chart/values.yaml", ""), schema))
    for file in files:
        if file.path.startswith("chart/templates/"):
            results.append(CheckResult(file.path, "template", "-", skipped="Go template (see helm lint)"))
    lint_problems, note = _helm_lint(files)
    if lint_problems:
        results.append(CheckResult("chart/", "helm lint", "helm lint", tuple(lint_problems)))
    return CheckReport(tuple(results), (note,) if note else ())
