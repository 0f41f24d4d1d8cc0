"""Numbers, durations and periods as people write them: ``2k``, ``5,000``, ``1.5M``, ``ten thousand``,
``half a second``, ``200ms``, ``per day``.

Why regular expressions that other rules embed: every intent rule needs "a number here", and the rule around it decides
what the number means (users, requests, dollars, milliseconds), so this module only says *which* number a piece of text
is. ``NUMBER`` matches digits with an optional scale (``k``, ``m``, ``bn``, ``thousand``, ``million``) or English number
words; ``number_value`` turns the matched text into a float. A month is 730 hours, as everywhere in Servewise.
"""

from __future__ import annotations

import re

__all__ = [
    "DURATION",
    "NUMBER",
    "PERIOD",
    "duration_ms",
    "number_value",
    "period_seconds",
]

_UNIT_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALE_WORDS = {"hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_SUFFIXES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}

_WORD = "|".join(sorted([*_UNIT_WORDS, *_SCALE_WORDS, "dozen", "half"], key=len, reverse=True))
_DIGITS = r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?(?:k|mm|m|bn|thousand|million|billion)\b)?"
_WORDS = (
    rf"(?<![\w])(?:(?:a|an)\s+(?:hundred|thousand|million|dozen|couple\s+of)|(?:{_WORD}))"
    rf"(?:[\s-]+(?:and[\s-]+)?(?:a[\s-]+)?(?:{_WORD}))*(?![\w])"
)
NUMBER = rf"(?:{_DIGITS}|{_WORDS})"
"""A number in lowercase text: ``5,000``, ``2k``, ``1.5m``, ``2.5 million``, ``ten thousand``, ``half a million``."""

_DURATION_UNITS = {
    "ms": 1.0,
    "msec": 1.0,
    "millis": 1.0,
    "millisecond": 1.0,
    "milliseconds": 1.0,
    "s": 1000.0,
    "sec": 1000.0,
    "secs": 1000.0,
    "second": 1000.0,
    "seconds": 1000.0,
    "min": 60000.0,
    "mins": 60000.0,
    "minute": 60000.0,
    "minutes": 60000.0,
}
_DURATION_PHRASES = {
    "half a second": 500.0,
    "half-second": 500.0,
    "half second": 500.0,
    "a second and a half": 1500.0,
    "a quarter of a second": 250.0,
    "quarter of a second": 250.0,
    "a quarter second": 250.0,
    "subsecond": 1000.0,
    "sub-second": 1000.0,
    "a second": 1000.0,
    "a minute": 60000.0,
    "half a minute": 30000.0,
}
_UNIT_ALTERNATION = "|".join(sorted(_DURATION_UNITS, key=len, reverse=True))
_PHRASE_ALTERNATION = "|".join(re.escape(p) for p in sorted(_DURATION_PHRASES, key=len, reverse=True))
DURATION = rf"(?:(?<![\w])(?:{_PHRASE_ALTERNATION})(?![\w])|{NUMBER}\s*(?:{_UNIT_ALTERNATION})(?![\w]))"
"""A duration: ``300 ms``, ``1.5s``, ``2 seconds``, ``half a second``, ``sub-second``, ``two seconds``."""

_PERIOD_SECONDS = {
    "second": 1.0,
    "sec": 1.0,
    "s": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "hour": 3600.0,
    "hr": 3600.0,
    "h": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
    "week": 7 * 86400.0,
    "wk": 7 * 86400.0,
    "month": 730 * 3600.0,
    "mo": 730 * 3600.0,
    "year": 8760 * 3600.0,
    "yr": 8760 * 3600.0,
}
_ADVERBS = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
    "annually": "year",
}
PERIOD = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|mo|years?|yrs?|annum|s|h|d)(?![\w])"
"""A period after ``per``/``a``/``/``: ``second``, ``min``, ``hour``, ``day``, ``week``, ``month``, ``year``."""


def number_value(text: str) -> float:
    """The value of text that ``NUMBER`` matched: ``"5,000"`` → 5000, ``"1.5m"`` → 1.5e6, ``"ten thousand"``
    → 1e4, ``"half a million"`` → 5e5. Raises ``ValueError`` for anything else."""
    cleaned = text.strip().lower()
    digits = re.fullmatch(r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s?([a-z]*)", cleaned)
    if digits is not None:
        base = float(digits.group(1).replace(",", ""))
        suffix = digits.group(2)
        if suffix and suffix not in _SUFFIXES:
            raise ValueError(f"not a number: {text!r}")
        return base * _SUFFIXES.get(suffix, 1.0)
    total, current, seen = 0.0, 0.0, False
    for word in re.split(r"[\s-]+", cleaned):
        if word in ("and", "of", "couple") or not word:
            if word == "couple":
                current, seen = 2.0, True
            continue
        if word in ("a", "an"):
            if current == 0:
                current = 1.0
            continue
        seen = True
        if word in _UNIT_WORDS:
            current += _UNIT_WORDS[word]
        elif word == "half":
            current = current + 0.5 if current or total else 0.5
        elif word == "dozen":
            current = (current or 1.0) * 12
        elif word == "hundred":
            current = (current or 1.0) * 100
        elif word in _SCALE_WORDS:
            total += (current or 1.0) * _SCALE_WORDS[word]
            current = 0.0
        else:
            raise ValueError(f"not a number: {text!r}")
    if not seen:
        raise ValueError(f"not a number: {text!r}")
    return total + current


def duration_ms(text: str) -> float:
    """Milliseconds in text that ``DURATION`` matched: ``"300 ms"`` → 300, ``"half a second"`` → 500."""
    cleaned = re.sub(r"\s+", " ", text.strip().lower())
    if cleaned in _DURATION_PHRASES:
        return _DURATION_PHRASES[cleaned]
    found = re.fullmatch(rf"(.+?)\s*({_UNIT_ALTERNATION})", cleaned)
    if found is None:
        raise ValueError(f"not a duration: {text!r}")
    return number_value(found.group(1)) * _DURATION_UNITS[found.group(2)]


def period_seconds(text: str) -> float:
    """Seconds in one period word: ``"day"``/``"days"``/``"daily"`` → 86400; a month is 730 hours."""
    word = text.strip().lower()
    word = _ADVERBS.get(word, word)
    if word == "annum":
        word = "year"
    if word not in _PERIOD_SECONDS and word.endswith("s"):
        word = word[:-1]
    if word not in _PERIOD_SECONDS:
        raise ValueError(f"not a period: {text!r}")
    return _PERIOD_SECONDS[word]
