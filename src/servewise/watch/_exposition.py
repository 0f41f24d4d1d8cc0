"""Prometheus text exposition → typed series, and the window arithmetic on them: counter and histogram increases
(robust to a replica restart), ``histogram_quantile`` exactly as Prometheus computes it, and the share of
observations above a threshold (SLO burn). Pure functions; the I/O lives in ``_scrape.py``.

Series are keyed by ``(sample name, sorted labels)``: ``("vllm:prompt_tokens_total", (("engine", "0"),
("model_name", "m"),))``. A histogram is its ``_bucket`` samples; its ``le`` label is parsed to a float (``+Inf`` →
``math.inf``) and :data:`Buckets` maps that upper bound to the cumulative count.

**Counter increase** between two readings of one replica (``counter_increase``), per series::

    increase = after − before          when the series did not restart
             = after                   when it restarted: ``after < before`` or its ``_created`` timestamp changed

which is Prometheus's ``increase()`` reset rule without its extrapolation to the range's edges (our readings are
the window's edges). A series missing from ``before`` counts from 0 only when its ``_created`` is not older than
``before``'s wall time (it was born in the interval); otherwise its first value is a baseline (increase 0), as in
Prometheus. Histograms restart as a whole: when the ``_count``, any bucket or ``_created`` of one histogram series
shows a restart, all its buckets count from 0.

**histogram_quantile(q, buckets)** — Prometheus ``promql/quantile.go`` ``bucketQuantile``: sort by upper bound,
require a ``+Inf`` bucket, merge duplicate bounds, force the counts monotonic, then with ``n`` = the ``+Inf`` count and
``rank = q·n``, find the first bucket ``b`` whose cumulative count ≥ rank::

    b is the +Inf bucket          → the upper bound of the last finite bucket
    b == 0 and its bound ≤ 0      → that bound
    otherwise                     → start_b + (end_b − start_b) · (rank − cum_{b−1}) / (cum_b − cum_{b−1})

with ``start_0 = 0``: linear interpolation inside the bucket (observations assumed uniform in it).

**fraction_above(t, buckets)** — the same linear assumption read the other way: the cumulative count at ``t`` is
interpolated inside the bucket holding ``t``; observations above the largest finite bound are all counted above ``t``
when ``t`` is at or beyond that bound (conservative: the ``+Inf`` bucket has no width to interpolate in). So
``fraction_above(histogram_quantile(q, b), b) ≈ 1 − q`` whenever the quantile falls inside a finite bucket.

**Resolution.** Inside a bucket the interpolation is an assumption, not a measurement: with vLLM's TTFT buckets
(…, 0.1, 0.25, …), requests that all took 110–140 ms read as a p95 of ~0.24 s. ``quantile_bucket`` gives the bucket
the quantile certainly lies in; SLO compliance warns when a target falls inside it (``_compliance.py``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "Buckets",
    "Exposition",
    "Labels",
    "SeriesKey",
    "add_buckets",
    "bucket_count",
    "counter_increase",
    "fraction_above",
    "gauge_values",
    "histogram_increase",
    "histogram_quantile",
    "label_values",
    "merge_all",
    "parse_exposition",
    "quantile_bucket",
]

Labels: TypeAlias = tuple[tuple[str, str], ...]
"""Label pairs sorted by name (hashable, order-free)."""
SeriesKey: TypeAlias = tuple[str, Labels]
Exposition: TypeAlias = Mapping[SeriesKey, float]
"""One ``/metrics`` body: every sample's value by series."""
Buckets: TypeAlias = dict[float, float]
"""Upper bound (``le``, seconds or tokens; ``math.inf`` for ``+Inf``) → cumulative count."""


def parse_exposition(text: str) -> dict[SeriesKey, float]:
    """Every sample of a Prometheus text exposition (format 0.0.4) by series; NaN samples are left out.

    Raises ``ValueError`` when ``text`` is not Prometheus text (an HTML page, a JSON error body)."""
    series: dict[SeriesKey, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                value = float(sample.value)
                if math.isnan(value):
                    continue
                series[(sample.name, tuple(sorted(sample.labels.items())))] = value
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"not Prometheus text exposition ({type(err).__name__}: {err})") from None
    return series


