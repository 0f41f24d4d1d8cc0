"""Every module imports with the base dependencies alone (the README's first Quickstart command installs only those).

The test environment has every extra installed, so a module importing a test-only package at its top works in the
suite and fails for a user: ``servewise plan`` once died with ``No module named 'openai'`` on a fresh install, and
the gateway imported ``redis`` (the optional ``servewise[redis]`` extra) even for a SQLite-only setup. A child
interpreter that refuses to import the packages only the ``test`` extra brings imports every module.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

_CHILD = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} (not a base dependency)")
        return None

sys.meta_path.insert(0, Refuse())
import servewise
failed = []
for module in pkgutil.walk_packages(servewise.__path__, "servewise."):
    try:
        importlib.import_module(module.name)
    except ImportError as err:
        failed.append(f"{module.name}: {err}")
print("\\n".join(failed))
"""


def _import_name(requirement: str) -> str:
    """``psycopg[binary]>=3`` → ``psycopg``; ``types-PyYAML`` → ``types_pyyaml`` (distribution → module name)."""
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
    return name.lower().replace("-", "_")


def _test_only_packages() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    base = {_import_name(r) for r in project["dependencies"]}
    return {_import_name(r) for r in project["optional-dependencies"]["test"]} - base


def test_the_test_extra_brings_packages_the_base_install_lacks() -> None:
    # the check below means something only while the test extra has packages of its own
    assert {"pytest", "playwright", "redis"} <= _test_only_packages()


def test_every_module_imports_without_the_test_only_packages() -> None:
    blocked = ",".join(sorted(_test_only_packages()))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, blocked], capture_output=True, text=True, timeout=300, check=True
    )
    assert child.stdout.strip() == "", (
        f"modules that need a package outside the base dependencies:\n{child.stdout}"
    )
