"""Intent rules for traffic: request rates, user counts, per-user rates, peaks, and request lengths.

Why each rule records only what was said: whether "5,000 employees" becomes 1.2 or 12 requests per second depends on
assumptions (requests per user, working hours) that ``_intent_rules.assemble`` fills in and prints, so the reader
sees every number that was not theirs.
"""

from __future__ import annotations

import re

from ._intent_numbers import NUMBER, PERIOD, number_value, period_seconds
from ._intent_scan import Scan, UserKind

__all__ = ["TOKENS_PER_PAGE", "TOKENS_PER_WORD", "read_lengths", "read_peaks", "read_rates", "read_users"]

TOKENS_PER_WORD = 1 / 0.75
"""Rule of thumb for English text: one token is about 0.75 words (OpenAI, "What are tokens and how to count them",
help.openai.com); an assumption, printed whenever words are converted."""
TOKENS_PER_PAGE = 500
"""A page of prose of about 375 words at ``TOKENS_PER_WORD`` (an assumption, printed when used)."""

_NOUNS = (
    r"(?:api calls?|requests?|reqs?|queries|query|calls?|questions?|messages?|prompts?|chats?|conversations?"
    r"|completions?|documents?|docs?|tickets?|emails?|translations?|summar(?:y|ies)|inferences?|generations?"
    r"|hits?|lookups?|searches|articles?|pages?|files?|responses?|contracts?|reports?|transcripts?|jobs?)"
)
_PER = r"(?:per|/|a|an|each|every)"
_WHEN = rf"(?:{_PER}\s*(?P<p>{PERIOD})|(?P<adv>hourly|daily|nightly|weekly|monthly|yearly|annually))"
_USER_ONE = (
    r"(?:user|employee|person|customer|developer|dev|engineer|member|agent|seat|student|visitor|colleague"
    r"|worker|analyst|lawyer|subscriber|client|head)"
)
_INTERNAL = (
    r"employees|staff(?: members)?|colleagues|coworkers|co-workers|workers|agents|developers|devs|engineers"
    r"|programmers|analysts|lawyers|team members|seats|clinicians|doctors|nurses|consultants|reps"
)
_EXTERNAL = (
    r"users|customers|clients|people|visitors|students|subscribers|members|shoppers|players|patients|readers"
    r"|learners|citizens|dau|mau|daus|maus"
)
_TOKENS = r"(?:tokens?|toks?)"


def _seconds(found: re.Match[str]) -> float:
    return period_seconds(found.group("p") or found.group("adv").replace("nightly", "daily"))


