"""``PlanStore``: the plans the web UI made, kept in process memory, newest last, at most ``capacity`` of them.

Why in memory: a plan is a few tens of kB of JSON that takes 1–3 s to recompute, and the web UI needs it for the
Plan, Compare and Deploy pages a few clicks later. A database table would outlive its usefulness and need a
migration; an in-process LRU is enough for one user or a small team. Consequences (documented in docs/web.md):
a restart forgets every plan, and with several worker processes each has its own store — every plan page
therefore offers its JSON for download. Ids are random (``secrets.token_urlsafe``), so one user cannot guess
another's plan id.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_CAPACITY", "PlanStore", "StoredPlan"]

DEFAULT_CAPACITY = 100


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """One plan document, with the describe text and parse assumptions that led to it (for display)."""

    plan_id: str
    document: dict[str, Any]
    text: str = ""
    intent_assumptions: tuple[str, ...] = ()
    label: str = ""


@dataclass
class PlanStore:
    """Thread-safe LRU of plan documents keyed by random ids; reading a plan makes it the most recent."""

    capacity: int = DEFAULT_CAPACITY
    _plans: OrderedDict[str, StoredPlan] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {self.capacity}")

    def add(
        self,
        document: dict[str, Any],
        *,
        text: str = "",
        intent_assumptions: tuple[str, ...] = (),
        label: str = "",
    ) -> StoredPlan:
        """Keep ``document`` under a new random id, evicting the least recently used plan when full."""
        with self._lock:
            plan_id = secrets.token_urlsafe(8)
            while plan_id in self._plans:  # pragma: no cover - 64 random bits
                plan_id = secrets.token_urlsafe(8)
            stored = StoredPlan(plan_id, document, text, intent_assumptions, label)
            self._plans[plan_id] = stored
            while len(self._plans) > self.capacity:
                self._plans.popitem(last=False)
            return stored

    def get(self, plan_id: str) -> StoredPlan | None:
        """The plan with this id, or ``None`` when it was never made or has been evicted (or the app restarted)."""
        with self._lock:
            stored = self._plans.get(plan_id)
            if stored is not None:
                self._plans.move_to_end(plan_id)
            return stored

    def recent(self, limit: int = 20) -> list[StoredPlan]:
        """The most recently used plans, newest first (does not change their order)."""
        with self._lock:
            return list(reversed(self._plans.values()))[:limit]

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)
