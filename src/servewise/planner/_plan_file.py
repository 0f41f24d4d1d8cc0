"""Reading the plan document that ``servewise plan -o plan.json`` wrote: the input of ``deploy``, ``simulate --plan``
and ``bench --against``.

Why a check of its own: the document is a file a user may have edited, renamed or produced with another version, so
every way it can be unusable gets one line that says what to do, before anything is rendered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servewise.errors import UsageError

from ._plan import PLAN_SCHEMA_VERSION

__all__ = ["PlanFileError", "check_plan_document", "load_plan_document"]

_HOW_TO_MAKE = "write one with `servewise plan ... -o plan.json`"


class PlanFileError(UsageError):
    """A plan file that is missing, not JSON, not a Servewise plan, of another schema version, or without options."""


def load_plan_document(path: Path) -> dict[str, Any]:
    """The plan document at ``path`` as a dict, checked just enough to render from it (one-line errors otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise PlanFileError(f"plan file {path} does not exist; {_HOW_TO_MAKE}") from err
    except IsADirectoryError as err:
        raise PlanFileError(f"plan file {path} is a folder; give the JSON file that `plan -o` wrote") from err
    except (OSError, UnicodeDecodeError) as err:
        raise PlanFileError(f"cannot read plan file {path} ({err}); check the path and permissions") from err
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise PlanFileError(
            f"plan file {path} is not JSON (line {err.lineno}: {err.msg}); {_HOW_TO_MAKE} "
            "(`--format json` prints the same document)"
        ) from err
    return check_plan_document(document, str(path))


def check_plan_document(document: object, where: str = "the plan") -> dict[str, Any]:
    """``document`` when it is a usable plan; the same one-line errors as ``load_plan_document`` otherwise."""
    if not isinstance(document, dict) or "schema_version" not in document or "options" not in document:
        raise PlanFileError(f"{where} is not a Servewise plan (no schema_version/options); {_HOW_TO_MAKE}")
    version = document["schema_version"]
    if version != PLAN_SCHEMA_VERSION:
        raise PlanFileError(
            f"{where} has plan schema_version {version!r}, this Servewise reads {PLAN_SCHEMA_VERSION!r}; "
            "re-plan with this version (`servewise plan ... -o plan.json`)"
        )
    options = document["options"]
    if not isinstance(options, list):
        raise PlanFileError(f"{where}: options must be a list; {_HOW_TO_MAKE}")
    if not options:
        raise PlanFileError(
            "the plan has no options: relax the SLO, budget or constraints (see its `rejected` list or "
            "`servewise plan --show-rejected`) and re-plan"
        )
    for key in ("workload", "peak_qps", "alerts"):
        if key not in document:
            raise PlanFileError(f"{where} lacks {key!r}; it is incomplete: {_HOW_TO_MAKE}")
    return document
