"""The documents that promise behaviour: the README's two commands, CI running them, the plan schema."""

import json
import re
from pathlib import Path

from servewise.planner import plan_json_schema

ROOT = Path(__file__).resolve().parent.parent


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_quickstart_has_exactly_two_one_line_commands():
    commands = _quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "servewise plan" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "set -euo pipefail" in ci
    assert _quickstart_commands()[1] in ci.splitlines()


def test_published_plan_schema_matches_the_code():
    published = json.loads((ROOT / "docs" / "plan.schema.json").read_text(encoding="utf-8"))
    assert published == json.loads(json.dumps(plan_json_schema())), "run: python scripts/write_plan_schema.py"
