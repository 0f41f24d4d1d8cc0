"""Direct scrape: read every vLLM replica's ``/metrics`` (and optionally a Servewise gateway's) every ``interval_s``
for ``window_s`` and fold the readings into an ``Observation`` (``_window.WindowBuilder``, the pure part).

All endpoints of a round are read concurrently (httpx, async). A replica that does not answer is a warning; only
when no endpoint answers the baseline round — or none serves ``vllm:*`` series — is it an error, since there is
then nothing to watch (and the user learns it at once, not after the window).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

import httpx

from servewise.errors import UsageError

from ._exposition import Exposition, parse_exposition
from ._observation import Observation
from ._window import ScrapeRound, WindowBuilder, has_vllm

__all__ = ["MAX_TIMEOUT_S", "metrics_url", "scrape_observation", "validate_window"]

MAX_TIMEOUT_S = 10.0


def metrics_url(endpoint: str) -> str:
    """The ``/metrics`` URL of an endpoint given as ``http://host:8000``, ``…/v1`` or ``…/metrics``."""
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(
            f"endpoint {endpoint!r} is not an http(s) URL; give e.g. http://10.0.0.5:8000/metrics"
        )
    if url.endswith("/metrics"):
        return url
    return url.removesuffix("/v1") + "/metrics"


def validate_window(window_s: float, interval_s: float, interval_flag: str = "--interval") -> None:
    """One-line errors for a window that cannot be measured."""
    if not (window_s > 0 and math.isfinite(window_s)):
        raise UsageError(f"--window must be a positive duration such as 60s or 5m (got {window_s:g} s)")
    if not (interval_s > 0 and math.isfinite(interval_s)):
        raise UsageError(f"{interval_flag} must be a positive duration such as 5s (got {interval_s:g} s)")
    if interval_s > window_s:
        raise UsageError(
            f"{interval_flag} ({interval_s:g} s) is longer than --window ({window_s:g} s); "
            "the window needs at least one interval"
        )


async def _read(client: httpx.AsyncClient, url: str) -> Exposition | str:
    """The parsed exposition, or why there is none (one line)."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as err:
        return f"{type(err).__name__}: {err}".rstrip(": ")
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        return parse_exposition(response.text)
    except ValueError as err:
        return str(err)


async def _round(client: httpx.AsyncClient, urls: Sequence[str], gateway_url: str | None) -> ScrapeRound:
    at_s = time.time()
    targets = [*urls, *([gateway_url] if gateway_url else [])]
    answers = await asyncio.gather(*(_read(client, url) for url in targets))
    replicas = {url: a for url, a in zip(urls, answers, strict=False) if not isinstance(a, str)}
    failures = {url: a for url, a in zip(urls, answers, strict=False) if isinstance(a, str)}
    gateway_answer = answers[-1] if gateway_url else None
    return ScrapeRound(
        at_s=at_s,
        replicas=replicas,
        failures=failures,
        gateway=None if gateway_answer is None or isinstance(gateway_answer, str) else gateway_answer,
        gateway_failure=gateway_answer if isinstance(gateway_answer, str) else None,
    )


async def scrape_observation(
    endpoints: Sequence[str],
    *,
    window_s: float,
    interval_s: float,
    gateway: str | None = None,
    on_round: Callable[[int, int], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Observation:
    """Scrape ``endpoints`` (and ``gateway``) every ``interval_s`` for ``window_s`` and return the window's
    ``Observation``. ``on_round(done, total)`` reports progress (the CLI's bar)."""
    validate_window(window_s, interval_s)
    if not endpoints:
        raise UsageError("give at least one --endpoint (a vLLM replica's /metrics URL) or --prometheus URL")
    urls = [metrics_url(e) for e in endpoints]
    gateway_url = metrics_url(gateway) if gateway else None
    intervals = max(1, math.ceil(window_s / interval_s - 1e-9))
    timeout = httpx.Timeout(max(1.0, min(interval_s, MAX_TIMEOUT_S)))
    builder = WindowBuilder(urls, gateway_url)
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
        start = time.monotonic()
        for index in range(intervals + 1):
            delay = start + index * interval_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            current = await _round(client, urls, gateway_url)
            if index == 0:
                _check_baseline(current, urls)
            builder.add(current)
            if on_round is not None:
                on_round(index + 1, intervals + 1)
    return builder.observation()


def _check_baseline(baseline: ScrapeRound, urls: Sequence[str]) -> None:
    """Fail fast when nothing can be watched: no endpoint answered, or none serves vLLM metrics."""
    if not baseline.replicas:
        first = urls[0]
        raise UsageError(
            f"none of the {len(urls)} endpoint(s) answered ({first}: {baseline.failures.get(first, '?')}); "
            "check the --endpoint URLs (each replica's /metrics, e.g. http://10.0.0.5:8000/metrics)"
        )
    if not any(has_vllm(e) for e in baseline.replicas.values()):
        raise UsageError(
            f"no vllm:* series at {', '.join(baseline.replicas)}; --endpoint must be a vLLM replica's /metrics"
        )
