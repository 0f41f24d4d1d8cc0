"""Intent rules for targets: latency ("p95 under 300 ms", "first token within 200ms", "answers in 2 seconds",
"40 tokens per second") and money ("$8k/month", "under 10 grand a month", "$100k a year").

Why latency reads the words around a duration: "300 ms" alone says nothing, but "first token" before it, "per token"
after it or "p99" anywhere near it say which target it is. A duration with no latency word nearby ("every 30 seconds")
is left alone and reported as ignored.
"""

from __future__ import annotations

import re

from ._intent_numbers import DURATION, NUMBER, PERIOD, duration_ms, number_value, period_seconds
from ._intent_scan import Scan

__all__ = ["MAX_STREAM_TOKENS_PER_S", "read_budget", "read_latency"]

MAX_STREAM_TOKENS_PER_S = 250.0
"""Above this, "N tokens per second" is read as total throughput, not one user's streaming speed, and ignored."""

_METRIC_CUES = {
    "ttft": r"first[\s-]tokens?|\bttft\b|time[\s-]to[\s-]first|\bstart(?:s|ing)?\s+(?:streaming|answering|responding|"
    r"to (?:answer|respond|stream|appear|show))|\bbegin(?:s|ning)?\s+(?:streaming|answering|responding)"
    r"|first (?:word|byte|chunk)s?",
    "itl": r"\bper[\s-]token\b|between tokens|inter[\s-]token|\bitl\b|\btpot\b|token latency"
    r"|time per (?:output )?token",
    "e2e": r"end[\s-]to[\s-]end|\be2e\b|\b(?:full|complete|whole|entire|finished)\s+(?:answers?|responses?"
    r"|repl(?:y|ies)|translations?|summar(?:y|ies)|results?)|total (?:latency|time)|\bfinish(?:ed|es)?\b"
    r"|\bturnaround\b|\bback within\b",
}
_PERCENTILE = (
    r"\bp(?P<p>50|90|95|99)\b|\b(?P<q>50|90|95|99)(?:th|%)(?:[\s-]percentile)?|\bmedian\b|\bon average\b"
    r"|\baverage\b|\btypical(?:ly)?\b|\bmean\b"
)
_CONTEXT = (
    r"\blatenc(?:y|ies)\b|\banswer\w*|\brespon\w*|\brepl(?:y|ies)\b|\breturn\w*|\bresults?\b|\bslos?\b|\bslas?\b"
    r"|\bfast\b|\bquick\w*|\bwithin\b|\bunder\b|\bbelow\b|\bless than\b|\bat most\b|\bmax(?:imum)?\b"
    r"|\bno (?:more|longer|slower) than\b|\bfaster than\b|<|\bin about\b|\bin\b|\btakes?\b|\bwait\w*|\bready\b"
)
_BOUNDARY = r"[.;!?]|, | and | but | while "


def _window(scan: Scan, start: int, end: int) -> tuple[int, int]:
    """The clause around a match: back to the previous boundary (≤ 60 characters), on to the next (≤ 30)."""
    before_from = max(0, start - 60)
    cuts = [m.end() for m in re.finditer(_BOUNDARY, scan.low[before_from:start])]
    window_start = before_from + (cuts[-1] if cuts else 0)
    after = scan.low[end : end + 30]
    stop = re.search(_BOUNDARY, after)
    return window_start, end + (stop.start() if stop else len(after))


def _percentile(text: str) -> str | None:
    found = re.search(_PERCENTILE, text)
    if found is None:
        return None
    number = found.group("p") or found.group("q")
    if number is None:
        return "p50"  # median, average, typical
    return "p95" if number == "90" else f"p{number}"


