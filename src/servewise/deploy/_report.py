"""What ``deploy --check`` found: one row per checked object or file, and every problem as one line.

Why a problem carries file, object and a JSON path: the fix is an edit in one place, and the line says where
(``kubernetes/deployment.yaml: Deployment/vllm: $.spec.replicas: 'three' is not of type 'integer'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["NO_OBJECT", "BundleFile", "CheckReport", "CheckResult", "Problem", "TextFile", "json_path"]

NO_OBJECT = "-"
"""The object column of a problem that concerns a whole file (a parse error, a missing resource)."""


class BundleFile(Protocol):
    """Anything with a bundle-relative ``path`` and its ``text``; ``servewise.deploy.RenderedFile`` is one."""

    @property
    def path(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TextFile:
    """A bundle file read from disk (``check_directory``) or made up by a check."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check: where (file, object, JSON path) and what."""

    file: str
    object: str
    path: str
    message: str

    def line(self) -> str:
        return f"{self.file}: {self.object}: {self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the ``--check`` table: a Kubernetes object, a Terraform file, a chart file, or a skipped file."""

    file: str
    object: str
    schema: str
    problems: tuple[Problem, ...] = ()
    skipped: str | None = None
    """Why the file was not validated (documentation, a Go template); ``None`` when it was."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def result(self) -> str:
        if self.problems:
            return f"FAIL ({len(self.problems)})"
        return f"skipped: {self.skipped}" if self.skipped else "ok"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every row and every note of one check; ``ok`` when no row has a problem."""

    results: tuple[CheckResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(problem for result in self.results for problem in result.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    def rows(self) -> list[dict[str, object]]:
        return [
            {"file": r.file, "object": r.object, "schema": r.schema, "result": r.result} for r in self.results
        ]

    def document(self) -> dict[str, object]:
        """The ``--format json`` payload."""
        return {
            "ok": self.ok,
            "results": [
                {
                    "file": r.file,
                    "object": r.object,
                    "schema": r.schema,
                    "result": "fail" if r.problems else ("skipped" if r.skipped else "ok"),
                    "skipped": r.skipped,
                    "problems": [p.line() for p in r.problems],
                }
                for r in self.results
            ],
            "problems": [p.line() for p in self.problems],
            "notes": list(self.notes),
        }

    @staticmethod
    def merge(parts: Iterable[CheckReport]) -> CheckReport:
        parts = list(parts)
        return CheckReport(
            tuple(r for part in parts for r in part.results), tuple(n for part in parts for n in part.notes)
        )


def json_path(parts: Sequence[object]) -> str:
    """``["spec", "containers", 0, "env"]`` → ``$.spec.containers[0].env``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
