"""Scrape rounds → ``Observation``: the pure part of the direct scrape (``_scrape.py`` does the HTTP).

The first round is the baseline; each later round closes one interval, whose ``Sample`` comes from the increases
since each replica's previous answer (QPS, histogram p95s, spend) and the gauges at its end (running, waiting, KV
usage). Window totals are the sum of the per-interval increases, so a replica that restarts mid-window (its counters
drop, or their ``_created`` changes) loses nothing but the requests between its last scrape and the restart
(``_exposition.counter_increase``). A replica that misses a round is paired with its next answer and its rate spread
over the longer gap. ``WindowBuilder`` folds rounds one at a time and keeps only each endpoint's last reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from servewise.errors import UsageError

from ._assemble import (
    GATEWAY_POOL_UP,
    GATEWAY_REQUESTS,
    GATEWAY_SCHEMA_CHECKS,
    GATEWAY_SPEND,
    GENERATION_TOKENS,
    HISTOGRAMS,
    KV_USAGE,
    KV_USAGE_OLD,
    PREEMPTIONS,
    PROMPT_TOKENS,
    REQUEST_SUCCESS,
    RUNNING,
    WAITING,
    GatewayTotals,
    WindowTotals,
    assemble_observation,
)
from ._exposition import (
    Buckets,
    Exposition,
    add_buckets,
    bucket_count,
    counter_increase,
    gauge_values,
    histogram_increase,
    histogram_quantile,
    label_values,
)
from ._observation import Observation, Sample

__all__ = ["ScrapeRound", "WindowBuilder", "has_vllm", "observation_from_rounds"]


@dataclass(frozen=True, slots=True)
class ScrapeRound:
    """One round: every endpoint read once, at ``at_s`` (Unix seconds when the round started)."""

    at_s: float
    replicas: Mapping[str, Exposition]
    """Endpoint → its parsed ``/metrics`` (answered endpoints only)."""
    failures: Mapping[str, str] = field(default_factory=dict)
    """Endpoint → why it did not answer."""
    gateway: Exposition | None = None
    gateway_failure: str | None = None


def has_vllm(exposition: Exposition) -> bool:
    return any(name.startswith("vllm:") for name, _ in exposition)


def _kv(exposition: Exposition) -> list[float]:
    return gauge_values(exposition, KV_USAGE) or gauge_values(exposition, KV_USAGE_OLD)


@dataclass
class _Accumulator:
    """Window totals being summed interval by interval."""

    finished: dict[str, float] = field(default_factory=dict)
    has_finished: bool = False
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    preemptions: float | None = None
    histograms: dict[str, Buckets] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    kv_max: float | None = None
    models: set[str] = field(default_factory=set)

    def add_counter(self, attribute: str, amount: dict[tuple[str, ...], float]) -> None:
        if amount:
            setattr(self, attribute, (getattr(self, attribute) or 0.0) + sum(amount.values()))


@dataclass
class _GatewayAccumulator:
    """The gateway's counters summed interval by interval."""

    last: tuple[float, Exposition] | None = None
    requests: dict[tuple[str, ...], float] = field(default_factory=dict)
    checks: dict[tuple[str, ...], float] = field(default_factory=dict)
    spend_usd: float = 0.0
    pools: set[str] = field(default_factory=set)

    def add(self, at_s: float, after: Exposition) -> tuple[float, float] | None:
        """Add the increases since the previous answer; the dollars spent in them and over how many seconds
        (``None`` for the first answer)."""
        self.pools |= label_values(after, GATEWAY_POOL_UP, "pool")
        previous, self.last = self.last, (at_s, after)
        if previous is None:
            return None
        before_s, before = previous
        by = ("route", "decision", "status")
        for into, name, labels in (
            (self.requests, GATEWAY_REQUESTS, by),
            (self.checks, GATEWAY_SCHEMA_CHECKS, ("result",)),
        ):
            for key, n in counter_increase(before, after, name, by=labels, before_time_s=before_s).items():
                into[key] = into.get(key, 0.0) + n
        spent = sum(counter_increase(before, after, GATEWAY_SPEND, before_time_s=before_s).values())
        self.spend_usd += spent
        return spent, at_s - before_s

    def totals(self) -> GatewayTotals | None:
        if self.last is None:
            return None
        return GatewayTotals(
            requests={(k[0], k[1], k[2]): n for k, n in self.requests.items()},
            spend_usd=self.spend_usd,
            local_pools=frozenset(self.pools),
            schema_checks={k[0]: n for k, n in self.checks.items()},
        )