def read_lengths(scan: Scan) -> None:
    """Mean prompt and output lengths in tokens, words or pages; "long documents" as a flag."""
    f = scan.found
    both = rf"(?P<i>{NUMBER})\s*(?:{_TOKENS}\s*)?in\s*(?:/|,|and)\s*(?P<o>{NUMBER})\s*(?:{_TOKENS}\s*)?out\b"
    for m in scan.matches(both):
        f.prompt_tokens, f.output_tokens = number_value(m.group("i")), number_value(m.group("o"))
        scan.take(m.start(), m.end(), f"prompt {f.prompt_tokens:,.0f}, output {f.output_tokens:,.0f} tokens")
    inputs = r"(?:prompts?|inputs?|input context|context|questions?|documents?|docs?)"
    outputs = r"(?:outputs?|answers?|responses?|replies|completions?|generations?|summar(?:y|ies))"
    filler = r"\s*(?:of|are|is|with|:|=|averag\w+)?\s*(?:about|around|~|roughly|up to|typically)?\s*"
    for kind, noun, short in (("prompt", inputs, "in"), ("output", outputs, "out")):
        for unit, per_unit in ((_TOKENS, 1.0), (r"words?", TOKENS_PER_WORD)):
            before = rf"(?P<n>{NUMBER})[\s-]*{unit}\s*(?:of\s+)?(?:long\s+)?(?:{noun}|{short}\b)"
            after = rf"\b{noun}{filler}(?P<n>{NUMBER})[\s-]*{unit}"
            for pattern in (before, after):
                for m in scan.matches(pattern):
                    tokens = number_value(m.group("n")) * per_unit
                    setattr(f, f"{kind}_tokens", tokens)
                    scan.take(m.start(), m.end(), f"{kind} length {tokens:,.0f} tokens (mean)")
                    if per_unit != 1.0:
                        scan.assumptions.append(
                            f"assumed {TOKENS_PER_WORD:.2f} tokens per word (1 token ≈ 0.75 English words) "
                            f"for the {kind} length"
                        )
    for m in scan.matches(rf"(?P<n>{NUMBER})[\s-]*pages?\b(?!\s*{_PER}\s)"):
        tokens = number_value(m.group("n")) * TOKENS_PER_PAGE
        f.prompt_tokens = tokens
        f.long_documents = f.long_documents or tokens >= 8000
        scan.take(m.start(), m.end(), f"prompt length {tokens:,.0f} tokens (mean)")
        scan.assumptions.append(
            f"assumed {TOKENS_PER_PAGE} tokens per page (about 375 words) for the prompt length"
        )
    long_docs = (
        r"\b(?:long(?:er)?|large|big|very long)\s+(?:[a-z]+\s+)?(?:documents?|docs|reports?|texts?|pdfs?"
        r"|contracts?|files|transcripts?|papers?|books?|inputs?|prompts?|filings?|manuals?)\b|\blengthy\s+[a-z]+|\bbooks?\b"
        r"|\bhundreds of pages\b"
    )
    for m in scan.matches(long_docs):
        f.long_documents = True
        scan.take(m.start(), m.end(), "long documents (long prompts)")
    for m in scan.matches(
        r"\bshort\s+(?:documents?|docs|texts?|emails?|messages|articles?|tickets?|prompts?)\b"
    ):
        scan.take(m.start(), m.end(), "short inputs (the template's prompt length)")
    for m in scan.matches(rf"(?P<n>{NUMBER})\s*(?:context(?: window)?|context length)\b"):
        scan.ignore(
            m.start(),
            m.end(),
            "a context window is a maximum, not the mean prompt; say 'prompts of about N tokens'",
        )


