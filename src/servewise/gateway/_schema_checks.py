"""Checking JSON answers against the request's ``response_format`` (observational: the answer is never changed).

Why: ``servewise watch``'s ``schema_valid`` gate reads ``servewise_gateway_schema_checks_total{result}``; the gateway
sees every answer, so it can count how many structured answers really are what the client asked for.

What is checked (chat completions only; nothing happens without a ``response_format`` asking for JSON, so the
hot path pays one dict lookup):

- ``{"type": "json_object"}``: each choice's ``message.content`` parses as a JSON object (``n`` > 1 answers count
  once per choice: each is an answer the client may use);
- ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"?}}``: it parses and validates against
  ``schema`` with ``jsonschema``'s Draft 2020-12 validator (``format`` is an annotation, not asserted — the
  draft's default).

A ``response_format`` that asks for JSON but is malformed, or whose ``schema`` is not a valid Draft 2020-12 schema,
is a 400 before anything is forwarded (``BadRequest``): no answer could be checked against it. Other types
(``text``, engine-specific ones) are passed through unchecked. Content that is missing (a refusal, tool calls
only) counts ``invalid``; content cut short (``finish_reason`` ``length``) is checked as it is, so it is almost
always ``invalid``.
A ``$ref`` the validator cannot resolve (remote references are never fetched) is not counted either way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from ._parse import BadRequest

__all__ = ["SchemaCheck", "check_content", "collect_content", "message_contents", "schema_check_for"]

log = logging.getLogger("servewise.gateway.schema_checks")

SCHEMA_CACHE_SIZE = 256
"""Distinct schemas whose compiled validators are kept: clients usually send the same few schemas over and over,
and checking a schema against the meta-schema costs far more than a lookup."""

_PARAM = "response_format"


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    """What one request's answer must be: a JSON object, or a JSON value valid under ``validator``'s schema."""

    kind: Literal["json_object", "json_schema"]
    validator: Draft202012Validator | None = None


@lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _validator(canonical_schema: str) -> Draft202012Validator:
    """A validator for the schema serialised as ``canonical_schema`` (sorted keys); ``SchemaError`` if invalid."""
    schema = json.loads(canonical_schema)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_check_for(body: Mapping[str, Any]) -> SchemaCheck | None:
    """The check a chat request's ``response_format`` asks for; ``None`` when it asks for no JSON.

    ``BadRequest`` (a one-line 400) when it asks for JSON but its shape or schema is unusable."""
    response_format = body.get(_PARAM)
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise BadRequest(f'`{_PARAM}` must be an object such as {{"type": "json_object"}}', _PARAM)
    kind = response_format.get("type")
    if kind == "json_object":
        return SchemaCheck("json_object")
    if kind != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BadRequest(
            f"`{_PARAM}.json_schema` must be an object with a string `name` and a `schema`",
            f"{_PARAM}.json_schema",
        )
    schema = spec.get("schema")
    param = f"{_PARAM}.json_schema.schema"
    if not isinstance(schema, dict):
        raise BadRequest(f"`{param}` must be a JSON Schema (an object); got {type(schema).__name__}", param)
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        reason = " ".join(err.message.split())
        raise BadRequest(
            f"`{param}` is not a valid JSON Schema (Draft 2020-12) at {where}: {reason}; fix the schema",
            param,
        ) from None
    return SchemaCheck("json_schema", validator)


def check_content(check: SchemaCheck, content: object) -> bool | None:
    """Whether ``content`` (an answer's ``message.content``) satisfies ``check``; ``None`` when it cannot be told
    (the schema has a ``$ref`` that does not resolve)."""
    if not isinstance(content, str):
        return False
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, RecursionError):
        return False
    if check.kind == "json_object" or check.validator is None:
        return isinstance(value, dict)
    try:
        return bool(check.validator.is_valid(value))
    except Unresolvable as err:
        log.warning("schema check skipped: %s", err)
        return None


def message_contents(body: Mapping[str, Any]) -> list[object]:
    """Each choice's ``message.content`` of a non-streamed chat completion, by index (``[None]`` without choices:
    an answer with nothing in it counts as one invalid answer)."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return [None]
    contents: dict[int, object] = {}
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            contents[position] = None
            continue
        message = choice.get("message")
        index = choice.get("index", position)
        key = index if isinstance(index, int) else position
        contents[key] = message.get("content") if isinstance(message, dict) else None
    return [contents[index] for index in sorted(contents)]


def collect_content(chunk: Mapping[str, Any], parts: dict[int, list[str]]) -> None:
    """Append each choice's content delta of one stream chunk to ``parts[index]`` (joined at the end)."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0)
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(index, int) and isinstance(text, str):
            parts.setdefault(index, []).append(text)