def _select(exposition: Exposition, name: str) -> dict[Labels, float]:
    return {labels: v for (n, labels), v in exposition.items() if n == name}


def gauge_values(exposition: Exposition, name: str) -> list[float]:
    """The value of every series named ``name`` (one per engine / model on a replica), in label order."""
    return [v for _, v in sorted(_select(exposition, name).items())]


def label_values(exposition: Exposition, name: str, label: str) -> set[str]:
    """The values ``label`` takes on the series named ``name`` (e.g. the ``model_name`` of ``vllm:…`` series)."""
    return {dict(labels)[label] for (n, labels) in exposition if n == name and label in dict(labels)}


def _created_name(sample_name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)] + "_created"
    return sample_name + "_created"


def _restarted(before: Exposition, after: Exposition, created: str, labels: Labels) -> bool:
    old, new = before.get((created, labels)), after.get((created, labels))
    return old is not None and new is not None and old != new


def _born_within(after: Exposition, created: str, labels: Labels, before_time_s: float | None) -> bool:
    born = after.get((created, labels))
    return born is not None and before_time_s is not None and born >= before_time_s


def counter_increase(
    before: Exposition,
    after: Exposition,
    name: str,
    *,
    by: Sequence[str] = (),
    before_time_s: float | None = None,
) -> dict[tuple[str, ...], float]:
    """Increase of the counter samples named ``name`` (``…_total``) from ``before`` to ``after`` of one replica,
    summed over series and grouped by the values of the labels ``by`` (key ``()`` without ``by``; a missing label
    reads ``""``). ``before_time_s`` (Unix seconds of ``before``) lets a series born after it count from 0 (module
    docstring)."""
    created = _created_name(name)
    old_series = _select(before, name)
    out: dict[tuple[str, ...], float] = {}
    for labels, value in _select(after, name).items():
        old = old_series.get(labels)
        if old is None:
            inc = value if _born_within(after, created, labels, before_time_s) else 0.0
        elif value < old or _restarted(before, after, created, labels):
            inc = value
        else:
            inc = value - old
        present = dict(labels)
        key = tuple(present.get(label, "") for label in by)
        out[key] = out.get(key, 0.0) + inc
    return out


def _le(labels: Labels) -> tuple[Labels, float] | None:
    """The series' labels without ``le`` and the parsed bound; ``None`` for an unparsable ``le``."""
    rest = tuple((k, v) for k, v in labels if k != "le")
    text = dict(labels).get("le")
    if text is None:
        return None
    try:
        return rest, float(text)
    except ValueError:
        return None


def _histograms(exposition: Exposition, name: str) -> dict[Labels, Buckets]:
    out: dict[Labels, Buckets] = {}
    for labels, value in _select(exposition, f"{name}_bucket").items():
        parsed = _le(labels)
        if parsed is not None:
            out.setdefault(parsed[0], {})[parsed[1]] = value
    return out


def histogram_increase(
    before: Exposition, after: Exposition, name: str, *, before_time_s: float | None = None
) -> Buckets:
    """Bucket increases of the histogram ``name`` (base name, no ``_bucket``) from ``before`` to ``after`` of one
    replica, summed over its series (engines, models): cumulative counts by upper bound."""
    created = f"{name}_created"
    old_all = _histograms(before, name)
    total: Buckets = {}
    for labels, new in _histograms(after, name).items():
        old = old_all.get(labels)
        if old is None:
            fresh = _born_within(after, created, labels, before_time_s)
            increase = {le: (count if fresh else 0.0) for le, count in new.items()}
        else:
            old_count, new_count = before.get((f"{name}_count", labels)), after.get((f"{name}_count", labels))
            restarted = (
                _restarted(before, after, created, labels)
                or (old_count is not None and new_count is not None and new_count < old_count)
                or any(count < old.get(le, 0.0) for le, count in new.items())
            )
            increase = {le: count if restarted else count - old.get(le, 0.0) for le, count in new.items()}
        add_buckets(total, increase)
    return total


