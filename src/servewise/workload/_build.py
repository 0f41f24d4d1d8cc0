"""Build a ``Workload`` from a use-case template, a YAML/JSON file and command-line overrides.

Why a merge of plain dicts: each layer (template < file < flags) may set any field, and validation must happen once,
on the merged result, so an error names the final field (``traffic.qps``) whatever layer set it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from servewise.catalog import UseCaseTemplate
from servewise.errors import UsageError, WorkloadFileError

from ._model import Workload

__all__ = ["build_workload", "load_workload_file", "template_defaults", "validation_message"]


def template_defaults(template: UseCaseTemplate) -> dict[str, Any]:
    """The workload fields a use-case template fixes (lengths, p95 SLOs, quality floor)."""
    return {
        "name": template.name,
        "use_case": template.name,
        "traffic": {
            "prompt_tokens": {"mean": template.prompt_tokens},
            "output_tokens": {"mean": template.output_tokens},
        },
        "slo": {
            "ttft_p95_ms": template.ttft_p95_ms,
            "itl_p95_ms": template.itl_p95_ms,
            "e2e_p95_ms": template.e2e_p95_ms,
        },
        "constraints": {"min_params_b": template.min_params_b},
    }


def _normalized(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A layer whose lengths are mappings, so ``prompt_tokens: 600`` in a file and ``--prompt-tokens`` merge."""
    result = dict(layer)
    traffic = result.get("traffic")
    if isinstance(traffic, Mapping):
        traffic = dict(traffic)
        for key in ("prompt_tokens", "output_tokens"):
            value = traffic.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                traffic[key] = {"mean": value}
        result["traffic"] = traffic
    return result


_RATE_BY_USERS = ("users", "requests_per_user_hour")


def _without_replaced_rate(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """A rate set in ``layer`` replaces the other form of rate set below it (``--qps`` over a file's ``users``)."""
    traffic = layer.get("traffic")
    below = base.get("traffic")
    if not isinstance(traffic, Mapping) or not isinstance(below, Mapping):
        return base
    if "qps" in traffic:
        drop: tuple[str, ...] = _RATE_BY_USERS
    elif any(key in traffic for key in _RATE_BY_USERS):
        drop = ("qps",)
    else:
        return base
    return {**base, "traffic": {key: value for key, value in below.items() if key not in drop}}


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validation_message(err: ValidationError, *, prefix: str = "workload") -> str:
    """One line naming the first invalid field, what is wrong and the value given; a misspelled or unknown key
    comes first, since it usually explains the errors after it."""
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    message = first["msg"].removeprefix("Value error, ")
    given = first.get("input")
    shown = "" if isinstance(given, dict | list) or given is None else f" (got {given!r})"
    extra = f"; {err.error_count() - 1} more problem(s)" if err.error_count() > 1 else ""
    return f"{prefix}: {location + ': ' if location else ''}{message}{shown}{extra}"


def load_workload_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON workload file into a dict; any problem is one ``WorkloadFileError`` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise WorkloadFileError(f"cannot read workload file {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise WorkloadFileError(
            f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8 YAML or JSON"
        ) from err
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if isinstance(err, json.JSONDecodeError):
            where = f" line {err.lineno}, column {err.colno}"
        problem = getattr(err, "problem", None) or getattr(err, "msg", None) or "syntax error"
        raise WorkloadFileError(
            f"{path}:{where}: malformed {path.suffix.lstrip('.') or 'YAML'}: {problem}"
        ) from err
    if data is None:
        raise WorkloadFileError(f"{path} is empty; see docs/workload.md for the fields")
    if not isinstance(data, dict):
        raise WorkloadFileError(f"{path} must hold a mapping of workload fields, not a {type(data).__name__}")
    return data


def build_workload(
    *,
    template: UseCaseTemplate | None = None,
    file_data: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    source: str = "workload",
) -> Workload:
    """Merge template < file < overrides and validate once; errors are one ``UsageError`` line."""
    layers: dict[str, Any] = template_defaults(template) if template is not None else {}
    for layer in (file_data or {}, overrides or {}):
        layer = _normalized(layer)
        layers = _merge(_without_replaced_rate(layers, layer), layer)
    traffic = layers.get("traffic", {})
    if isinstance(traffic, Mapping) and "prompt_tokens" not in traffic and "output_tokens" not in traffic:
        raise UsageError(
            f"{source}: no request lengths; pass --use-case NAME (see `servewise catalog list use-cases`) "
            "or --prompt-tokens and --output-tokens"
        )
    try:
        return Workload.model_validate(layers)
    except ValidationError as err:
        error_type = WorkloadFileError if file_data else UsageError
        raise error_type(validation_message(err, prefix=source)) from err
