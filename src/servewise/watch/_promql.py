"""The same ``Observation`` from a Prometheus server's HTTP API, for deployments Prometheus already scrapes.

Window totals are instant queries (``/api/v1/query``) at the window's end; the time series are range queries
(``/api/v1/query_range``) with ``step_s``. ``{S}`` is the ``selector`` (label matchers, e.g.
``namespace="llm",job="vllm"``), ``{G}`` the ``gateway_selector``, ``[W]`` the window and ``[STEP]`` the step.

**Counts over the window** (requests by ``finished_reason``, tokens, preemptions, every histogram bucket and
``_sum``, the gateway's counters), per counter ``C`` grouped by the labels kept::

    sum by (…) (last_over_time(C{S}[W]))
      − sum by (…) ((C{S} offset W and last_over_time(C{S}[W])) or min_over_time(C{S}[W]))

— the exact change of the cumulative values between the window's edges, as the direct scrape measures it (a series
with no sample at the window's start — Prometheus began scraping it inside the window — counts from its first
sample in the window, as ``increase()`` does) — when
``resets()`` of every vLLM counter and histogram ``_count`` sums to 0; when a replica restarted, ``sum by (…)
(increase(C{S}[W]))`` instead (with a warning). *Why not increase() always:* it extrapolates each series to the
range's edges, and its rule that a counter is not extrapolated below zero stretches a bucket that started at 0 less
than its neighbours — on young replicas (a bucket no request reached before the window) this moves whole requests
between buckets and can triple a p95 (seen in the real-Prometheus test). Percentiles are then computed here with
``_exposition.histogram_quantile``, Prometheus's own interpolation.

Other window queries: ``max(max_over_time(vllm:kv_cache_usage_perc{S}[W]))``, ``count by (model_name)
(last_over_time(vllm:num_requests_running{S}[W]))``, ``count by (pool) (last_over_time(servewise_gateway_pool_up{G}
[W]))``. The time series::

    replicas             count(count by (instance) (vllm:num_requests_running{S}))
    QPS                  sum(rate(vllm:request_success_total{S}[STEP]))
    running / waiting    sum(vllm:num_requests_running{S}) / sum(vllm:num_requests_waiting{S})
    KV-cache usage       avg(vllm:kv_cache_usage_perc{S})
    p95 per step         histogram_quantile(0.95, sum by (le) (rate(<histogram>_bucket{S}[STEP])))
    spend per hour       sum(rate(servewise_gateway_spend_usd_total{G}[STEP])) * 3600

``rate(…[STEP])`` needs two scrapes inside each step (``step_s`` ≥ 2 × the scrape interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

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
    LATENCY_HISTOGRAMS,
    PREEMPTIONS,
    PROMPT_TOKENS,
    REQUEST_SUCCESS,
    RUNNING,
    WAITING,
    GatewayTotals,
    WindowTotals,
    assemble_observation,
)
from ._exposition import Buckets
from ._observation import Observation, Sample
from ._scrape import validate_window

__all__ = ["MAX_POINTS", "prometheus_observation", "promql_duration"]

MAX_POINTS = 11_000
"""Prometheus refuses range queries of more points per series."""
TIMEOUT_S = 30.0
Vector = list[tuple[dict[str, str], float]]
Matrix = list[tuple[dict[str, str], dict[int, float]]]


def promql_duration(seconds: float) -> str:
    """A PromQL range duration: whole seconds as ``60s``, else milliseconds (``1500ms``)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _braces(selector: str) -> str:
    inner = selector.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    return "{" + inner + "}" if inner else ""


