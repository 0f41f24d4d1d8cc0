"""The state of one intent parse: the text, which characters a rule has already used, and what was found.

Why mark used characters: rules run from the most specific to the most general ("$8k a month" is money before
"8k a month" could be read as a request rate), and a rule never reads text an earlier rule explained. What no rule
used is reported back as ignored, so a user sees exactly which words made no difference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["STOPWORDS", "Findings", "Scan", "UserKind"]

UserKind = Literal["internal", "external", "concurrent", "daily_active", "monthly_active"]

STOPWORDS = frozenset((
    "a", "an", "the", "for", "with", "and", "or", "of", "to", "in", "on", "at", "by", "from", "our", "my", "your",
    "their", "we", "i", "you", "they", "it", "its", "is", "are", "be", "been", "being", "need", "needs", "want",
    "wants", "would", "like", "should", "must", "can", "could", "will", "please", "that", "which", "who", "this",
    "these", "those", "there", "some", "any", "about", "around", "roughly", "approximately", "approx", "~", "so",
    "as", "also", "just", "only", "but", "than", "then", "per", "each", "every", "something", "thing", "things",
    "stuff", "app", "application", "service", "system", "tool", "platform", "use", "using", "used", "serve",
    "serving", "run", "running", "host", "hosting", "deploy", "deploying", "model", "llm", "ai", "answers",
    "answer", "respond", "responses", "response", "up", "under", "over", "within", "less", "more", "most", "no",
    "not", "without", "into", "do", "does", "make", "makes", "have", "has", "users",
))  # fmt: skip
"""Words that carry no request on their own; leftovers made only of these are not reported as ignored."""


_NORMALIZE = {
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"',
    "\u2264": " at most ", "\u2265": " at least ", "\u00d7": "x", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
}  # fmt: skip


@dataclass
class Findings:
    """What the rules understood, before defaults are filled in; ``None`` means not said."""

    use_case_scores: dict[str, int] = field(default_factory=dict)
    use_case_named: str | None = None
    long_documents: bool = False
    languages: list[str] = field(default_factory=list)
    qps: float | None = None
    qps_phrase: str = ""
    qps_is_peak: bool = False
    qps_is_instant: bool = False
    peak_qps: float | None = None
    users: int | None = None
    user_kind: UserKind = "external"
    user_phrase: str = ""
    requests_per_user_hour: float | None = None
    per_user_rate_in_active_hours: bool = False
    peak_factor: float | None = None
    spiky: bool = False
    steady: bool = False
    business_hours: bool = False
    prompt_tokens: float | None = None
    output_tokens: float | None = None
    slo_ms: dict[str, float] = field(default_factory=dict)
    bare_latency: list[tuple[float, str | None, str]] = field(default_factory=list)
    """(milliseconds, percentile p50/p95/p99 or None when not given, phrase): latency targets that name no metric,
    resolved once the use case is known (time to first token for streamed use cases, end to end for the others)."""
    no_latency_target: bool = False
    budget_usd_month: float | None = None
    gpus: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    precisions: list[str] = field(default_factory=list)
    pricing: str | None = None
    max_gpus: int | None = None
    min_params_b: float | None = None
    cpu: bool | None = None
    priority: str | None = None


class Scan:
    """One parse: the lowercased text, a used-character mask, and the matched/assumed/ignored lines."""

    def __init__(self, text: str) -> None:
        normalized = "".join(_NORMALIZE.get(ch, ch) for ch in text)
        lowered = normalized.lower()
        if len(lowered) != len(normalized):  # a character whose lowercase is longer: show the lowercase text
            normalized = lowered
        self.text = normalized
        self.low = lowered
        self._used = [False] * len(lowered)
        self.found = Findings()
        self.matched: list[str] = []
        self.assumptions: list[str] = []
        self.ignored: list[str] = []

    def is_free(self, start: int, end: int) -> bool:
        return not any(self._used[start:end])

    def phrase(self, start: int, end: int) -> str:
        return self.text[start:end].strip(" ,;.")

    def take(self, start: int, end: int, meaning: str) -> str:
        """Mark ``[start, end)`` used and record ``"phrase" → meaning``; returns the phrase."""
        for index in range(start, end):
            self._used[index] = True
        shown = self.phrase(start, end)
        self.matched.append(f'"{shown}" → {meaning}')
        return shown

    def ignore(self, start: int, end: int, why: str) -> None:
        """Mark a span used without acting on it, and say why it was ignored."""
        for index in range(start, end):
            self._used[index] = True
        self.ignored.append(f'"{self.phrase(start, end)}" ({why})')

    def matches(self, pattern: str) -> Iterator[re.Match[str]]:
        """Matches of ``pattern`` in the lowercased text that touch no used character, left to right."""
        for found in re.finditer(pattern, self.low):
            if found.end() > found.start() and self.is_free(found.start(), found.end()):
                yield found

    def leftovers(self) -> list[str]:
        """Unused stretches of text that hold a word which is not a stop word: what made no difference."""
        chunks: list[str] = []
        current: list[str] = []
        for char, used in zip(self.text, self._used, strict=True):
            if used or char in ",;.!?()\n":
                if current:
                    chunks.append("".join(current))
                    current = []
                continue
            current.append(char)
        if current:
            chunks.append("".join(current))
        shown = []
        for chunk in chunks:
            words = re.findall(r"[a-z0-9$&%'/+-]+", chunk.lower())
            if any(w not in STOPWORDS and (len(w) > 1 or w.isdigit()) for w in words):
                shown.append(chunk.strip(" -:'\""))
        return [s for s in shown if s]
