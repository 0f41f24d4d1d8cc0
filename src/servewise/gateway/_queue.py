"""Live queue depth of each local pool, read from its Prometheus ``/metrics`` (vLLM's ``vllm:num_requests_waiting``).

A background task polls every pool every ``poll_interval_s`` concurrently (one ``httpx.AsyncClient``, timeout
``poll_timeout_s``, default 1 s). The timeout is not tied to the interval: a short interval with an equally short
timeout turned a busy replica's slow ``/metrics`` answer into "unknown", and the policy then routed around the
idle pool that answered late. The depth of a pool is the SUM of the metric over its series (vLLM labels it by
``model_name`` and, in V1, ``engine``: a data-parallel server has one series per engine). What the routing policy
sees (``depths()``):

* a number — the last successful read, if it is younger than ``stale_after_s`` (default: three intervals plus
  three timeouts, i.e. three polls missed);
* ``None`` — unknown: the last poll failed (connection refused, non-200, no such metric in the text) or the last
  good read is stale. The policy avoids unknown pools while any other route fits.

A poll that times out is not a failure of the pool: the last good read stands until it is stale. A busy replica
(or one sharing its CPUs with its neighbours) can answer late now and then, and marking it unknown at once sent
every request to the other pools on one slow answer; a dead pool refuses the connection and is unknown at once,
and one that stays silent goes stale after three polls.

Before the first poll every pool is unknown, so ``start()`` polls once before it returns. Parsing uses
prometheus_client's text parser on the metric's own lines only (a vLLM ``/metrics`` page is mostly histograms;
filtering first keeps the event loop free).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servewise.errors import UsageError

from ._upstream import KEEPALIVE_EXPIRY_S

__all__ = ["QUEUE_METRIC", "PoolDepth", "QueueDepthPoller", "parse_queue_depth", "stale_default_s"]

QUEUE_METRIC = "vllm:num_requests_waiting"


@dataclass(frozen=True, slots=True)
class PoolDepth:
    """One pool's last poll: ``depth`` None when unknown; ``age_s`` since the last good read (None: never)."""

    pool: str
    depth: float | None
    age_s: float | None
    error: str | None


def parse_queue_depth(text: str, metric: str = QUEUE_METRIC) -> float | None:
    """Sum of ``metric`` over its series in a Prometheus text page; None when the page has no sample of it."""
    lines = [line for line in text.splitlines() if metric in line]
    total: float | None = None
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            if sample.name == metric and not math.isnan(sample.value):
                total = (total or 0.0) + sample.value
    return total


def stale_default_s(poll_interval_s: float, poll_timeout_s: float) -> float:
    """A read is stale once three polls in a row could have replaced it and none did."""
    return 3.0 * (poll_interval_s + poll_timeout_s)


def _metrics_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return (base.removesuffix("/v1") if base.endswith("/v1") else base) + "/metrics"


class QueueDepthPoller:
    """Polls ``pools`` (name → base URL, e.g. ``http://127.0.0.1:8000``; a trailing ``/v1`` is dropped)."""

    def __init__(
        self,
        pools: Mapping[str, str],
        *,
        poll_interval_s: float = 2.0,
        poll_timeout_s: float = 1.0,
        stale_after_s: float | None = None,
        metric: str = QUEUE_METRIC,
        on_update: Callable[[str, float | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll_interval_s <= 0:
            raise UsageError(f"routing.poll_interval_s must be > 0 (got {poll_interval_s})")
        if poll_timeout_s <= 0:
            raise UsageError(f"routing.poll_timeout_s must be > 0 (got {poll_timeout_s})")
        self.urls = {name: _metrics_url(url) for name, url in pools.items()}
        self.poll_interval_s = poll_interval_s
        self.poll_timeout_s = poll_timeout_s
        default_stale_s = stale_default_s(poll_interval_s, poll_timeout_s)
        self.stale_after_s = stale_after_s if stale_after_s is not None else default_stale_s
        self.metric = metric
        self._on_update = on_update
        self._clock = clock
        self._depth: dict[str, float | None] = dict.fromkeys(self.urls)
        self._read_at: dict[str, float | None] = dict.fromkeys(self.urls)
        self._error: dict[str, str | None] = dict.fromkeys(self.urls, "not polled yet")
        self._late: dict[str, str | None] = dict.fromkeys(self.urls)
        """The last poll's time-out since the last good read (the read still stands until stale)."""
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    def depths(self) -> dict[str, float | None]:
        """Depth per pool for ``RoutingState.queue_depth`` (None: unknown, down or stale)."""
        return {status.pool: status.depth for status in self.status()}

    def status(self) -> list[PoolDepth]:
        now = self._clock()
        out = []
        for pool in self.urls:
            read_at = self._read_at[pool]
            age = None if read_at is None else now - read_at
            fresh = age is not None and age <= self.stale_after_s and self._error[pool] is None
            error = self._error[pool] or (None if fresh else f"stale: last read {age:.1f} s ago")
            if error is not None and self._late[pool]:
                error += f" ({self._late[pool]})"
            out.append(PoolDepth(pool, self._depth[pool] if fresh else None, age, error))
        return out

    async def poll_once(self) -> dict[str, float | None]:
        """Poll every pool now (concurrently) and return ``depths()``."""
        client = self._ensure_client()
        await asyncio.gather(*(self._poll(client, pool, url) for pool, url in self.urls.items()))
        return self.depths()

    async def _poll(self, client: httpx.AsyncClient, pool: str, url: str) -> None:
        try:
            response = await client.get(url)
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            depth = parse_queue_depth(response.text, self.metric)
            if depth is None:
                raise ValueError(f"no {self.metric} in {url}")
        except httpx.TimeoutException as err:
            self._late[pool] = f"{type(err).__name__} after {self.poll_timeout_s:g} s"  # last read stands
        except (httpx.HTTPError, ValueError) as err:
            self._depth[pool] = None
            self._error[pool] = f"{type(err).__name__}: {err}"
        else:
            self._depth[pool] = depth
            self._read_at[pool] = self._clock()
            self._error[pool] = None
            self._late[pool] = None
        if self._on_update is not None:
            self._on_update(pool, self.depths()[pool])

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.poll_timeout_s,
                trust_env=False,
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
            )
        return self._client

    async def start(self) -> None:
        """Poll once (so routing starts with real depths), then keep polling in a background task."""
        if self._task is not None:
            return
        await self.poll_once()
        self._task = asyncio.create_task(self._run(), name="servewise-queue-poller")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.poll_once()

    async def close(self) -> None:
        """Stop polling and close the HTTP client (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