def _replica_interval(
    acc: _Accumulator, before: Exposition, after: Exposition, before_time_s: float
) -> tuple[float, dict[str, Buckets]]:
    """Add one replica's increases over one interval to ``acc``; its finished requests and histogram increases."""
    finished = counter_increase(
        before, after, REQUEST_SUCCESS, by=("finished_reason",), before_time_s=before_time_s
    )
    if finished:
        acc.has_finished = True
        for (reason,), n in finished.items():
            acc.finished[reason] = acc.finished.get(reason, 0.0) + n
    acc.add_counter(
        "prompt_tokens", counter_increase(before, after, PROMPT_TOKENS, before_time_s=before_time_s)
    )
    acc.add_counter(
        "generation_tokens", counter_increase(before, after, GENERATION_TOKENS, before_time_s=before_time_s)
    )
    acc.add_counter("preemptions", counter_increase(before, after, PREEMPTIONS, before_time_s=before_time_s))
    histograms: dict[str, Buckets] = {}
    for key, name in HISTOGRAMS.items():
        increase = histogram_increase(before, after, name, before_time_s=before_time_s)
        if increase:
            histograms[key] = increase
            add_buckets(acc.histograms.setdefault(key, {}), increase)
            added = counter_increase(before, after, f"{name}_sum", before_time_s=before_time_s)
            acc.sums[key] = acc.sums.get(key, 0.0) + sum(added.values())
    requests = sum(finished.values()) if finished else bucket_count(histograms.get("e2e", {}))
    return requests, histograms


def _p95(buckets: Buckets | None) -> float | None:
    return histogram_quantile(0.95, buckets) if buckets and bucket_count(buckets) > 0 else None


