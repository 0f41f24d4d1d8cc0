"""What ``servewise watch`` observed over a window, and what it compares it with: the contract between the metric
sources (scrape / PromQL), the analyses (compliance, efficiency, right-sizing, drift) and the outputs (CLI, HTML
report, web *Watch* page).

Why plain frozen dataclasses with a ``to_dict``-friendly shape: the same observation is printed as a table, written
as JSON (stable, documented in docs/watch.md), drawn in HTML, and stored as measured benchmark rows — one data
shape, no source-specific fields leaking downstream.

Units are in the names; percentiles are keyed by quantile (0.5, 0.9, 0.95, 0.99). A value that the window could not
measure (no requests finished, the series is absent) is ``None``, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Drift",
    "Efficiency",
    "GateResult",
    "LatencyQuantiles",
    "Observation",
    "Recommendation",
    "Sample",
    "SloCompliance",
    "WatchReport",
    "WatchTarget",
]

LatencyQuantiles = dict[float, float | None]
"""Seconds at each quantile (0.5, 0.9, 0.95, 0.99), interpolated from Prometheus histogram buckets the way
``histogram_quantile`` does (linear within the bucket; ``None`` when the window saw no observation)."""

MetricSource = Literal["scrape", "prometheus"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of the time series the charts draw: the interval ``(t_s - interval_s, t_s]`` of the window."""

    t_s: float
    """Seconds since the window's start (end of this interval)."""
    interval_s: float
    replicas: int
    """Endpoints (or Prometheus targets) that answered in this interval."""
    qps: float
    """Requests finished per second in the interval, all replicas."""
    running: float
    """Sum over replicas of ``vllm:num_requests_running`` at the interval's end."""
    waiting: float
    kv_cache_usage_ratio: float | None
    """Mean over replicas of ``vllm:kv_cache_usage_perc`` (0–1)."""
    ttft_p95_s: float | None
    itl_p95_s: float | None
    e2e_p95_s: float | None
    spend_usd_per_hour: float | None
    """From the gateway's ``servewise_gateway_spend_usd`` rate; ``None`` without gateway metrics."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything measured over the window, from histogram and counter deltas between its first and last reading."""

    source: MetricSource
    endpoints: tuple[str, ...]
    """Scraped ``/metrics`` URLs, or the Prometheus base URL."""
    model_name: str | None
    """The ``model_name`` label seen on the vLLM series (``None`` when absent)."""
    started_at: str
    """ISO-8601 UTC."""
    ended_at: str
    window_s: float
    replicas: int
    """Replicas up at the end of the window."""
    replicas_mean: float
    """Time-averaged replicas up (what GPU-hours are paid for)."""
    requests: int
    """Requests finished in the window (``vllm:request_success_total`` delta, else the e2e histogram count)."""
    qps: float
    qps_peak: float
    """Highest interval QPS in the window."""
    prompt_tokens_mean: float | None
    """Per finished request: ``vllm:prompt_tokens_total`` delta / requests (or the request_prompt_tokens histogram)."""
    output_tokens_mean: float | None
    prompt_tokens_p95: float | None
    """From ``vllm:request_prompt_tokens`` buckets when exposed; ``None`` otherwise."""
    output_tokens_p95: float | None
    ttft_s: LatencyQuantiles
    itl_s: LatencyQuantiles
    e2e_s: LatencyQuantiles
    queue_s: LatencyQuantiles
    kv_cache_usage_mean: float | None
    kv_cache_usage_max: float | None
    running_mean: float | None
    """Mean over samples of the sum over replicas."""
    waiting_mean: float | None
    waiting_max: float | None
    preemptions: int
    generation_tokens_per_s: float
    errors: int
    """Gateway requests with status ``error`` (upstream errors), else vLLM ``request_success`` with an abort reason."""
    error_rate: float | None
    """errors / all requests; ``None`` when nothing was requested."""
    fallback_share: float | None
    """Gateway: requests answered by a hosted-API route or a fallback / all gateway requests; ``None`` without it."""
    local_ratio: float | None
    """Gateway: requests answered by a local pool / all answered; ``None`` without gateway metrics."""
    spend_usd: float | None
    """Gateway dollars billed in the window."""
    spend_usd_per_hour: float | None
    schema_valid_ratio: float | None
    """Gateway JSON-output validation pass ratio when it validates outputs; ``None`` otherwise."""
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()
    """E.g. "replica http://… did not answer 2 of 12 scrapes", "no gateway metrics: spend not observed"."""
    histograms: dict[str, dict[float, float]] = field(default_factory=dict)
    """The window's histogram increases, all replicas: ``ttft``, ``itl``, ``e2e``, ``queue`` (seconds) and
    ``prompt_tokens``, ``output_tokens`` (tokens, when exposed) → upper bound (``math.inf`` for ``+Inf``) →
    cumulative count. What SLO compliance reads its bad fraction from (added by W1)."""
    ttft_mean_s: float | None = None
    """Mean TTFT over the window (histogram ``_sum`` / ``_count`` deltas); ``None`` when not observed. The measured
    benchmark rows ``watch`` stores hold means (as ``calibration.csv`` does); without it they fall back to p50."""
    itl_mean_s: float | None = None
    """Mean inter-token latency (token-weighted, ``vllm:inter_token_latency_seconds`` sum / count)."""
    e2e_mean_s: float | None = None


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """What the plan promised for the deployment being watched: one option of a plan document."""

    plan_path: str
    option_rank: int
    model: str
    gpu: str
    gpu_count: int
    """GPUs per replica (= tp)."""
    tp: int
    precision: str
    backend: str
    replicas: int
    """Replicas the plan sized for its peak."""
    usd_per_hour: float
    """All replicas, at the plan's pricing."""
    usd_per_month: float
    usd_per_gpu_hour: float
    budget_usd_month: float | None
    slo_targets_s: dict[str, float]
    """Keys ``ttft_p95``, ``itl_p95``, ``e2e_p95`` (and ``_p50`` / ``_p99`` when the workload sets them), seconds."""
    predicted_s: dict[str, float]
    """The plan's own predictions at its load, same keys as ``slo_targets_s`` where it has them."""
    peak_qps: float
    max_qps_per_replica: float
    prompt_tokens_mean: float
    output_tokens_mean: float
    engine: dict[str, int | float | bool | str]
    """Engine settings of the option (max_num_seqs, max_num_batched_tokens, gpu_memory_utilization, ...)."""
    workload: dict[str, object]
    """The plan document's ``workload`` block (re-planning starts from it)."""


