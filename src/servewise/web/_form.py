"""The Describe page's workload form: a ``Workload`` shown as form fields, and form fields back into one.

Why a module of its own: the mapping is the only web-specific translation between the page and the library —
field names, blanks meaning "no target", comma lists — and the real ``Workload`` model does all the validating.
Its errors, located by pydantic as ``("traffic", "qps")``, are mapped back to the field that shows them, so a
message appears next to what the user typed. Fields the form does not show (length distributions' kind and cv,
p50/p99 targets, prefix share, pricing, model list, priority) travel in a hidden copy of the parsed workload and
are kept as they were.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from servewise.errors import UnknownNameError
from servewise.types import Precision
from servewise.workload import Workload

__all__ = ["PRECISIONS", "WorkloadForm", "form_values", "parse_form", "unknown_name_field"]

PRECISIONS = tuple(str(p) for p in Precision)
"""Checkbox choices for the precision constraint, in the catalog's order."""

_NUMERIC = (
    "qps",
    "users",
    "requests_per_user_hour",
    "peak_factor",
    "prompt_tokens",
    "output_tokens",
    "ttft_p95_ms",
    "itl_p95_ms",
    "e2e_p95_ms",
    "budget_usd_month",
    "max_gpus",
    "min_params_b",
)
_FIELD_BY_LOC: dict[tuple[str, ...], str] = {
    ("name",): "name",
    ("use_case",): "use_case",
    ("traffic", "qps"): "qps",
    ("traffic", "users"): "users",
    ("traffic", "requests_per_user_hour"): "requests_per_user_hour",
    ("traffic", "peak_factor"): "peak_factor",
    ("traffic", "prompt_tokens"): "prompt_tokens",
    ("traffic", "output_tokens"): "output_tokens",
    ("traffic",): "qps",  # the model-level "give qps or users" rule
    ("slo", "ttft_p95_ms"): "ttft_p95_ms",
    ("slo", "itl_p95_ms"): "itl_p95_ms",
    ("slo", "e2e_p95_ms"): "e2e_p95_ms",
    ("budget_usd_month",): "budget_usd_month",
    ("constraints", "gpus"): "gpus",
    ("constraints", "providers"): "providers",
    ("constraints", "precisions"): "precisions",
    ("constraints", "max_gpus"): "max_gpus",
    ("constraints", "min_params_b"): "min_params_b",
    ("constraints",): "precisions",  # the model-level "at least one precision" rule
}
_FIELD_BY_KIND = {"gpu": "gpus", "provider": "providers", "use case": "use_case", "model": "models"}
GENERAL = "_form"
"""Errors that belong to no single field (shown above the form)."""


@dataclass
class WorkloadForm:
    """What the form shows: its values as strings, the errors by field name, the hidden base workload."""

    values: dict[str, str] = field(default_factory=dict)
    precisions: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    base_json: str = "{}"
    workload: Workload | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def form_values(workload: Mapping[str, Any]) -> WorkloadForm:
    """The form for a workload document (``Workload.model_dump(mode="json")``), with no errors."""
    traffic = workload.get("traffic") or {}
    slo = workload.get("slo") or {}
    constraints = workload.get("constraints") or {}
    values = {
        "name": _text(workload.get("name")),
        "use_case": _text(workload.get("use_case")),
        "rate_mode": "users" if traffic.get("qps") is None and traffic.get("users") is not None else "qps",
        "qps": _text(traffic.get("qps")),
        "users": _text(traffic.get("users")),
        "requests_per_user_hour": _text(traffic.get("requests_per_user_hour")),
        "peak_factor": _text(traffic.get("peak_factor", 1.0)),
        "prompt_tokens": _text((traffic.get("prompt_tokens") or {}).get("mean")),
        "output_tokens": _text((traffic.get("output_tokens") or {}).get("mean")),
        "ttft_p95_ms": _text(slo.get("ttft_p95_ms")),
        "itl_p95_ms": _text(slo.get("itl_p95_ms")),
        "e2e_p95_ms": _text(slo.get("e2e_p95_ms")),
        "budget_usd_month": _text(workload.get("budget_usd_month")),
        "gpus": ", ".join(constraints.get("gpus") or []),
        "providers": ", ".join(constraints.get("providers") or []),
        "max_gpus": _text(constraints.get("max_gpus")),
        "min_params_b": _text(constraints.get("min_params_b")),
    }
    precisions = [str(p) for p in constraints.get("precisions") or []]
    return WorkloadForm(values, precisions, {}, json.dumps(dict(workload), sort_keys=True))


