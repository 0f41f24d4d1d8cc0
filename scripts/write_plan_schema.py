"""Write docs/plan.schema.json, the JSON Schema of the document ``servewise plan --format json`` / ``-o`` emits.

A test fails when the file and the code disagree; run this after changing a contract in ``planner/_plan.py``,
``perf`` or ``cost`` and bump ``PLAN_SCHEMA_VERSION`` when a field is removed or changes meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

from servewise.planner import plan_json_schema

TARGET = Path(__file__).resolve().parent.parent / "docs" / "plan.schema.json"


def render() -> str:
    return json.dumps(plan_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