def _value(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return None if math.isnan(value) else value


class _Api:
    """The two query endpoints; every failure is a one-line ``UsageError`` naming the query."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base = base_url.rstrip("/")
        self.client = client

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base}{path}"
        try:
            response = self.client.get(url, params=params)
        except httpx.HTTPError as err:
            raise UsageError(
                f"cannot reach Prometheus at {self.base} ({type(err).__name__}: {err}); check --prometheus "
                "(the server's base URL, e.g. http://prometheus:9090)"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise UsageError(
                f"{url} answered HTTP {response.status_code} without JSON; is {self.base} a Prometheus server?"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise UsageError(
                f"Prometheus at {self.base} rejected `{params.get('query')}` (HTTP {response.status_code}: "
                f"{error or 'no error message'}); check --selector"
            )
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise UsageError(f"{url} answered without data.result; is {self.base} a Prometheus server?")
        return data

    def vector(self, query: str, at_s: float) -> Vector:
        data = self._get("/api/v1/query", {"query": query, "time": f"{at_s:.3f}"})
        out: Vector = []
        for item in data["result"]:
            value = _value((item.get("value") or [None, "NaN"])[1])
            if value is not None:
                out.append((dict(item.get("metric") or {}), value))
        return out

    def matrix(self, query: str, start_s: float, end_s: float, step_s: float) -> Matrix:
        params = {"query": query, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": f"{step_s:g}"}
        data = self._get("/api/v1/query_range", params)
        out: Matrix = []
        for item in data["result"]:
            points: dict[int, float] = {}
            for at, text in item.get("values") or []:
                value = _value(text)
                if value is not None:
                    points[round(float(at) * 1000)] = value
            out.append((dict(item.get("metric") or {}), points))
        return out

    def scalar(self, query: str, at_s: float) -> float | None:
        vector = self.vector(query, at_s)
        return sum(v for _, v in vector) if vector else None


def _series(matrix: Matrix) -> dict[int, float]:
    """The one series of an aggregated range query (empty when there is none)."""
    return matrix[0][1] if matrix else {}


class _Increases:
    """Counter increases over the window: exact deltas of the cumulative values when no series restarted, else
    Prometheus's ``increase()`` (module docstring, *Why not increase()*)."""

    def __init__(self, api: _Api, w: str, window_s: float, end_s: float, restarted: bool) -> None:
        self.api, self.w, self.window_s, self.end_s, self.restarted = api, w, window_s, end_s, restarted

    def __call__(self, series: str, by: Sequence[str] = ()) -> dict[tuple[str, ...], float]:
        grouping = f"sum by ({', '.join(by)})" if by else "sum"

        def keyed(vector: Vector) -> dict[tuple[str, ...], float]:
            return {tuple(labels.get(label, "") for label in by): value for labels, value in vector}

        if self.restarted:
            return keyed(self.api.vector(f"{grouping} (increase({series}[{self.w}]))", self.end_s))
        after = keyed(self.api.vector(f"{grouping} (last_over_time({series}[{self.w}]))", self.end_s))
        # each series' value at the window's start — only series with samples in the window (a replica gone
        # before it must not be subtracted) — else its first value in the window (min: no reset, checked), as
        # increase() does for a series Prometheus began scraping inside the range
        inside = f"last_over_time({series}[{self.w}])"
        first = f"min_over_time({series}[{self.w}])"
        before_query = f"{grouping} (({series} offset {self.w} and {inside}) or {first})"
        before = keyed(self.api.vector(before_query, self.end_s))
        return {key: max(0.0, value - before.get(key, 0.0)) for key, value in after.items()}


def _restarted(api: _Api, counters: Sequence[str], s: str, w: str, end_s: float) -> bool:
    """Whether any of ``counters`` restarted in the window: ``resets()`` summed per counter (one query; a
    counter-name regex would collide once ``resets`` drops the names)."""
    query = " + ".join(f"(sum(resets({counter}{s}[{w}])) or vector(0))" for counter in counters)
    return bool(api.scalar(query, end_s))


def _gateway(api: _Api, g: str, w: str, window_s: float, end_s: float) -> tuple[GatewayTotals | None, bool]:
    """The gateway's counters (``None`` without gateway series), and whether a gateway restarted."""
    pools = api.vector(f"count by (pool) (last_over_time({GATEWAY_POOL_UP}{g}[{w}]))", end_s)
    counters = (GATEWAY_REQUESTS, GATEWAY_SPEND, GATEWAY_SCHEMA_CHECKS)
    restarted = _restarted(api, counters, g, w, end_s)
    increase = _Increases(api, w, window_s, end_s, restarted)
    requests = increase(f"{GATEWAY_REQUESTS}{g}", ("route", "decision", "status"))
    if not requests and not pools:
        return None, False
    totals = GatewayTotals(
        requests={(k[0], k[1], k[2]): v for k, v in requests.items()},
        spend_usd=sum(increase(f"{GATEWAY_SPEND}{g}").values()),
        local_pools=frozenset(m["pool"] for m, _ in pools if "pool" in m),
        schema_checks={k[0]: v for k, v in increase(f"{GATEWAY_SCHEMA_CHECKS}{g}", ("result",)).items()},
    )
    return totals, restarted


def _totals(api: _Api, s: str, g: str, w: str, window_s: float, end_s: float) -> tuple[WindowTotals, bool]:
    """The window's totals, and whether a replica or gateway restarted (their counts then come from
    ``increase()``)."""
    counters = (REQUEST_SUCCESS, PROMPT_TOKENS, GENERATION_TOKENS, PREEMPTIONS)
    restarted = _restarted(api, (*counters, *(f"{name}_count" for name in HISTOGRAMS.values())), s, w, end_s)
    increase = _Increases(api, w, window_s, end_s, restarted)

    def total(series: str) -> float | None:
        found = increase(f"{series}{s}")
        return sum(found.values()) if found else None

    finished = increase(f"{REQUEST_SUCCESS}{s}", ("finished_reason",))
    histograms: dict[str, Buckets] = {}
    sums: dict[str, float] = {}
    for key, name in HISTOGRAMS.items():
        buckets = {float(k[0]): v for k, v in increase(f"{name}_bucket{s}", ("le",)).items() if k[0]}
        if buckets:
            histograms[key] = buckets
            found = total(f"{name}_sum")
            if found is not None:
                sums[key] = found
    kv_max = api.scalar(f"max(max_over_time({KV_USAGE}{s}[{w}]))", end_s)
    if kv_max is None:
        kv_max = api.scalar(f"max(max_over_time({KV_USAGE_OLD}{s}[{w}]))", end_s)
    models = api.vector(f"count by (model_name) (last_over_time({RUNNING}{s}[{w}]))", end_s)
    gateway, gateway_restarted = _gateway(api, g, w, window_s, end_s)
    totals = WindowTotals(
        finished_by_reason={k[0]: v for k, v in finished.items()} if finished else None,
        prompt_tokens=total(PROMPT_TOKENS),
        generation_tokens=total(GENERATION_TOKENS),
        preemptions=total(PREEMPTIONS),
        histograms=histograms,
        histogram_sums=sums,
        kv_cache_usage_max=kv_max,
        model_names=frozenset(m["model_name"] for m, _ in models if m.get("model_name")),
        gateway=gateway,
    )
    return totals, restarted or gateway_restarted


def _samples(api: _Api, s: str, g: str, start_s: float, step_s: float, steps: int) -> list[Sample]:
    first, last = start_s + step_s, start_s + steps * step_s
    step = promql_duration(step_s)

    def series(query: str) -> dict[int, float]:
        return _series(api.matrix(query, first, last, step_s))

    replicas = series(f"count(count by (instance) ({RUNNING}{s}))")
    qps = series(f"sum(rate({REQUEST_SUCCESS}{s}[{step}]))")
    running = series(f"sum({RUNNING}{s})")
    waiting = series(f"sum({WAITING}{s})")
    kv = series(f"avg({KV_USAGE}{s})") or series(f"avg({KV_USAGE_OLD}{s})")
    p95 = {
        key: series(
            f"histogram_quantile(0.95, sum by (le) (rate({LATENCY_HISTOGRAMS[key]}_bucket{s}[{step}])))"
        )
        for key in ("ttft", "itl", "e2e")
    }
    spend = series(f"sum(rate({GATEWAY_SPEND}{g}[{step}])) * 3600")
    samples = []
    for index in range(1, steps + 1):
        at = round((start_s + index * step_s) * 1000)
        samples.append(
            Sample(
                t_s=index * step_s,
                interval_s=step_s,
                replicas=round(replicas.get(at, 0.0)),
                qps=qps.get(at, 0.0),
                running=running.get(at, 0.0),
                waiting=waiting.get(at, 0.0),
                kv_cache_usage_ratio=kv.get(at),
                ttft_p95_s=p95["ttft"].get(at),
                itl_p95_s=p95["itl"].get(at),
                e2e_p95_s=p95["e2e"].get(at),
                spend_usd_per_hour=spend.get(at),
            )
        )
    return samples


def prometheus_observation(
    base_url: str,
    *,
    window_s: float,
    step_s: float,
    selector: str = "",
    gateway_selector: str = "",
    end: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Observation:
    """The ``Observation`` of the ``window_s`` ending at ``end`` (default: now) from the Prometheus server at
    ``base_url``; ``selector`` / ``gateway_selector`` are PromQL label matchers (module docstring)."""
    validate_window(window_s, step_s)
    steps = math.floor(window_s / step_s + 1e-9)
    if steps > MAX_POINTS:
        raise UsageError(
            f"--window / --interval gives {steps} points per series; Prometheus allows {MAX_POINTS}: "
            "raise --interval"
        )
    if not base_url.strip().startswith(("http://", "https://")):
        raise UsageError(f"--prometheus {base_url!r} is not an http(s) URL; give e.g. http://prometheus:9090")
    end_at = end if end is not None else datetime.now(UTC)
    if end_at.tzinfo is None:
        end_at = end_at.replace(tzinfo=UTC)
    end_s = end_at.timestamp()
    start_s = end_s - window_s
    s, g, w = _braces(selector), _braces(gateway_selector), promql_duration(window_s)
    with httpx.Client(timeout=TIMEOUT_S, transport=transport) as client:
        api = _Api(base_url, client)
        totals, restarted = _totals(api, s, g, w, window_s, end_s)
        samples = _samples(api, s, g, start_s, step_s, steps)
    if not totals.model_names and not any(sample.replicas for sample in samples):
        raise UsageError(
            f"no vllm:* series{' match ' + s if s else ''} at {api.base} in the {window_s:g} s before "
            f"{end_at.isoformat(timespec='seconds')}; check --selector and that Prometheus scrapes the replicas"
        )
    return assemble_observation(
        source="prometheus",
        endpoints=[api.base],
        started_at=datetime.fromtimestamp(start_s, UTC).isoformat(timespec="seconds"),
        ended_at=end_at.astimezone(UTC).isoformat(timespec="seconds"),
        window_s=window_s,
        totals=totals,
        samples=samples,
        warnings=_warnings(samples, restarted),
    )


def _warnings(samples: Sequence[Sample], restarted: bool) -> list[str]:
    notes = []
    down = [sample for sample in samples if sample.replicas == 0]
    if down:
        notes.append(f"no replica reported in {len(down)} of {len(samples)} steps of the window")
    if restarted:
        notes.append(
            "a replica or gateway restarted in the window: its counts come from PromQL increase(), which "
            "extrapolates (estimates, not exact counts)"
        )
    return notes