def add_buckets(into: Buckets, other: Mapping[float, float]) -> Buckets:
    """Add ``other``'s cumulative counts into ``into`` bound by bound (histograms of the same buckets); returns
    ``into``."""
    for le, count in other.items():
        into[le] = into.get(le, 0.0) + count
    return into


def bucket_count(buckets: Mapping[float, float]) -> float:
    """Observations in the histogram: the ``+Inf`` bucket's count (0 without one)."""
    return float(buckets.get(math.inf, 0.0))


def _prepared(buckets: Mapping[float, float]) -> list[tuple[float, float]] | None:
    """Sorted ``(bound, cumulative)`` with duplicates merged and counts made monotonic, or ``None`` when
    Prometheus would answer NaN (no ``+Inf`` bucket, fewer than two buckets, no observation)."""
    ordered = sorted(buckets.items())
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return None
    merged: list[tuple[float, float]] = []
    for le, count in ordered:
        if merged and merged[-1][0] == le:
            merged[-1] = (le, merged[-1][1] + count)
        else:
            merged.append((le, count))
    monotonic: list[tuple[float, float]] = []
    highest = -math.inf
    for le, count in merged:
        highest = max(highest, count)
        monotonic.append((le, highest))
    if len(monotonic) < 2 or monotonic[-1][1] <= 0:
        return None
    return monotonic


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) of a cumulative histogram, as Prometheus's ``histogram_quantile`` computes it
    (module docstring); ``None`` where Prometheus answers NaN (no observation, no ``+Inf`` bucket). ``q`` below 0
    gives −∞ and above 1 +∞, as in Prometheus."""
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    prepared = _prepared(buckets)
    if prepared is None:
        return None
    counts = [count for _, count in prepared]
    rank = q * counts[-1]
    b = bisect.bisect_left(counts, rank, 0, len(counts) - 1)
    if b == len(prepared) - 1:
        return prepared[-2][0]
    if b == 0 and prepared[0][0] <= 0:
        return prepared[0][0]
    end, count = prepared[b]
    start = 0.0
    if b > 0:
        start, below = prepared[b - 1]
        count -= below
        rank -= below
    return start + (end - start) * (rank / count)


def quantile_bucket(q: float, buckets: Mapping[float, float]) -> tuple[float, float] | None:
    """The bucket ``(lower, upper]`` the ``q``-quantile lies in: all a histogram knows for certain about it
    (``histogram_quantile`` interpolates inside it). ``None`` where the quantile is not defined."""
    prepared = _prepared(buckets)
    if prepared is None or not 0 <= q <= 1:
        return None
    counts = [count for _, count in prepared]
    b = bisect.bisect_left(counts, q * counts[-1], 0, len(counts) - 1)
    lower = prepared[b - 1][0] if b > 0 else min(0.0, prepared[0][0])
    return lower, prepared[b][0]


def fraction_above(threshold: float, buckets: Mapping[float, float]) -> float | None:
    """Share of the histogram's observations above ``threshold`` (0–1), interpolated linearly inside the bucket
    holding it (module docstring); ``None`` without observations."""
    prepared = _prepared(buckets)
    if prepared is None:
        return None
    total = prepared[-1][1]
    bounds = [le for le, _ in prepared]
    b = bisect.bisect_left(bounds, threshold)
    if b >= len(prepared) - 1:  # at or beyond the largest finite bound: the +Inf bucket counts as above
        below = prepared[-2][1]
    else:
        end, cumulative = prepared[b]
        start, before = prepared[b - 1] if b > 0 else (min(0.0, end), 0.0)
        if end in (threshold, start):
            below = cumulative
        else:
            below = before + (cumulative - before) * max(0.0, threshold - start) / (end - start)
    return min(1.0, max(0.0, (total - below) / total))


def merge_all(histograms: Iterable[Mapping[float, float]]) -> Buckets:
    """The sum of several histograms (replicas, intervals)."""
    total: Buckets = {}
    for histogram in histograms:
        add_buckets(total, histogram)
    return total
