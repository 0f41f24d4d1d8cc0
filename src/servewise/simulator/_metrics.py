"""``/metrics``: the simulated replica's state and request latencies under vLLM's Prometheus names.

Names, types, labels and histogram buckets follow vLLM 0.32's ``PrometheusStatLogger`` (vllm-project/vllm
``vllm/v1/metrics/loggers.py`` and ``buckets.py``), checked against a real vLLM server by
tests/realvllm/test_conformance_metrics.py: every series carries ``model_name`` and ``engine="0"`` (except
``vllm:admission_rejections_total``, which vLLM labels by ``model_name`` and ``reason`` only);
``vllm:request_success_total`` is split by ``finished_reason`` (stop, length, abort, error, repetition) and
``vllm:num_requests_waiting_by_reason`` by ``reason`` (capacity, deferred; the simulator has no deferral, so all
waiting requests wait for capacity), with every label value present from the start, as vLLM does. Buckets:
TTFT 1 ms … 2560 s, per-token 10 ms … 80 s, request phases 0.3 s … 7680 s, token counts 1-2-5 up to
``max_model_len``, step tokens 1 … 16384; ``kv_cache_usage_perc`` is a fraction (1 = full). Each server has its
own registry, so several servers in one process (tests) never share series.

Request phases as vLLM defines them (``vllm/v1/metrics/stats.py``), observed when a request finishes: queue =
first scheduled − arrival, prefill = first token − first scheduled, decode = last token − first token, inference
= last token − first scheduled, time per output token = decode / (output tokens − 1) (0 for one token).

``legacy=True`` (``servewise simulate --legacy-metrics``) adds two names vLLM has since removed, for dashboards
that still read them: ``vllm:gpu_cache_usage_perc`` (same value as ``kv_cache_usage_perc``) and
``vllm:time_per_output_token_seconds`` (same samples as ``inter_token_latency_seconds``; deprecated in vLLM 0.11
and removed, vllm-project/vllm#32661).

One non-vLLM histogram, ``servewise:token_emission_lateness_seconds``, records how late each token's bytes were
handed to the connection against the simulated schedule (the server's own timing error; see
benchmarks/bench_simulator.py).

Why histograms are not ``prometheus_client.Histogram``: the server observes several values per output token (up to
~40,000 tokens/s at 1,000 streams), and ``Histogram.observe`` (a lock, a bucket loop, several calls) cost more than
writing the token itself. ``FastHistogram`` keeps plain per-bucket counts on the event loop's thread, takes a whole
step's equal values in one call, and renders through a custom collector with the same text as ``Histogram``
(``_bucket``/``_count``/``_sum`` and the ``_created`` gauge).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_go_float = cast(Callable[[float], str], floatToGoString)
"""How prometheus_client writes a bucket's ``le`` (``2560.0``, ``+Inf``)."""

__all__ = ["FINISH_REASONS", "LATENESS_BUCKETS_S", "FastHistogram", "ReplicaMetrics", "token_buckets"]

TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
    80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TOKEN_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_BUCKETS_S = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
    960.0, 1920.0, 7680.0,
)  # fmt: skip
ITERATION_TOKEN_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
PREEMPTION_BUCKETS = (1, 2, 3, 4, 5, 10, 20)
LATENESS_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
"""vLLM's ``FinishReason`` values, the ``finished_reason`` label of ``vllm:request_success_total``."""
WAITING_REASONS = ("capacity", "deferred")
ADMISSION_REASONS = ("max_num_queued_reqs", "max_num_queued_tokens")
_LABELS = ("model_name", "engine")