def read_users(scan: Scan) -> None:
    """A user count and its kind: employees (working hours), users/customers (all day), concurrent, DAU/MAU."""
    f = scan.found
    per_user = (
        rf"(?P<n>{NUMBER})\s*(?:{_NOUNS}\s*)?(?:per|/|a|an|each|for each|for every)\s*{_USER_ONE}\s*{_WHEN}",
        rf"\b(?:each|every|per)\s+(?:(?:{_USER_ONE}|one)\s+)?(?:(?:sends?|makes?|asks?|issues?|submits?|runs?|"
        rf"does|triggers?|has|types?|writes?|uses it|will send|would send|averages?)\s+)?(?:about\s+|around\s+|~\s*|"
        rf"roughly\s+|up to\s+)?(?P<n>{NUMBER})\s*(?:{_NOUNS}\s*)?{_WHEN}",
        rf"(?P<n>{NUMBER})\s*{_NOUNS}\s*{_WHEN}\s*(?:each|apiece|per {_USER_ONE})\b",
    )
    for pattern in per_user:
        for m in scan.matches(pattern):
            if f.requests_per_user_hour is None:
                seconds = _seconds(m)
                f.requests_per_user_hour = number_value(m.group("n")) * 3600.0 / seconds
                f.per_user_rate_in_active_hours = seconds <= 3600.0
                scan.take(m.start(), m.end(), f"{f.requests_per_user_hour:.4g} requests per user per hour")
    kinds = rf"(?P<kind>{_INTERNAL}|{_EXTERNAL})"
    patterns = (
        rf"(?P<n>{NUMBER})\+?\s+(?P<adj>(?:[a-z-]+\s+){{0,2}}?){kinds}\b",
        rf"\b(?:team|company|organi[sz]ation|org|firm|headcount|staff|workforce)\s+of\s+(?P<n>{NUMBER})"
        rf"(?:\s+(?P<kind2>{_INTERNAL}|people))?",
        rf"(?P<n>{NUMBER})[\s-](?:person|people|employee|seat)\s+(?:team|company|organi[sz]ation|org|firm)\b",
    )
    for index, pattern in enumerate(patterns):
        for m in scan.matches(pattern):
            if f.users is not None:
                scan.ignore(m.start(), m.end(), f"a second user count; kept {f.user_phrase!r}")
                continue
            value = number_value(m.group("n"))
            if value < 1:
                continue
            kind_word = m.groupdict().get("kind") or ""
            adjectives = (m.groupdict().get("adj") or "").strip()
            after = scan.low[m.end() : m.end() + 30]
            kind: UserKind = "internal" if index > 0 or re.fullmatch(_INTERNAL, kind_word) else "external"
            if re.search(r"concurrent|simultaneous|parallel|online at once", adjectives) or re.match(
                r"\s*(?:at once|at the same time|simultaneously|concurrently|in parallel)", after
            ):
                kind = "concurrent"
            elif "daily active" in adjectives or kind_word in ("dau", "daus"):
                kind = "daily_active"
            elif "monthly active" in adjectives or kind_word in ("mau", "maus"):
                kind = "monthly_active"
            tail = re.match(r"\s*(?:at once|at the same time|simultaneously|concurrently|in parallel)", after)
            end = m.end() + (tail.end() if tail and kind == "concurrent" else 0)
            f.users, f.user_kind = round(value), kind
            f.user_phrase = scan.take(m.start(), end, f"{round(value):,} users ({kind.replace('_', ' ')})")


def read_rates(scan: Scan) -> None:
    """Total request rates (per second … per month), with "peak"/"average" cues deciding which is which."""
    f = scan.found
    patterns = (
        rf"(?P<n>{NUMBER})\s*(?:[a-z-]+\s+){{0,2}}?{_NOUNS}\s*{_WHEN}",
        rf"(?P<n>{NUMBER})\s*(?P<abbr>qps|rps|rpm|rph|rpd|req/s|reqs?/s(?:ec)?|requests?/s(?:ec)?)(?![\w])",
        rf"\b(?:qps|rps|throughput|request rate)\s*(?:of|=|:|is|at|around|about|~)?\s*(?P<n>{NUMBER})(?![\w.])"
        rf"(?!\s*(?:ms|s|x|times|seconds?)\b)",
        rf"(?P<n>{NUMBER})\s*{_WHEN}",
    )
    abbreviations = {"rpm": 60.0, "rph": 3600.0, "rpd": 86400.0}
    found: list[tuple[float, bool, str, str]] = []  # (qps, per second/minute/hour, cue, phrase)
    for pattern in patterns:
        for m in scan.matches(pattern):
            groups = m.groupdict()
            if groups.get("p") or groups.get("adv"):
                seconds = _seconds(m)
            else:
                seconds = abbreviations.get(groups.get("abbr") or "", 1.0)
            qps = number_value(m.group("n")) / seconds
            before = scan.low[max(0, m.start() - 25) : m.start()]
            after = scan.low[m.end() : m.end() + 25]
            start, end = m.start(), m.end()
            cue = ""
            peak_before = re.search(
                r"(?:peak(?:s|ing)?(?: at| of)?|at peak|max(?:imum)?(?: of)?|busiest|up to|bursts? (?:of|to))\s*$",
                before,
            )
            avg_before = re.search(
                r"(?:average(?: of)?|avg|on average|typically|normally|usually)\s*$", before
            )
            peak_after = re.match(
                r"\s*(?:at (?:the )?peak|peak|at busy times|during peaks?|max(?:imum)?)\b", after
            )
            avg_after = re.match(r"\s*(?:on average|average|avg|typically|normally)\b", after)
            if peak_before or peak_after:
                cue = "peak"
                start = start - len(peak_before.group(0)) if peak_before else start
                end = end + peak_after.end() if peak_after else end
            elif avg_before or avg_after:
                cue = "average"
                start = start - len(avg_before.group(0)) if avg_before else start
                end = end + avg_after.end() if avg_after else end
            shown = scan.take(start, end, f"{qps:.4g} requests/s{' at peak' if cue == 'peak' else ''}")
            found.append((qps, seconds <= 3600.0, cue, shown))
    if not found:
        return
    peaks = [r for r in found if r[2] == "peak"]
    averages = [r for r in found if r[2] != "peak"]
    if averages:
        f.qps, f.qps_is_instant, _, f.qps_phrase = averages[0]
        if peaks and peaks[0][0] > f.qps:
            f.peak_qps = peaks[0][0]
    else:
        f.qps, f.qps_is_instant, _, f.qps_phrase = peaks[0]
        f.qps_is_peak = True
    for extra in [*averages[1:], *peaks[1:]]:
        scan.ignored.append(f'"{extra[3]}" (a second request rate; kept "{f.qps_phrase}")')


