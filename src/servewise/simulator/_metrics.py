"""``/metrics``: the simulated replica's state and request latencies under vLLM's Prometheus names.

Names, label (``model_name``, plus ``engine="0"`` as vLLM V1 adds) and histogram buckets follow vLLM's
``PrometheusStatLogger`` (vllm-project/vllm ``vllm/v1/metrics/loggers.py``): TTFT buckets 1 ms … 2560 s, per-token
buckets 10 ms … 80 s (``time_per_output_token_seconds`` and its successor ``inter_token_latency_seconds``), request
latency buckets 0.3 s … 7680 s; ``kv_cache_usage_perc`` is a fraction (1 = full) and the older
``gpu_cache_usage_perc`` carries the same value. Each server has its own registry, so several servers in one process
(tests) never share series.

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

__all__ = ["LATENESS_BUCKETS_S", "FastHistogram", "ReplicaMetrics"]

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
LATENESS_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
_LABELS = ("model_name", "engine")


class ReplicaMetrics:
    """The series of one simulated replica; the server sets and observes them, ``render`` writes the text."""

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = (model_name, "0")
        reg = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _LABELS, registry=reg).labels(*labels)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _LABELS, registry=reg).labels(*labels)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> FastHistogram:
            metric = FastHistogram(name, doc, buckets, dict(zip(_LABELS, labels, strict=True)))
            reg.register(metric)
            return metric

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.gpu_cache_usage = gauge(
            "vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage. (older name)"
        )
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        self.request_success = counter("vllm:request_success", "Count of successfully processed requests.")
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS_S
        )
        self.tpot = histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            TOKEN_BUCKETS_S,
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
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
        self.lateness = histogram(
            "servewise:token_emission_lateness_seconds",
            "How late each token reached its stream against the simulated schedule (simulator timing error).",
            LATENESS_BUCKETS_S,
        )

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