def token_buckets(max_model_len: int) -> tuple[float, ...]:
    """vLLM's ``build_1_2_5_buckets(max_model_len)``: 1, 2, 5, 10, 20, 50, … up to ``max_model_len``."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_model_len:
                return tuple(buckets)
            buckets.append(float(value))
        exponent += 1


class ReplicaMetrics:
    """The series of one simulated replica; the server sets and observes them, ``render`` writes the text."""

    def __init__(self, model_name: str, *, max_model_len: int = 8192, legacy: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = (model_name, "0")
        reg = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _LABELS, registry=reg).labels(*labels)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _LABELS, registry=reg).labels(*labels)

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> FastHistogram:
            metric = FastHistogram(name, doc, buckets, dict(zip(_LABELS, labels, strict=True)))
            reg.register(metric)
            return metric

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        by_reason = Gauge(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason ('capacity': waiting for scheduling capacity; 'deferred': "
            "deferred by transient constraints). Sum of all reasons equals vllm:num_requests_waiting.",
            (*_LABELS, "reason"),
            registry=reg,
        )
        self.waiting_by_reason = {reason: by_reason.labels(*labels, reason) for reason in WAITING_REASONS}
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.gpu_cache_usage = (
            gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage. (older name)")
            if legacy
            else None
        )
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            (*_LABELS, "finished_reason"),
            registry=reg,
        )
        self.request_success = {reason: success.labels(*labels, reason) for reason in FINISH_REASONS}
        rejections = Counter(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            ("model_name", "reason"),
            registry=reg,
        )
        self.admission_rejections = {
            reason: rejections.labels(model_name, reason) for reason in ADMISSION_REASONS
        }
        lengths = token_buckets(max_model_len)
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", lengths
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", lengths
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            ITERATION_TOKEN_BUCKETS,
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS_S
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            TOKEN_BUCKETS_S,
        )
        self.tpot = (
            histogram(
                "vllm:time_per_output_token_seconds",
                "Histogram of time per output token in seconds. (older name)",
                TOKEN_BUCKETS_S,
            )
            if legacy
            else None
        )
        self.request_tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            TOKEN_BUCKETS_S,
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_BUCKETS_S,
        )
        self.queue = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_BUCKETS_S,
        )
        self.inference = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_BUCKETS_S,
        )
        self.prefill = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_BUCKETS_S,
        )
        self.decode = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_BUCKETS_S,
        )
        self.request_preemptions = histogram(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            PREEMPTION_BUCKETS,
        )
        self.lateness = histogram(
            "servewise:token_emission_lateness_seconds",
            "How late each token reached its stream against the simulated schedule (simulator timing error).",
            LATENESS_BUCKETS_S,
        )

    def set_waiting(self, waiting: int) -> None:
        """``num_requests_waiting`` and its by-reason split (the simulator defers nothing)."""
        self.waiting.set(waiting)
        self.waiting_by_reason["capacity"].set(waiting)

    def set_kv_usage(self, fraction: float) -> None:
        self.kv_usage.set(fraction)
        if self.gpu_cache_usage is not None:
            self.gpu_cache_usage.set(fraction)

    def observe_itl(self, gap_s: float, count: int) -> None:
        """``count`` inter-token gaps of ``gap_s`` (and the legacy per-token histogram when enabled)."""
        self.itl.observe_many(gap_s, count)
        if self.tpot is not None:
            self.tpot.observe_many(gap_s, count)

    def finished(
        self,
        *,
        reason: str,
        arrival_s: float,
        scheduled_s: float,
        first_token_s: float,
        last_token_s: float,
        overhead_s: float,
        prompt_tokens: int,
        generated_tokens: int,
        preemptions: int,
    ) -> None:
        """Record one finished request (simulated seconds; ``overhead_s``: the frontend time added to E2E)."""
        self.request_success[reason].inc()
        self.e2e.observe(last_token_s - arrival_s + overhead_s)
        self.queue.observe(scheduled_s - arrival_s)
        self.prefill.observe(first_token_s - scheduled_s)
        decode = last_token_s - first_token_s
        self.decode.observe(decode)
        self.inference.observe(last_token_s - scheduled_s)
        self.request_tpot.observe(decode / (generated_tokens - 1) if generated_tokens > 1 else 0.0)
        self.request_prompt_tokens.observe(prompt_tokens)
        self.request_generation_tokens.observe(generated_tokens)
        self.request_preemptions.observe(preemptions)

    def render(self) -> bytes:
        """Prometheus text exposition format 0.0.4."""
        return generate_latest(self.registry)


class FastHistogram:
    """One labelled histogram series for a single-threaded owner (the event loop): ``observe`` is a bisect and two
    additions, ``observe_many`` adds ``count`` equal values at once. A registry collector (``collect``)."""

    def __init__(
        self, name: str, documentation: str, buckets_s: Sequence[float], labels: dict[str, str]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.upper = tuple(float(b) for b in buckets_s)
        self.labels = labels
        self.counts = [0] * (len(self.upper) + 1)  # the last one: above every finite bucket (+Inf)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.upper, value)] += 1
        self.sum += value

    def observe_many(self, value: float, count: int) -> None:
        self.counts[bisect_left(self.upper, value)] += count
        self.sum += value * count

    @property
    def count(self) -> int:
        return sum(self.counts)

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> list[Metric]:
        names, values = list(self.labels), list(self.labels.values())
        family = HistogramMetricFamily(self.name, self.documentation, labels=names)
        cumulative, buckets = 0, []
        for upper, count in zip((*self.upper, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((_go_float(upper), float(cumulative)))
        family.add_metric(values, buckets, self.sum)
        created = GaugeMetricFamily(f"{self.name}_created", self.documentation, labels=names)
        created.add_metric(values, self.created)
        return [family, created]
