"""Latency percentiles and throughput of one load level, from the requests' timestamps. Pure functions.

Definitions (those of vLLM's ``vllm bench serve``, ``vllm/benchmarks/lib/endpoint_request_func.py`` and
``vllm/benchmarks/serve.py``; GuideLLM's are noted where they differ), for a request sent at ``t0`` whose content
chunks arrive at ``t_1 … t_k`` and whose server reports ``n`` output tokens (``usage.completion_tokens``, else
``k``):

* TTFT  = t_1 − t0: queueing, prefill and the first decode step, seen by the client. vLLM counts the first chunk
  with ``choices`` even if its text is empty; we count the first chunk with text (as GenAI-Perf and LLMPerf do),
  so a chat role header is not a token.
* ITL   = t_{i+1} − t_i for every pair of consecutive content chunks, pooled over all requests: an *inter-chunk*
  gap, one sample per gap even when a chunk carries several tokens; excludes the first token.
* TPOT  = (E2E − TTFT) / (n − 1), per request with n > 1: the mean time per output token after the first.
  GuideLLM calls this quantity ``inter_token_latency_ms`` (last − first token time over n − 1).
* E2E   = t_k − t0: to the last content chunk (the trailing usage chunk and ``[DONE]`` are not waited for).

Percentiles are ``numpy.percentile``'s linear interpolation (as vLLM's); "mean" is the arithmetic mean of the
samples. Throughput divides by the measured window, from the first request sent to the last one finished (failed
ones included): requests/s counts successful requests, output tokens/s their ``n``, total tokens/s adds their
prompt tokens (``usage.prompt_tokens``, else the requested length).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._client import RequestRecord

__all__ = ["METRICS", "QUANTILES", "Distribution", "LevelStats", "distribution", "summarize"]

QUANTILES = (50, 90, 95, 99)
METRICS = (("ttft", "TTFT"), ("itl", "ITL"), ("tpot", "TPOT"), ("e2e", "E2E"))
_SHOWN_ERRORS = 3


@dataclass(frozen=True, slots=True)
class Distribution:
    """Percentiles and mean of one latency, in ms; all None when there is no sample."""

    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    count: int

    def as_dict(self) -> dict[str, float | None]:
        """``{"p50": …, "p90": …, "p95": …, "p99": …, "mean": …}`` in ms, rounded to µs."""
        values = {"p50": self.p50_ms, "p90": self.p90_ms, "p95": self.p95_ms, "p99": self.p99_ms}
        values["mean"] = self.mean_ms
        return {key: None if v is None else round(v, 3) for key, v in values.items()}


def distribution(samples_s: Sequence[float]) -> Distribution:
    """Percentiles (linear interpolation) and mean of samples in seconds, reported in ms."""
    if not samples_s:
        return Distribution(None, None, None, None, None, 0)
    values = np.asarray(samples_s, dtype=float) * 1000.0
    p50, p90, p95, p99 = (float(v) for v in np.percentile(values, QUANTILES))
    return Distribution(p50, p90, p95, p99, float(values.mean()), int(values.size))


@dataclass(frozen=True, slots=True)
class LevelStats:
    """Everything measured at one load level."""

    requests: int
    completed: int
    failed: int
    duration_s: float
    requests_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    mean_prompt_tokens: float | None
    mean_output_tokens: float | None
    ttft: Distribution
    itl: Distribution
    tpot: Distribution
    e2e: Distribution
    errors: tuple[tuple[str, int], ...] = field(default=())
    """The commonest error messages and how often each occurred."""

    def metric(self, name: str) -> Distribution:
        return {"ttft": self.ttft, "itl": self.itl, "tpot": self.tpot, "e2e": self.e2e}[name]


def summarize(records: Sequence[RequestRecord]) -> LevelStats:
    """The statistics of one level's measured requests (warm-up requests left out by the caller)."""
    done = [r for r in records if r.ok]
    ttft = [r.token_times_s[0] - r.start_s for r in done]
    e2e = [r.token_times_s[-1] - r.start_s for r in done]
    itl = [
        later - earlier
        for r in done
        for earlier, later in zip(r.token_times_s, r.token_times_s[1:], strict=False)
    ]
    tpot = [
        (r.token_times_s[-1] - r.token_times_s[0]) / (r.output_token_count - 1)
        for r in done
        if r.output_token_count > 1
    ]
    window = max(r.end_s for r in records) - min(r.start_s for r in records) if records else 0.0
    output = sum(r.output_token_count for r in done)
    prompt = sum(r.prompt_token_count for r in done)

    def rate(amount: float) -> float:
        return amount / window if window > 0 else 0.0

    errors = Counter(r.error or "no content" for r in records if not r.ok)
    return LevelStats(
        requests=len(records),
        completed=len(done),
        failed=len(records) - len(done),
        duration_s=window,
        requests_per_s=rate(len(done)),
        output_tokens_per_s=rate(output),
        total_tokens_per_s=rate(output + prompt),
        mean_prompt_tokens=prompt / len(done) if done else None,
        mean_output_tokens=output / len(done) if done else None,
        ttft=distribution(ttft),
        itl=distribution(itl),
        tpot=distribution(tpot),
        e2e=distribution(e2e),
        errors=tuple(errors.most_common(_SHOWN_ERRORS)),
    )
