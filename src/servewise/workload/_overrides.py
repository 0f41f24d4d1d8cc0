"""``--set key=value``: change any field of a ``Workload`` by its dotted path, for what-if comparisons.

Why generic over the model's fields: a what-if should reach every field a workload file can hold (``traffic.qps``,
``slo.ttft_p95_ms``, ``constraints.gpus``) without a flag per field, and a new field must work without a new line
here. Paths are checked against the pydantic model before anything is built, so a typo names the valid keys; values
are YAML scalars or lists (``40``, ``300.5``, ``[H100, L4]``, ``null``), and the changed workload is validated once
as a whole, so an invalid value gets the same one-line message a workload file would.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from servewise.errors import UsageError, did_you_mean

from ._build import _merge, _normalized, _without_replaced_rate, validation_message
from ._model import Workload

__all__ = ["Override", "apply_overrides", "override_paths", "parse_override", "parse_variation"]


@dataclass(frozen=True, slots=True)
class Override:
    """One ``path=value`` assignment; ``text`` is what the user wrote, kept for messages and labels."""

    path: str
    value: object
    text: str


def _submodel(annotation: object) -> type[BaseModel] | None:
    """The pydantic model a field holds (also inside ``X | None``), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    if origin is typing.Annotated:
        return _submodel(typing.get_args(annotation)[0])
    return None


def override_paths(model: type[BaseModel] = Workload, prefix: str = "") -> list[str]:
    """Every settable dotted path of ``model``: sections and the fields inside them."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        sub = _submodel(info.annotation)
        if sub is not None:
            paths.extend(override_paths(sub, f"{path}."))
    return paths


def _check_path(path: str) -> None:
    model: type[BaseModel] = Workload
    walked: list[str] = []
    for part in path.split("."):
        fields = model.model_fields
        if part not in fields:
            where = f" under {'.'.join(walked)}" if walked else ""
            known = ", ".join(fields)
            guesses = did_you_mean(part, fields)
            hint = f"did you mean {', '.join(repr(g) for g in guesses)}? " if guesses else ""
            raise UsageError(f"--set {path}: unknown key {part!r}{where}; {hint}valid keys{where}: {known}")
        walked.append(part)
        sub = _submodel(fields[part].annotation)
        if sub is None and len(walked) < len(path.split(".")):
            raise UsageError(
                f"--set {path}: {'.'.join(walked)} is a value, not a section; set it as --set "
                f"{'.'.join(walked)}=VALUE"
            )
        if sub is not None:
            model = sub


def parse_override(text: str) -> Override:
    """``"traffic.qps=40"`` → Override; the value is parsed as YAML (``[H100, L4]`` is a list, ``null`` unsets)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise UsageError(
            f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set traffic.qps=40; "
            f"valid top-level keys: {', '.join(Workload.model_fields)}"
        )
    _check_path(path)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "not a YAML value"
        raise UsageError(
            f"--set {path}: cannot read {raw!r}: {problem}; give a number, a word or a list like [H100, L4]"
        ) from err
    if isinstance(value, dict):
        raise UsageError(
            f"--set {path}: give one value, not a mapping; set the fields one by one (--set {path}.FIELD=VALUE)"
        )
    return Override(path, value, text.strip())


def parse_variation(text: str) -> tuple[Override, ...]:
    """One what-if side: assignments separated by ``;`` (``"traffic.qps=40;slo.ttft_p95_ms=300"``)."""
    parts = [part for part in text.split(";") if part.strip()]
    if not parts:
        raise UsageError("--set needs KEY=VALUE, e.g. --set traffic.qps=40")
    return tuple(parse_override(part) for part in parts)


def _tree(overrides: Iterable[Override]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for override in overrides:
        *parents, leaf = override.path.split(".")
        node = tree
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = override.value
    return tree


def apply_overrides(workload: Workload, overrides: Sequence[Override]) -> Workload:
    """``workload`` with each override applied (later ones win), validated once; errors are one ``UsageError``."""
    if not overrides:
        return workload
    base: dict[str, Any] = workload.model_dump()
    for name, info in Workload.model_fields.items():
        if info.exclude:  # left out of dumps (plan documents) but part of the workload: keep it
            value = getattr(workload, name)
            base[name] = value.model_dump() if isinstance(value, BaseModel) else value
    layer = _normalized(_tree(overrides))
    merged = _merge(_without_replaced_rate(base, layer), layer)
    try:
        return Workload.model_validate(merged)
    except ValidationError as err:
        shown = " ".join(f"--set {o.text}" for o in overrides)
        raise UsageError(validation_message(err, prefix=shown)) from err