class WindowBuilder:
    """Folds scrape rounds into a window one at a time, keeping only each endpoint's last reading (so a long window
    costs the per-interval samples, not every exposition)."""

    def __init__(self, endpoints: Sequence[str], gateway: str | None = None) -> None:
        self.endpoints = list(endpoints)
        self.gateway = gateway
        self._acc = _Accumulator()
        self._gateway = _GatewayAccumulator()
        self._last: dict[str, tuple[float, Exposition]] = {}
        self._samples: list[Sample] = []
        self._first_at: float | None = None
        self._previous_at: float | None = None
        self._rounds = 0
        self._failures: dict[str, tuple[int, str]] = {}
        self._served_vllm: dict[str, bool] = {}
        self._gateway_failures: tuple[int, str] | None = None

    def add(self, current: ScrapeRound) -> None:
        """One more round (rounds in time order); the first is the baseline."""
        acc = self._acc
        rate, histograms, kv_now = 0.0, dict[str, Buckets](), list[float]()
        running = waiting = 0.0
        up = 0
        baseline = self._previous_at is None
        for endpoint, message in current.failures.items():
            count, _ = self._failures.get(endpoint, (0, ""))
            self._failures[endpoint] = (count + 1, message)
        for endpoint, exposition in current.replicas.items():
            served = has_vllm(exposition)
            self._served_vllm[endpoint] = self._served_vllm.get(endpoint, False) or served
            if not served:
                continue
            up += 1
            acc.models |= label_values(exposition, RUNNING, "model_name")
            running += sum(gauge_values(exposition, RUNNING))
            waiting += sum(gauge_values(exposition, WAITING))
            kv = _kv(exposition)
            if kv:
                kv_now.append(sum(kv) / len(kv))
                if not baseline:
                    acc.kv_max = max(acc.kv_max or 0.0, *kv)
            previous = self._last.get(endpoint)
            if previous is not None:
                n, increases = _replica_interval(acc, previous[1], exposition, previous[0])
                # over the time since this replica's previous answer (longer when it missed a round)
                rate += n / (current.at_s - previous[0]) if current.at_s > previous[0] else 0.0
                for key, increase in increases.items():
                    add_buckets(histograms.setdefault(key, {}), increase)
            self._last[endpoint] = (current.at_s, exposition)
        spend_per_hour: float | None = None
        if current.gateway is not None:
            spent = self._gateway.add(current.at_s, current.gateway)
            if spent is not None and spent[1] > 0:
                spend_per_hour = spent[0] * 3600.0 / spent[1]
        if current.gateway_failure is not None:
            count = self._gateway_failures[0] if self._gateway_failures else 0
            self._gateway_failures = (count + 1, current.gateway_failure)
        self._rounds += 1
        if self._first_at is None or self._previous_at is None:
            self._first_at = self._previous_at = current.at_s
            return
        self._samples.append(
            Sample(
                t_s=current.at_s - self._first_at,
                interval_s=current.at_s - self._previous_at,
                replicas=up,
                qps=rate,
                running=running,
                waiting=waiting,
                kv_cache_usage_ratio=sum(kv_now) / len(kv_now) if kv_now else None,
                ttft_p95_s=_p95(histograms.get("ttft")),
                itl_p95_s=_p95(histograms.get("itl")),
                e2e_p95_s=_p95(histograms.get("e2e")),
                spend_usd_per_hour=spend_per_hour,
            )
        )
        self._previous_at = current.at_s

    def observation(self) -> Observation:
        """The window so far (at least two rounds: the baseline and one interval)."""
        if self._first_at is None or self._previous_at is None or not self._samples:
            raise UsageError("a window needs at least two scrape rounds (the baseline and one interval)")
        acc = self._acc
        totals = WindowTotals(
            finished_by_reason=acc.finished if acc.has_finished else None,
            prompt_tokens=acc.prompt_tokens,
            generation_tokens=acc.generation_tokens,
            preemptions=acc.preemptions,
            histograms=acc.histograms,
            histogram_sums=acc.sums,
            kv_cache_usage_max=acc.kv_max,
            model_names=frozenset(acc.models),
            gateway=self._gateway.totals(),
        )
        return assemble_observation(
            source="scrape",
            endpoints=self.endpoints,
            started_at=_iso(self._first_at),
            ended_at=_iso(self._previous_at),
            window_s=self._previous_at - self._first_at,
            totals=totals,
            samples=self._samples,
            warnings=self._warnings(),
        )

    def _warnings(self) -> list[str]:
        notes = []
        for endpoint in self.endpoints:
            count, last = self._failures.get(endpoint, (0, ""))
            if count:
                notes.append(
                    f"replica {endpoint} did not answer {count} of {self._rounds} scrapes (last: {last})"
                )
            if self._served_vllm.get(endpoint) is False:
                notes.append(f"{endpoint} has no vllm:* series; is it a vLLM replica's /metrics?")
        if self.gateway is not None and self._gateway_failures is not None:
            count, last = self._gateway_failures
            notes.append(
                f"gateway {self.gateway} did not answer {count} of {self._rounds} scrapes (last: {last})"
            )
        return notes


def observation_from_rounds(
    rounds: Sequence[ScrapeRound], *, endpoints: Sequence[str], gateway: str | None = None
) -> Observation:
    """The ``Observation`` of scrape rounds (at least two: the baseline and one interval); ``endpoints`` and
    ``gateway`` are the keys the rounds use (the ``/metrics`` URLs)."""
    builder = WindowBuilder(endpoints, gateway)
    for current in rounds:
        builder.add(current)
    return builder.observation()


def _iso(at_s: float) -> str:
    return datetime.fromtimestamp(at_s, UTC).isoformat(timespec="seconds")
