"""Budgets and the store that enforces them: definitions, reservations, refusals, threshold crossings.

A request is admitted by **reserving** its worst-case cost against every budget that applies to it (org, team,
key, end user) in one atomic step: either every level has room (``spent + reserved + amount ≤ hard``) and every
level's ``reserved`` grows by ``amount``, or nothing changes and the first level without room is named in a
``Refusal``. On completion the reservation is **settled**: ``reserved -= amount`` and ``spent += actual`` on every
level, again atomically; on error it is **released** (``reserved -= amount``). Because the check and the increment
are one step per request, concurrent requests can never together pass a hard limit, whatever their number.

Money is integer micro-dollars (``usd × 1e6``): reservations round up (``usd_to_micro_ceil``) so a worst case is
never under-reserved, settlements round to nearest.

Two stores implement ``BudgetStore``: ``SqlBudgetStore`` (the catalog database; one process or several on one
PostgreSQL) and ``RedisBudgetStore`` (counters in Redis, Lua scripts; several gateway processes share budgets).
Budget *definitions* always live in SQL (``gw_budgets``).

Alert thresholds: percentages of the hard limit (of the soft limit when a budget has no hard limit). Settling
reports every threshold that this settlement's ``spent`` passed (``before < T ≤ after``) as a ``Crossing``; the
soft limit itself is reported as ``kind='soft'``. Each counter change is atomic, so exactly one settlement sees
a given crossing; ``BudgetAlerter`` still deduplicates through ``gw_alerts_fired`` (restarts, reconciliation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Connection

from servewise.errors import UsageError

from ._windows import Window, window_bounds

__all__ = [
    "ACTIONS",
    "DEFAULT_LEVELS_PCT",
    "MICRO",
    "SCOPES",
    "SOFT_LIMIT_PCT",
    "BudgetRef",
    "BudgetStore",
    "BudgetUsage",
    "Crossing",
    "LedgerWrite",
    "OpenReservation",
    "Refusal",
    "Reservation",
    "Scope",
    "check_request",
    "crossings_between",
    "micro_to_usd",
    "usd_to_micro_ceil",
    "usd_to_micro_round",
]

Scope = Literal["org", "team", "key", "end_user"]
SCOPES: tuple[Scope, ...] = ("org", "team", "key", "end_user")
"""Levels from the widest to the narrowest. An ``end_user`` budget's ``scope_id`` is ``"<org_id>/<end_user>"``
(end-user tags are free text chosen by the client's application, unique only inside one organisation)."""
ACTIONS = ("reject", "downgrade")
DEFAULT_LEVELS_PCT: tuple[int, ...] = (80, 95, 100)
SOFT_LIMIT_PCT = 0
"""``threshold_pct`` recorded in ``gw_alerts_fired`` for the soft limit (real thresholds are > 0)."""
MICRO = 1_000_000

LedgerWrite = Callable[[Connection], None]
"""Writes ledger rows inside the transaction that settles their reservations (see ``settle_many``)."""


MAX_REQUEST_ID_CHARS = 64
"""``gw_reservations.request_id`` / ``gw_spend.request_id`` are ``String(64)``."""


def check_request(request_id: str, amount_micro_usd: int) -> None:
    """The arguments of ``reserve`` that a store must refuse before touching a counter."""
    if not request_id or len(request_id) > MAX_REQUEST_ID_CHARS:
        raise UsageError(f"request id must be 1..{MAX_REQUEST_ID_CHARS} characters (got {len(request_id)})")
    if amount_micro_usd < 0:
        raise UsageError(f"reservation amount must be ≥ 0 micro-dollars (got {amount_micro_usd})")


def usd_to_micro_ceil(usd: float) -> int:
    """Dollars to micro-dollars, rounded up (reservations: never reserve less than the worst case)."""
    if not (math.isfinite(usd) and usd >= 0):
        raise UsageError(f"amount must be a finite number of dollars ≥ 0 (got {usd!r})")
    return math.ceil(round(usd * MICRO, 6))


def usd_to_micro_round(usd: float) -> int:
    """Dollars to micro-dollars, rounded to nearest (settlements and limits)."""
    if not (math.isfinite(usd) and usd >= 0):
        raise UsageError(f"amount must be a finite number of dollars ≥ 0 (got {usd!r})")
    return round(usd * MICRO)


def micro_to_usd(micro_usd: int) -> float:
    return micro_usd / MICRO


def _fmt_usd(micro_usd: int) -> str:
    """Cents for amounts of a dollar or more; below that enough digits to tell $0.0004 from $0 (one request's
    worst case is often a fraction of a cent)."""
    usd = micro_usd / MICRO
    if usd == 0 or abs(usd) >= 1:
        return f"${usd:,.2f}"
    whole, _, digits = f"{usd:.6f}".partition(".")
    return f"${whole}.{digits.rstrip('0').ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class BudgetRef:
    """One budget that applies to a request (a row of ``gw_budgets``)."""

    budget_id: int
    scope: str
    scope_id: str
    window: Window
    timezone: str
    soft_micro_usd: int | None
    hard_micro_usd: int | None
    action: str
    downgrade_route: str | None

    @property
    def label(self) -> str:
        """``team 'search' monthly budget`` — how messages name it."""
        return f"{self.scope.replace('_', '-')} {self.scope_id!r} {self.window} budget"

    @property
    def base_micro_usd(self) -> int | None:
        """The amount alert percentages refer to: the hard limit, else the soft limit."""
        return self.hard_micro_usd if self.hard_micro_usd is not None else self.soft_micro_usd

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return window_bounds(self.window, now, self.timezone)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first level (widest first) whose hard limit it would pass."""

    budget: BudgetRef
    spent_micro_usd: int
    reserved_micro_usd: int
    requested_micro_usd: int
    resets_at: datetime

    def message(self) -> str:
        hard = self.budget.hard_micro_usd or 0
        when = self.resets_at.strftime("%Y-%m-%d %H:%M")
        return (
            f"{self.budget.label} {_fmt_usd(hard)} would be exceeded ({_fmt_usd(self.spent_micro_usd)} spent, "
            f"{_fmt_usd(self.reserved_micro_usd)} reserved, this request needs up to "
            f"{_fmt_usd(self.requested_micro_usd)}); it resets {when} {self.budget.timezone}"
        )

    def retry_after_s(self, now: datetime) -> int:
        """Whole seconds until the reset (≥ 1), for a ``Retry-After`` header."""
        return max(1, math.ceil((self.resets_at.astimezone(UTC) - now.astimezone(UTC)).total_seconds()))


@dataclass(frozen=True, slots=True)
class Reservation:
    """An admitted request's hold on every level: (budget, window start) per level, one amount for all."""

    request_id: str
    parts: tuple[tuple[BudgetRef, datetime], ...]
    amount_micro_usd: int


@dataclass(frozen=True, slots=True)
class OpenReservation:
    """A reservation as the store keeps it (ids only): what reconciliation inspects."""

    request_id: str
    parts: tuple[tuple[int, datetime], ...]
    """(budget_id, window start as a UTC instant) per level."""
    amount_micro_usd: int
    created_at: datetime
    meta: Mapping[str, Any] | None = None
    """What ``reserve`` was told about the request (``org_id``, ``team_id``, ``key_id``, ``end_user``, ``route``,
    ``model``, ``decision``, ``at``): enough to write an orphan into the ledger; ``None`` when not given."""


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    budget: BudgetRef
    window_start: datetime
    resets_at: datetime
    spent_micro_usd: int
    reserved_micro_usd: int

    @property
    def utilisation(self) -> float | None:
        """(spent + reserved) / base limit; None for a budget with no limit."""
        base = self.budget.base_micro_usd
        return None if not base else (self.spent_micro_usd + self.reserved_micro_usd) / base

    @property
    def left_fraction(self) -> float | None:
        """Share of the hard limit still free (0 when used up); None without a hard limit."""
        hard = self.budget.hard_micro_usd
        if not hard:
            return None
        return max(0.0, 1.0 - (self.spent_micro_usd + self.reserved_micro_usd) / hard)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A settlement took a budget window's spend past a threshold (or the soft limit)."""

    budget: BudgetRef
    window_start: datetime
    kind: Literal["threshold", "soft"]
    threshold_pct: int
    """Percent of ``budget.base_micro_usd``; ``SOFT_LIMIT_PCT`` (0) for the soft limit."""
    limit_micro_usd: int
    """The dollar threshold that was crossed."""
    spent_micro_usd: int
    """The window's spend right after the settlement."""


def crossings_between(
    budget: BudgetRef,
    window_start: datetime,
    before_micro_usd: int,
    after_micro_usd: int,
    levels_pct: Sequence[int] = DEFAULT_LEVELS_PCT,
) -> list[Crossing]:
    """Thresholds T with ``before < T ≤ after``: percent levels of the base limit, then the soft limit."""
    found: list[Crossing] = []
    base = budget.base_micro_usd
    if base:
        for pct in sorted(levels_pct):
            threshold = math.ceil(base * pct / 100)
            if before_micro_usd < threshold <= after_micro_usd:
                found.append(Crossing(budget, window_start, "threshold", pct, threshold, after_micro_usd))
    soft = budget.soft_micro_usd
    if soft is not None and budget.hard_micro_usd is not None and before_micro_usd < soft <= after_micro_usd:
        found.append(Crossing(budget, window_start, "soft", SOFT_LIMIT_PCT, soft, after_micro_usd))
    return found


class BudgetStore(Protocol):
    """Budget definitions and atomic counters. Every method is safe to call from many tasks at once."""

    levels_pct: tuple[int, ...]

    async def budgets_for(
        self, org_id: str, team_id: str | None, key_id: str, end_user: str | None = None
    ) -> list[BudgetRef]:
        """The budgets that apply to a request, widest level first (definitions cached ≤ 5 s)."""
        ...

    async def reserve(
        self,
        request_id: str,
        budgets: Sequence[BudgetRef],
        amount_micro_usd: int,
        now: datetime,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> Reservation | Refusal:
        """All-or-nothing across levels; a refusal changes nothing. ``meta`` (JSON-able) is kept with the open
        reservation so that reconciliation can bill an orphan to the right tenant (``OpenReservation.meta``)."""
        ...

    async def settle(self, reservation: Reservation, actual_micro_usd: int) -> list[Crossing]:
        """``reserved -= amount; spent += actual`` on every level; a second settle of the same id is a no-op."""
        ...

    async def settle_many(
        self, items: Sequence[tuple[Reservation, int]], *, write: LedgerWrite | None = None
    ) -> list[Crossing]:
        """Settle a batch; ``write(connection)`` runs in the SQL transaction that commits first (ledger rows)."""
        ...

    async def release(self, reservation: Reservation) -> None: ...

    async def usage(self, budgets: Sequence[BudgetRef], now: datetime) -> list[BudgetUsage]: ...

    async def set_budget(
        self,
        *,
        scope: str,
        scope_id: str,
        window: str,
        soft_micro_usd: int | None,
        hard_micro_usd: int | None,
        action: str = "reject",
        downgrade_route: str | None = None,
        timezone: str = "UTC",
    ) -> BudgetRef: ...

    async def delete_budget(self, budget_id: int) -> None: ...

    async def list_budgets(self) -> list[BudgetRef]: ...

    async def open_reservations(self) -> list[OpenReservation]: ...

    async def settle_open(self, request_id: str, actual_micro_usd: int | None) -> bool:
        """Reconciliation: settle (``actual``) or release (``None``) a reservation known by id only."""
        ...

    async def counters(
        self, keys: Sequence[tuple[int, datetime]]
    ) -> dict[tuple[int, datetime], tuple[int, int]]:
        """(spent, reserved) per (budget id, window start); missing counters read as (0, 0)."""
        ...

    async def set_counters(
        self,
        values: dict[tuple[int, datetime], tuple[int, int]],
        expected: dict[tuple[int, datetime], tuple[int, int]] | None = None,
    ) -> list[tuple[int, datetime]]:
        """Reconciliation: overwrite (spent, reserved) of the given windows — with ``expected``, only the windows
        whose counters still equal their expected value (compare-and-set, one atomic step): a live peer that
        reserved or settled meanwhile wins. Returns the windows written."""
        ...

    async def close(self) -> None: ...