def read_latency(scan: Scan) -> None:
    """Latency targets; a target that names no metric is kept in ``bare_latency`` for ``assemble`` to place."""
    f = scan.found
    speed = (
        rf"(?:(?:at least|min(?:imum)?|>=?)\s*)?(?P<n>{NUMBER})\s*(?:tokens?|toks?)\s*(?:/|per)\s*(?:s|sec|second)\b"
        r"(?:\s*per\s*(?:user|stream|request|session))?"
    )
    for m in scan.matches(speed):
        rate = number_value(m.group("n"))
        if rate <= 0 or rate > MAX_STREAM_TOKENS_PER_S:
            scan.ignore(m.start(), m.end(), "reads as total throughput, not one user's streaming speed")
            continue
        f.slo_ms["itl_p95_ms"] = 1000.0 / rate
        scan.take(m.start(), m.end(), f"itl_p95_ms {1000.0 / rate:.4g} (1000 / {rate:g} tokens per second)")
    for m in scan.matches(DURATION):
        start, end = _window(scan, m.start(), m.end())
        before, after = scan.low[start : m.start()], scan.low[m.end() : end]
        if re.search(r"(?:\bper|\bevery|\beach|/)\s*$", before):
            continue
        metric, used_after = None, False
        for name, cue in _METRIC_CUES.items():
            if re.search(cue, before):
                metric = name
                break
            if re.match(rf"\s*(?:to |of |for |in |until )?(?:the )?(?:{cue})", after):
                metric, used_after = name, True
                break
        percentile = _percentile(before) or _percentile(after)
        if metric is None and percentile is None and not re.search(_CONTEXT, before):
            continue
        cue_starts = [
            c.start()
            for c in re.finditer(rf"{_CONTEXT}|{_PERCENTILE}|{'|'.join(_METRIC_CUES.values())}", before)
        ]
        span_start = start + min(cue_starts) if cue_starts else m.start()
        span_end = end if used_after or _percentile(after) else m.end()
        if not scan.is_free(span_start, span_end):
            span_start, span_end = m.start(), m.end()
        value_ms = duration_ms(m.group(0))
        if value_ms <= 0:
            continue
        shown_percentile = percentile or "p95"
        if metric is None:
            phrase = scan.take(span_start, span_end, f"latency target {value_ms:g} ms {shown_percentile}")
            f.bare_latency.append((value_ms, percentile, phrase))
            continue
        field = f"{metric}_{shown_percentile}_ms"
        f.slo_ms[field] = value_ms
        scan.take(span_start, span_end, f"{field} {value_ms:g}")
        if percentile is None:
            scan.assumptions.append(
                f'read "{scan.phrase(span_start, span_end)}" as a p95 target (no percentile given)'
            )
        elif re.search(r"\bp90\b|\b90(?:th|%)", before + after):
            scan.assumptions.append("there is no p90 target; used the p90 value as the (stricter) p95 target")
    no_target = (
        r"\bbatch(?:\s+(?:jobs?|processing|mode|workloads?|inference))?\b|\boffline\b|\bovernight\b"
        r"|\basynchronous\w*|\bnot latency[\s-]sensitive\b"
        r"|\blatency (?:doesn't|does not|don't|is not|isn't) (?:matter|important|critical)\b"
        r"|\bno latency (?:requirements?|targets?|slos?|constraints?)\b|\blatency is irrelevant\b"
    )
    for m in scan.matches(no_target):
        f.no_latency_target = True
        scan.take(m.start(), m.end(), "no latency target (batch/offline)")


def read_budget(scan: Scan) -> None:
    """A budget in dollars per month (a year ÷ 12, a day × 730/24, an hour × 730); other currencies are read as
    dollars, with an assumption line, since Servewise has no exchange rates."""
    f = scan.found
    pre = r"(?P<cur>\$|usd\s?|us\$|€|eur\s?|£|gbp\s?)"
    post = r"\s?(?P<cur2>usd|dollars?|bucks|eur|euros?|€|£|gbp|pounds?|grand)\b"
    when = rf"(?:\s*(?:/|per|a|an|each|every)\s*(?P<p>{PERIOD})|\s+(?P<adv>monthly|yearly|annually|daily|hourly))?"
    patterns = (rf"{pre}\s*(?P<n>{NUMBER}){when}", rf"(?P<n>{NUMBER}){post}{when}")
    for pattern in patterns:
        for m in scan.matches(pattern):
            after = scan.low[m.end() : m.end() + 30]
            if re.match(
                r"\s*(?:per|/|a)\s*(?:1?\s?(?:m|k|million|thousand))?\s*(?:output |input )?tokens?", after
            ):
                scan.ignore(m.start(), m.end(), "prices per token are not a budget; give dollars per month")
                continue
            if f.budget_usd_month is not None:
                scan.ignore(m.start(), m.end(), "a second amount of money; kept the first as the budget")
                continue
            amount = number_value(m.group("n")) * (1000.0 if m.groupdict().get("cur2") == "grand" else 1.0)
            period = m.group("p") or (m.group("adv") or "").replace("annually", "yearly").removesuffix("ly")
            period = {"dai": "day", "year": "year", "month": "month", "hour": "hour"}.get(period, period)
            if period:
                per_month = amount * (730 * 3600.0) / period_seconds(period)
            else:
                per_month = amount
                monthly = re.search(
                    r"\bmonthly\b|\b(?:a|per) month\b|\bmonth\b",
                    scan.low[max(0, m.start() - 30) : m.end() + 30],
                )
                if monthly is None:
                    scan.assumptions.append(
                        f'read "{scan.phrase(m.start(), m.end())}" as a monthly budget (no period given)'
                    )
            currency = (m.groupdict().get("cur") or m.groupdict().get("cur2") or "").strip()
            if currency and currency not in ("$", "usd", "us$", "dollar", "dollars", "bucks", "grand"):
                scan.assumptions.append(f"read the {currency} amount as US dollars (no currency conversion)")
            f.budget_usd_month = round(per_month, 2)
            scan.take(m.start(), m.end(), f"budget ${per_month:,.0f}/month")
    for m in scan.matches(r"\b(?:monthly\s+)?budget\b(?:\s+(?:of|is|:))?"):
        if f.budget_usd_month is not None:
            scan.take(m.start(), m.end(), "budget")