def _number(raw: str) -> str | None:
    """Blank → None (no value); thousands separators, ``$`` and spaces dropped: ``"$8,000"`` → ``"8000"``."""
    cleaned = raw.replace(",", "").replace("_", "").replace("$", "").strip()
    return cleaned or None


def _names(raw: str) -> list[str]:
    return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]


def _field_for(loc: tuple[int | str, ...]) -> str:
    parts = tuple(str(p) for p in loc if not str(p).startswith("function-"))
    for size in range(len(parts), 0, -1):
        found = _FIELD_BY_LOC.get(parts[:size])
        if found is not None:
            return found
    return GENERAL


def parse_form(form: Mapping[str, str], precisions: list[str]) -> WorkloadForm:
    """Validate the submitted form with the real ``Workload`` model; ``.workload`` is set when it is valid."""
    values = {key: str(value) for key, value in form.items()}
    result = WorkloadForm(values, list(precisions), {}, values.get("base_workload", "{}") or "{}")
    try:
        base = json.loads(result.base_json)
    except json.JSONDecodeError:
        base = None
    if not isinstance(base, dict):
        result.errors[GENERAL] = "the form's hidden workload copy is damaged: describe the workload again"
        return result
    data = _merged(base, values, precisions)
    try:
        result.workload = Workload.model_validate(data)
    except ValidationError as err:
        by_users = values.get("rate_mode") == "users"
        for error in err.errors():
            name = _field_for(tuple(error["loc"]))
            if name == "qps" and by_users:  # the "give a rate" rule, shown where the user gives theirs
                name = "users"
            result.errors.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return result


def _merged(base: dict[str, Any], values: Mapping[str, str], precisions: list[str]) -> dict[str, Any]:
    """The base workload with every shown field replaced by what the form holds (blank = unset)."""
    num = {key: _number(values.get(key, "")) for key in _NUMERIC}
    traffic = dict(base.get("traffic") or {})
    by_users = values.get("rate_mode") == "users"
    traffic["qps"] = None if by_users else num["qps"]
    traffic["users"] = num["users"] if by_users else None
    traffic["requests_per_user_hour"] = num["requests_per_user_hour"] if by_users else None
    traffic["peak_factor"] = num["peak_factor"] or 1.0
    for key in ("prompt_tokens", "output_tokens"):
        length = traffic.get(key)
        traffic[key] = {**(length if isinstance(length, dict) else {}), "mean": num[key]}
    slo = {**(base.get("slo") or {}), **{k: num[k] for k in ("ttft_p95_ms", "itl_p95_ms", "e2e_p95_ms")}}
    constraints = {
        **(base.get("constraints") or {}),
        "gpus": _names(values.get("gpus", "")),
        "providers": _names(values.get("providers", "")),
        "precisions": list(precisions),
        "max_gpus": num["max_gpus"],
        "min_params_b": num["min_params_b"],
    }
    return {
        **base,
        "name": values.get("name", "").strip() or base.get("name") or "workload",
        "use_case": values.get("use_case", "").strip() or None,
        "traffic": traffic,
        "slo": slo,
        "budget_usd_month": num["budget_usd_month"],
        "constraints": constraints,
    }


def unknown_name_field(err: UnknownNameError) -> str:
    """The form field that holds the unknown name (a GPU → ``gpus``), else the form as a whole."""
    return _FIELD_BY_KIND.get(err.kind, GENERAL)
