"""Budget windows: calendar boundaries in the configured zone, DST-correct."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from servewise.errors import UsageError
from servewise.gateway._windows import window_bounds, window_key

BERLIN = "Europe/Berlin"


def test_berlin_month_boundary_is_local_midnight_on_the_first():
    # 2026-11-30 23:30 UTC is already 1 December 00:30 in Berlin (CET, UTC+1)
    start, end = window_bounds("monthly", datetime(2026, 11, 30, 23, 30, tzinfo=UTC), BERLIN)
    assert start == datetime(2026, 12, 1, tzinfo=ZoneInfo(BERLIN))
    assert start.astimezone(UTC) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    # one minute earlier (22:59 UTC = 23:59 Berlin on 30 Nov) is still November
    start_nov, end_nov = window_bounds("monthly", datetime(2026, 11, 30, 22, 59, tzinfo=UTC), BERLIN)
    assert start_nov.astimezone(UTC) == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert end_nov == start


def test_month_spanning_dst_end_starts_at_cest_and_ends_at_cet():
    start, end = window_bounds("monthly", datetime(2026, 10, 15, 12, tzinfo=UTC), BERLIN)
    assert start.astimezone(UTC) == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # 1 Oct 00:00 CEST (UTC+2)
    assert end.astimezone(UTC) == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 1 Nov 00:00 CET (UTC+1)
    # same-zone subtraction is wall-clock in Python; the real span is 31 days + 1 hour
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=31, hours=1)


def test_week_with_spring_forward_is_167_hours_and_starts_monday():
    # DST starts in Berlin on Sunday 2026-03-29 (02:00 → 03:00)
    start, end = window_bounds("weekly", datetime(2026, 3, 28, 12, tzinfo=UTC), BERLIN)
    assert start == datetime(2026, 3, 23, tzinfo=ZoneInfo(BERLIN)) and start.weekday() == 0
    assert end == datetime(2026, 3, 30, tzinfo=ZoneInfo(BERLIN))
    assert (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(hours=167)
    # the DST day itself is 23 hours
    day_start, day_end = window_bounds("daily", datetime(2026, 3, 29, 12, tzinfo=UTC), BERLIN)
    assert day_end.astimezone(UTC) - day_start.astimezone(UTC) == timedelta(hours=23)


def test_week_with_fall_back_is_169_hours():
    start, end = window_bounds("weekly", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), BERLIN)
    assert start == datetime(2026, 10, 19, tzinfo=ZoneInfo(BERLIN))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=169)


def test_nonexistent_local_midnight_starts_at_the_first_real_instant():
    # Havana springs forward at 00:00 → 01:00 (2026-03-08), so midnight does not exist that day
    start, _ = window_bounds("daily", datetime(2026, 3, 8, 12, tzinfo=UTC), "America/Havana")
    assert start.astimezone(UTC) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert (start.hour, start.minute) == (1, 0)


def test_window_key_is_the_utc_instant_whatever_the_zone():
    start, _ = window_bounds("daily", datetime(2026, 6, 1, 12, tzinfo=UTC), BERLIN)
    assert window_key(start) == "2026-05-31T22:00:00+00:00"


def test_bad_inputs_are_one_line_usage_errors():
    with pytest.raises(UsageError, match="did you mean 'Europe/Berlin'"):
        window_bounds("daily", datetime(2026, 1, 1, tzinfo=UTC), "Europe/Berln")
    with pytest.raises(UsageError, match="timezone-aware"):
        window_bounds("daily", datetime(2026, 1, 1), "UTC")
    with pytest.raises(UsageError, match="daily, weekly, monthly"):
        window_bounds("yearly", datetime(2026, 1, 1, tzinfo=UTC), "UTC")  # type: ignore[arg-type]
