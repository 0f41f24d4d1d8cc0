"""Servewise's exception tree: one root, every error a message a user can act on.

ServewiseError                 root; ``str(err)`` is one line that says what is wrong and what to do
├── UsageError                 bad input from a user: flags, files, values (CLI exit code 2, HTTP 400/422)
│   ├── UnknownNameError       a model, GPU, use case, provider … that the catalog does not know; carries
│   │                          ``suggestions`` ("did you mean")
│   └── WorkloadFileError      a workload YAML/JSON file that cannot be read or does not validate
├── InfeasibleError            valid input that no option can satisfy (SLO, budget, memory); says which
│                              constraint binds and the closest option (exit code 2)
└── CatalogError               the catalog database cannot be opened, migrated or imported
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CatalogError",
    "InfeasibleError",
    "ServewiseError",
    "UnknownNameError",
    "UsageError",
    "WorkloadFileError",
    "did_you_mean",
]


class ServewiseError(Exception):
    """Root of every error Servewise raises on purpose; the message is shown to the user as is."""


class UsageError(ServewiseError):
    """The user asked for something malformed or out of range."""


class UnknownNameError(UsageError):
    """A name the catalog does not know; ``suggestions`` are the closest known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.suggestions = did_you_mean(name, known)
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        message += " " if self.suggestions else ". "
        message += hint or f"See `servewise catalog list {kind}s` for the full list."
        super().__init__(message)


class WorkloadFileError(UsageError):
    """A workload file that cannot be parsed or validated."""


class InfeasibleError(ServewiseError):
    """Every candidate was rejected; the message names the binding constraint and the closest option."""


class CatalogError(ServewiseError):
    """The catalog database cannot be used (unreachable URL, failed migration, bad import file)."""


def did_you_mean(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """Closest known names to ``name``, case-insensitively, best first (difflib ratio ≥ 0.5)."""
    by_folded: dict[str, str] = {}
    for candidate in known:
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(name.casefold(), list(by_folded), n=limit, cutoff=0.5)
    folded = name.casefold()
    prefixed = [k for k in by_folded if k.startswith(folded) and k not in matches] if folded else []
    return [by_folded[m] for m in [*matches, *prefixed][:limit]]
