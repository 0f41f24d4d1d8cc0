"""Budget windows: the calendar day, week or month that a spend counter covers, in a configured time zone.

Why calendar boundaries in the zone's wall clock and not fixed 24 h/7 d/30 d spans: a budget set "per month,
Europe/Berlin" is expected to reset at local midnight on the 1st, whatever the UTC offset is that night. The
bounds are computed on the wall clock (midnight of the day, Monday of the week, the 1st of the month) and then
turned into instants with ``zoneinfo``, so a week that contains a DST change is 167 or 169 hours long and a day
is 23 or 25 hours long — exactly what the wall clock says.

Local midnight that does not exist (a zone that springs forward at 00:00) resolves, with ``fold=0``, to the first
instant after the gap; a midnight that occurs twice resolves to its first occurrence. Either way the window
starts at the first instant of the local day.

Counters are keyed by the window's start as a UTC instant (``window_key``), so every process and every time zone
name for the same zone agree on the key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servewise.errors import UsageError, did_you_mean

__all__ = ["WINDOWS", "Window", "check_timezone", "window_bounds", "window_key"]

Window = Literal["daily", "weekly", "monthly"]
WINDOWS: tuple[Window, ...] = get_args(Window)


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        from zoneinfo import available_timezones

        hint = did_you_mean(tz, available_timezones())
        suggestion = f"; did you mean {', '.join(repr(s) for s in hint)}?" if hint else ""
        raise UsageError(
            f"unknown time zone {tz!r}{suggestion} Use an IANA name such as 'UTC' or 'Europe/Berlin'."
        ) from None


def check_timezone(tz: str) -> str:
    """``tz`` when it is a known IANA zone; ``UsageError`` with suggestions otherwise."""
    _zone(tz)
    return tz


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    return datetime(year, month, day, tzinfo=zone)


def window_bounds(window: Window, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The window containing ``now``: (start inclusive, end exclusive = the next reset), aware, in zone ``tz``.

    daily: local midnight to the next local midnight; weekly: Monday 00:00 to the next Monday 00:00 (ISO week);
    monthly: the 1st 00:00 to the next month's 1st 00:00.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("window_bounds: `now` must be timezone-aware (e.g. datetime.now(UTC))")
    if window not in WINDOWS:
        raise UsageError(f"unknown budget window {window!r}; use one of {', '.join(WINDOWS)}")
    zone = _zone(tz)
    local = now.astimezone(zone)
    day = local.date()
    if window == "daily":
        first = day
        after = day + timedelta(days=1)
    elif window == "weekly":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    start = _local_midnight(first.year, first.month, first.day, zone)
    end = _local_midnight(after.year, after.month, after.day, zone)
    # A nonexistent local midnight (fold=0) maps to an instant inside the gap's hour; normalise to the real clock.
    return start.astimezone(UTC).astimezone(zone), end.astimezone(UTC).astimezone(zone)


def window_key(start: datetime) -> str:
    """The counter key of a window: its start as a UTC ISO instant, e.g. ``2026-11-30T23:00:00+00:00``."""
    return start.astimezone(UTC).isoformat()
