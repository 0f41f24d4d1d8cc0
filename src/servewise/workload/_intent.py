"""Describe a workload in words: ``parse_intent`` (rules) and ``extract_intent`` (an LLM, falling back to the rules).

Why the result carries ``data`` as well as the ``Workload``: ``data`` is what a workload file holds (``use_case`` plus
the fields the text changed), so it can be saved as YAML and planned with ``servewise plan -f``, edited in a form, and
read by a person; the ``Workload`` is the same thing validated. ``assumptions`` lists every value the text did not
give (template values, requests per user, peak factors), ``matched`` the phrases understood and ``ignored`` the ones
that changed nothing. See docs/intent.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from servewise.catalog import Catalog, open_catalog

from ._build import build_workload
from ._intent_llm import ENV_KEY, ENV_MODEL, ENV_URL, IntentLlmError, llm_workload
from ._intent_rules import parse_rules, template_lines
from ._intent_vocab import IntentVocabulary, vocabulary_from
from ._model import Workload

__all__ = ["DEFAULT_LLM_TIMEOUT_S", "IntentResult", "extract_intent", "parse_intent"]

DEFAULT_LLM_TIMEOUT_S = 15.0
"""Per HTTP call to the LLM endpoint; a describe form should not hang on a slow model."""


@dataclass(frozen=True)
class IntentResult:
    """A workload read from free text, and how it was read."""

    data: dict[str, Any]
    """Workload file data (``use_case`` + overrides): what ``servewise plan -f`` accepts."""
    workload: Workload
    assumptions: tuple[str, ...]
    matched: tuple[str, ...]
    """Phrases understood, each as ``"phrase" → meaning``."""
    method: Literal["rules", "llm"]
    ignored: tuple[str, ...] = ()
    """Phrases that changed nothing, each with the reason when one is known."""

    def document(self) -> dict[str, Any]:
        """JSON-ready: the validated workload, the file data, and the explanation lists."""
        return {
            "method": self.method,
            "workload": self.workload.model_dump(mode="json"),
            "data": self.data,
            "assumptions": list(self.assumptions),
            "matched": list(self.matched),
            "ignored": list(self.ignored),
        }


def _vocabulary(catalog: Catalog | None, db_url: str | None) -> IntentVocabulary:
    if catalog is not None:
        return vocabulary_from(catalog)
    with open_catalog(db_url) as opened:
        return vocabulary_from(opened)


def _rules(text: str, vocabulary: IntentVocabulary, notes: tuple[str, ...] = ()) -> IntentResult:
    data, scan = parse_rules(text, vocabulary)
    workload = build_workload(
        template=vocabulary.template(data["use_case"]), file_data=data, source="description"
    )
    return IntentResult(
        data=data,
        workload=workload,
        assumptions=(*notes, *scan.assumptions),
        matched=tuple(scan.matched),
        method="rules",
        ignored=tuple(dict.fromkeys(scan.ignored)),
    )


def parse_intent(text: str, *, db_url: str | None = None, catalog: Catalog | None = None) -> IntentResult:
    """The workload ``text`` describes, by rules; ``UsageError`` (with an example) when nothing in it is a
    workload. Names (use cases, GPUs, models, providers) come from ``catalog`` or the catalog at ``db_url``."""
    return _rules(text, _vocabulary(catalog, db_url))


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key} = {value!r}"


def extract_intent(
    text: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    timeout_s: float = DEFAULT_LLM_TIMEOUT_S,
    db_url: str | None = None,
    catalog: Catalog | None = None,
) -> IntentResult:
    """The workload ``text`` describes, by an LLM when an endpoint is configured (``base_url`` or
    ``SERVEWISE_INTENT_LLM_URL``; key and model likewise, the model defaulting to the first the server lists),
    else by rules. Any LLM failure falls back to the rules, and the reason is the first assumption."""
    url = base_url or os.environ.get(ENV_URL) or None
    vocabulary = _vocabulary(catalog, db_url)
    if url is None:
        return _rules(text, vocabulary)
    if not text or not text.strip():
        return _rules(text, vocabulary)  # raises the UsageError with an example
    try:
        data, workload, used_model = llm_workload(
            text,
            vocabulary,
            base_url=url,
            api_key=api_key or os.environ.get(ENV_KEY) or None,
            model=model or os.environ.get(ENV_MODEL) or None,
            timeout_s=timeout_s,
        )
    except IntentLlmError as err:
        return _rules(text, vocabulary, (f"LLM extraction failed, used the rules instead: {err}",))
    use_case = data.get("use_case")
    lines = [f"extracted by the LLM {used_model} at {url}; validated against the workload schema"]
    if isinstance(use_case, str):
        lines.extend(template_lines(vocabulary.template(use_case), data))
    return IntentResult(
        data=data,
        workload=workload,
        assumptions=tuple(lines),
        matched=tuple(_flatten(data)),
        method="llm",
    )