def read_peaks(scan: Scan) -> None:
    """Peak-to-average factors ("peak 3x", "spikes of 5x"), spiky or steady traffic, working hours."""
    f = scan.found
    patterns = (
        rf"\bpeaks?(?:[\s-]?(?:to[\s-]?average|factor|load|traffic))?\s*(?:of|at|up to|around|about|is|=|:|reaching|"
        rf"hits?)?\s*(?P<n>{NUMBER})\s*(?:x|times)(?![\w])(?:\s*(?:the\s+)?(?:average|normal|baseline))?",
        rf"(?P<n>{NUMBER})\s*(?:x|times)\s*(?:the\s+)?(?:average\s+|normal\s+)?(?:at\s+|during\s+|in\s+)?"
        rf"(?:peaks?|spikes?|bursts?|peak[\s-]to[\s-]average)\b",
        rf"\b(?:spikes?|bursts?|surges?)\s*(?:of|to|up to)\s*(?P<n>{NUMBER})\s*(?:x|times)(?![\w])",
    )
    for pattern in patterns:
        for m in scan.matches(pattern):
            value = number_value(m.group("n"))
            if value < 1:
                scan.ignore(m.start(), m.end(), "a peak factor is at least 1")
                continue
            f.peak_factor = value
            scan.take(m.start(), m.end(), f"peak factor {value:g} (peak / average requests)")
    spiky = (
        r"\b(?:spik(?:y|es|ing)|burst(?:y|s)|peaky|unpredictable)(?:\s+(?:traffic|load|usage|demand))?\b"
        r"|\bflash crowds?\b|\bvariable (?:traffic|load)\b"
    )
    for m in scan.matches(spiky):
        f.spiky = True
        scan.take(m.start(), m.end(), "spiky traffic")
    steady = (
        r"\b(?:steady|constant|flat|even|uniform|stable|predictable)\s+(?:traffic|load|rate|usage|demand|stream)\b"
        r"|\bevenly (?:spread|distributed)\b|\bsteady\b"
    )
    for m in scan.matches(steady):
        f.steady = True
        scan.take(m.start(), m.end(), "steady traffic (peak factor 1)")
    hours = r"\b(?:business|working|office|work) hours\b|\b9\s*(?:-|to)\s*5\b|\bnine to five\b|\bworkdays?\b"
    for m in scan.matches(hours):
        f.business_hours = True
        scan.take(m.start(), m.end(), "traffic in working hours")
    for m in scan.matches(r"\b24/7\b|\baround the clock\b|\bday and night\b"):
        scan.take(m.start(), m.end(), "traffic all day")
