"""Comparing two servers' answers by form, not content: JSON shapes, SSE framing and Prometheus metric families.

Pure functions of the texts the servers returned (tests/realvllm/test_shapes.py tests them on small examples), so
a conformance test is "fetch from both, diff, print the differences, assert there are none".

* ``json_shape``: a JSON value with every leaf replaced by its type name (``str``, ``int``, ``float``, ``bool``,
  ``null``) and every list by the distinct shapes of its items; ``shape_diff`` lists where two shapes differ
  (``missing``: the first server has a field the second lacks; ``extra``; ``type``), by dotted path with ``[]``
  for list items.
* ``sse_payloads``: the ``data:`` payloads of a ``text/event-stream`` body, after checking its framing (every
  event a single ``data: `` line followed by a blank line, the last one ``[DONE]``).
* ``metric_families``: name → (type, label names, histogram buckets) of a Prometheus text exposition, as
  ``prometheus_client``'s parser reads it (a counter ``x_total`` is family ``x``; the ``_created`` series are their
  own gauge families), ``le``/``quantile`` left out of the label names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Family", "family_diff", "json_shape", "metric_families", "shape_diff", "sse_payloads"]


def json_shape(value: Any) -> Any:
    """The shape of a parsed JSON value (module docstring)."""
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            shape = json_shape(item)
            if shape not in shapes:
                shapes.append(shape)
        return shapes
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    raise TypeError(f"not a JSON value: {value!r}")


def _kind(shape: Any) -> str:
    if isinstance(shape, dict):
        return "object"
    if isinstance(shape, list):
        return "array"
    return str(shape)


def shape_diff(first: Any, second: Any, *, allowed_extra: tuple[str, ...] = (), path: str = "") -> list[str]:
    """Where the shape ``second`` differs from ``first`` (both from ``json_shape``); ``allowed_extra``: paths of
    fields only ``second`` may have."""
    where = path or "(top)"
    if isinstance(first, dict) and isinstance(second, dict):
        problems = []
        for key in first:
            child = f"{path}.{key}" if path else key
            if key not in second:
                problems.append(f"missing {child} ({_kind(first[key])})")
            else:
                problems += shape_diff(first[key], second[key], allowed_extra=allowed_extra, path=child)
        for key in second:
            child = f"{path}.{key}" if path else key
            if key not in first and child not in allowed_extra:
                problems.append(f"extra {child} ({_kind(second[key])})")
        return problems
    if isinstance(first, list) and isinstance(second, list):
        if not first or not second:
            return [] if not first and not second else [f"array {where}: one side is empty"]
        if len(first) != 1 or len(second) != 1:
            return [f"array {where}: items of different shapes ({len(first)} vs {len(second)})"]
        return shape_diff(first[0], second[0], allowed_extra=allowed_extra, path=f"{path}[]")
    if _kind(first) != _kind(second):
        return [f"type {where}: {_kind(first)} vs {_kind(second)}"]
    return []


def sse_payloads(body: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order; ``AssertionError`` naming the first framing fault."""
    assert body.endswith("\n\n"), f"the stream does not end with a blank line: {body[-40:]!r}"
    events = body[:-2].split("\n\n")
    payloads = []
    for event in events:
        assert "\n" not in event, f"an event spans several lines: {event[:80]!r}"
        assert event.startswith("data: "), f"an event is not a 'data: ' line: {event[:80]!r}"
        payloads.append(event[len("data: ") :])
    assert payloads and payloads[-1] == "[DONE]", "the stream does not end with data: [DONE]"
    assert "[DONE]" not in payloads[:-1], "[DONE] before the end of the stream"
    for payload in payloads[:-1]:
        json.loads(payload)  # every other event is one JSON object
    return payloads


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family as a scraper sees it."""

    type: str
    labels: frozenset[str]
    buckets: tuple[str, ...] = ()
    """A histogram's ``le`` bounds, in order (``+Inf`` last)."""


def metric_families(text: str) -> dict[str, Family]:
    """Name → ``Family`` of every family in a Prometheus text exposition."""
    families = {}
    for family in text_string_to_metric_families(text):
        labels: set[str] = set()
        buckets: list[str] = []
        for sample in family.samples:
            labels |= set(sample.labels) - {"le", "quantile"}
            if (
                sample.name.endswith("_bucket")
                and "le" in sample.labels
                and sample.labels["le"] not in buckets
            ):
                buckets.append(sample.labels["le"])
        families[family.name] = Family(family.type, frozenset(labels), tuple(buckets))
    return families


def family_diff(reference: dict[str, Family], claimed: dict[str, Family], *, skip_prefix: str) -> list[str]:
    """What ``claimed`` exposes differently from ``reference``: each family of ``claimed`` (except those named
    ``skip_prefix…``) must exist in ``reference`` with the same type, label names and buckets."""
    problems = []
    for name, family in sorted(claimed.items()):
        if name.startswith(skip_prefix):
            continue
        real = reference.get(name)
        if real is None:
            problems.append(f"{name}: not exposed by the reference server")
            continue
        if real.type != family.type:
            problems.append(f"{name}: type {family.type}, reference {real.type}")
        if real.labels != family.labels:
            problems.append(f"{name}: labels {sorted(family.labels)}, reference {sorted(real.labels)}")
        if real.buckets != family.buckets:
            problems.append(f"{name}: buckets {list(family.buckets)}, reference {list(real.buckets)}")
    return problems
