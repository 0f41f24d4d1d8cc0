"""Request streams the scheduler simulation replays: open loop (Poisson, bursty gamma, a trace) or closed loop.

Why separate from the engine: the same engine must answer "what does a benchmark with 64 clients measure" (closed
loop, how calibration rows were taken) and "what do users see at 12 req/s" (open loop, how production traffic
arrives); only the source of requests differs. Every stream is a pure function of its seed.

Gamma inter-arrival gaps with coefficient of variation ``cv`` have shape 1/cv² and mean 1/rate: cv = 1 is Poisson,
cv > 1 is burstier (the convention of vLLM's ``--burstiness`` = 1/cv²).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from servewise.errors import UsageError

__all__ = [
    "ClosedLoop",
    "LengthSampler",
    "OpenLoop",
    "SimRequest",
    "closed_loop",
    "gamma_arrivals",
    "load_trace",
    "poisson_arrivals",
    "sampled_lengths",
    "uniform_lengths",
]

TRACE_COLUMNS = ("time_s", "prompt_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class SimRequest:
    prompt_tokens: int
    output_tokens: int
    arrival_s: float = 0.0
    """Open loop: when the request reaches the server. Closed loop: ignored (a client sends on completion)."""
    priority: int = 0
    """Lower is served first (vLLM's priority policy); equal priorities are first come, first served."""
    weight: float = 1.0
    """Share of this request in the reported means (warm-up or extrapolated waves weigh differently)."""


@dataclass(frozen=True, slots=True)
class OpenLoop:
    requests: tuple[SimRequest, ...]
    warmup: int = 0
    """The first ``warmup`` requests load the engine but are left out of the percentiles."""


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    """``concurrency`` clients; each sends its next request the moment its previous one completes."""

    concurrency: int
    requests: tuple[SimRequest, ...]


def _lengths(rng: np.random.Generator, sampler: LengthSampler, n: int) -> list[tuple[int, int]]:
    prompts, outputs = sampler(rng, n)
    return [(max(1, int(p)), max(1, int(o))) for p, o in zip(prompts, outputs, strict=True)]


class LengthSampler(Protocol):
    """Draws ``n`` (prompt, output) token counts from ``rng``."""

    def __call__(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class uniform_lengths:
    """Uniform on [ratio × len, len] per request, as ``vllm bench serve --random-range-ratio`` draws them."""

    prompt_tokens: int
    output_tokens: int
    range_ratio: float = 1.0

    def __call__(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        def draw(length: int) -> np.ndarray:
            low = max(1, int(length * self.range_ratio))
            return rng.integers(low, length + 1, size=n)

        return draw(self.prompt_tokens), draw(self.output_tokens)


@dataclass(frozen=True, slots=True)
class sampled_lengths:
    """Lengths from inverse-CDF functions (a workload's length distributions): u ∈ [0, 1) → tokens."""

    prompt_quantile: Callable[[float], float]
    output_quantile: Callable[[float], float]

    def __call__(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        u = rng.random((2, n))
        prompts = np.array([round(self.prompt_quantile(float(x))) for x in u[0]])
        outputs = np.array([round(self.output_quantile(float(x))) for x in u[1]])
        return prompts, outputs


def poisson_arrivals(rate_qps: float, n: int, lengths: LengthSampler, *, seed: int = 0) -> OpenLoop:
    return gamma_arrivals(rate_qps, n, lengths, cv=1.0, seed=seed)


def gamma_arrivals(
    rate_qps: float, n: int, lengths: LengthSampler, *, cv: float, seed: int = 0, warmup_share: float = 0.1
) -> OpenLoop:
    """``n`` requests with gamma gaps of mean 1/rate and coefficient of variation ``cv`` (1 = Poisson)."""
    if rate_qps <= 0 or not math.isfinite(rate_qps):
        raise UsageError(f"arrival rate must be a positive number of requests per second (got {rate_qps})")
    if cv <= 0:
        raise UsageError(f"burstiness cv must be > 0 (got {cv}); 1 is Poisson")
    rng = np.random.default_rng(seed)
    shape = 1.0 / (cv * cv)
    gaps = rng.gamma(shape, 1.0 / (rate_qps * shape), size=n)
    times = np.cumsum(gaps) - gaps[0]
    requests = tuple(
        SimRequest(p, o, float(t)) for (p, o), t in zip(_lengths(rng, lengths, n), times, strict=True)
    )
    return OpenLoop(requests, warmup=int(n * warmup_share))


def closed_loop(
    concurrency: int, n: int, lengths: LengthSampler, *, seed: int = 0, first_wave_weight: float | None = None
) -> ClosedLoop:
    """``n`` requests through ``concurrency`` clients. ``first_wave_weight`` gives the first ``concurrency``
    requests that total share of the means (the rest share the remainder): a short run then stands for a long one
    whose first, all-at-once wave is a known fraction of the requests."""
    rng = np.random.default_rng(seed)
    pairs = _lengths(rng, lengths, n)
    first = min(concurrency, n)
    if first_wave_weight is None or first >= n:
        weights = [1.0 / n] * n
    else:
        weights = [first_wave_weight / first] * first + [(1.0 - first_wave_weight) / (n - first)] * (
            n - first
        )
    requests = tuple(SimRequest(p, o, weight=w) for (p, o), w in zip(pairs, weights, strict=True))
    return ClosedLoop(concurrency, requests)


def load_trace(path: Path) -> OpenLoop:
    """A replayed trace: CSV with a header naming ``time_s, prompt_tokens, output_tokens`` (other columns are
    ignored); one request per row, in any order."""
    requests: list[SimRequest] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            header = [name.strip() for name in reader.fieldnames or ()]
            missing = [name for name in TRACE_COLUMNS if name not in header]
            if missing and header:
                raise UsageError(
                    f"{path}: the header lacks {', '.join(missing)}; expected the columns {', '.join(TRACE_COLUMNS)}"
                )
            reader.fieldnames = header
            for row in reader:
                requests.append(_trace_request(path, reader.line_num, row))
    except OSError as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"{path}: not a CSV text file ({reason}); expected columns {', '.join(TRACE_COLUMNS)}"
        ) from None
    if not requests:
        raise UsageError(f"{path}: the trace has no requests; expected a header and one row per request")
    return OpenLoop(tuple(sorted(requests, key=lambda r: r.arrival_s)))


def _trace_request(path: Path, line: int, row: dict[str, str | None]) -> SimRequest:
    try:
        time_s = float(row["time_s"] or "")
        prompt, output = int(row["prompt_tokens"] or ""), int(row["output_tokens"] or "")
    except (KeyError, TypeError, ValueError):
        raise UsageError(
            f"{path}:{line}: expected a number in time_s and whole numbers in prompt_tokens, output_tokens"
        ) from None
    if prompt < 1 or output < 1 or not math.isfinite(time_s) or time_s < 0:
        raise UsageError(f"{path}:{line}: token counts must be >= 1 and time_s a finite number >= 0")
    return SimRequest(prompt, output, time_s)