@dataclass(frozen=True, slots=True)
class SloCompliance:
    """One SLO: observed vs target, and how fast the error budget burns."""

    metric: str
    """``ttft``, ``itl`` or ``e2e``."""
    quantile: float
    target_s: float
    observed_s: float | None
    met: bool | None
    """``None`` when not observed."""
    bad_fraction: float | None
    """Share of requests in the window over the target (from the histogram buckets, interpolated)."""
    burn_rate: float | None
    """bad_fraction / (1 − quantile): 1 spends the error budget exactly over the SLO period; > 1 faster."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """One validation gate (docs/watch.md lists the built-in ones and the YAML to configure them)."""

    name: str
    description: str
    threshold: float
    observed: float | None
    passed: bool | None
    """``None``: skipped (the metric was not observed); a skipped gate fails only with ``required: true``."""
    required: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Efficiency:
    """GPU-hours paid vs needed and the 0–100 score (formula in docs/watch.md)."""

    score: float
    gpu_hours_paid_per_hour: float
    gpu_hours_needed_per_hour: float
    replicas_needed: float
    """Observed QPS through the perf model's max QPS per replica under the SLO (fractional)."""
    utilisation: float | None
    """running / max_num_seqs, mean over the window."""
    kv_headroom: float | None
    """1 − max KV-cache usage."""
    components: dict[str, float]
    """Each term of the formula and its weight, for the report."""
    usd_per_month_paid: float
    usd_per_month_needed: float
    provenance: str
    """``calibrated`` / ``analytical`` — of the perf prediction used for ``replicas_needed``."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A change the planner, re-run on the observed workload, says saves money; each with its SLO risk."""

    kind: str
    """``replicas``, ``off_peak_replicas``, ``precision``, ``gpu``, ``model``, ``long_context_pool``, ``scale_up``."""
    title: str
    """One line, e.g. "drop to 3 replicas off-peak"."""
    detail: str
    saving_usd_per_month: float
    """Positive saves money; negative costs more (``scale_up`` to meet a missed SLO)."""
    slo_risk: Literal["low", "medium", "high"]
    risk_reason: str
    predicted_s: dict[str, float] = field(default_factory=dict)
    """Predicted p95 latencies of the recommended configuration at the observed load."""


@dataclass(frozen=True, slots=True)
class Drift:
    """Predicted vs observed latency at the observed load (the perf model re-run at the observed QPS and lengths)."""

    predicted_s: dict[str, float | None]
    """Keys ``ttft_p50``, ``ttft_p95``, ``itl_p50``, ``itl_p95``, ``e2e_p50``, ``e2e_p95``."""
    observed_s: dict[str, float | None]
    error_pct: dict[str, float | None]
    """(predicted − observed) / observed × 100."""
    threshold_pct: float
    drifted: bool
    """Any |error| over the threshold."""
    stored_rows: int
    """Measured benchmark rows written to the catalog (0 unless drifted and storing was asked for)."""
    source: str
    """The ``source`` the rows carry, e.g. ``watch:http://10.0.0.5:8000 2026-11-25T10:00Z``."""


@dataclass(frozen=True, slots=True)
class WatchReport:
    """Everything ``watch`` prints or draws; ``passed`` decides the exit code."""

    target: WatchTarget
    observation: Observation
    compliance: tuple[SloCompliance, ...]
    gates: tuple[GateResult, ...]
    efficiency: Efficiency | None
    recommendations: tuple[Recommendation, ...]
    drift: Drift | None

    @property
    def passed(self) -> bool:
        """Every gate passed, or was skipped without being required."""
        return all(
            gate.passed is not False and not (gate.passed is None and gate.required) for gate in self.gates
        )
