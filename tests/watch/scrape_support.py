"""Hand-written Prometheus expositions for the watch tests: a vLLM replica's and a Servewise gateway's ``/metrics``
text in the exact shape ``prometheus_client`` writes (``_total`` counters with ``_created``, cumulative buckets),
so every number a test expects can be worked out by hand."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
from collections.abc import Mapping

from servewise.bench import OpenAIStreamClient, RequestRecord, RequestShape, run_closed_loop
from servewise.watch._observation import Observation, Sample

__all__ = [
    "CONCURRENCY",
    "OUTPUT_TOKENS",
    "PROMPT_TOKENS",
    "drive_load",
    "gateway_text",
    "make_observation",
    "vllm_text",
]

PROMPT_TOKENS, OUTPUT_TOKENS, CONCURRENCY = 256, 8, 3
"""The load tests send: short outputs keep each request under ~1 s on a simulated replica at real time, whichever
L4 option the plan picks (one L4 decodes Llama-3.1-8B at ~80 ms per token; 24 tokens took ~2 s and made the window
tests flaky)."""


def _labels(pairs: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _histogram(
    name: str, base: Mapping[str, str], buckets: Mapping[float, float], sum_: float, created: float
) -> str:
    lines = [f"# TYPE {name} histogram"]
    for bound, count in sorted(buckets.items()):
        lines.append(f"{name}_bucket{_labels({**base, 'le': _le(bound)})} {count}")
    lines.append(f"{name}_count{_labels(base)} {buckets[math.inf]}")
    lines.append(f"{name}_sum{_labels(base)} {sum_}")
    lines.append(f"# TYPE {name}_created gauge\n{name}_created{_labels(base)} {created}")
    return "\n".join(lines)


def _counter(name: str, rows: Mapping[tuple[tuple[str, str], ...], float], created: float) -> str:
    lines = [f"# TYPE {name} counter"]
    for labels, value in rows.items():
        lines.append(f"{name}_total{_labels(dict(labels))} {value}")
    lines.append(f"# TYPE {name}_created gauge")
    for labels in rows:
        lines.append(f"{name}_created{_labels(dict(labels))} {created}")
    return "\n".join(lines)


def vllm_text(
    *,
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    running: float = 0.0,
    waiting: float = 0.0,
    kv: float | None = 0.0,
    finished: Mapping[str, float] | None = None,
    prompt_tokens: float = 0.0,
    generation_tokens: float = 0.0,
    preemptions: float = 0.0,
    ttft: Mapping[float, float] | None = None,
    ttft_sum: float = 0.0,
    e2e: Mapping[float, float] | None = None,
    created: float = 100.0,
) -> str:
    """One replica's ``/metrics`` (labels ``model_name`` and ``engine="0"`` as vLLM V1 writes them)."""
    base = {"model_name": model, "engine": "0"}
    key = tuple(sorted(base.items()))
    parts = [
        f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{_labels(base)} {running}",
        f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{_labels(base)} {waiting}",
    ]
    if kv is not None:
        parts.append(f"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{_labels(base)} {kv}")
    reasons = finished if finished is not None else {"stop": 0.0}
    parts.append(
        _counter(
            "vllm:request_success",
            {tuple(sorted({**base, "finished_reason": r}.items())): n for r, n in reasons.items()},
            created,
        )
    )
    parts.append(_counter("vllm:prompt_tokens", {key: prompt_tokens}, created))
    parts.append(_counter("vllm:generation_tokens", {key: generation_tokens}, created))
    parts.append(_counter("vllm:num_preemptions", {key: preemptions}, created))
    parts.append(
        _histogram(
            "vllm:time_to_first_token_seconds", base, ttft or {0.1: 0.0, math.inf: 0.0}, ttft_sum, created
        )
    )
    parts.append(
        _histogram("vllm:e2e_request_latency_seconds", base, e2e or {1.0: 0.0, math.inf: 0.0}, 0.0, created)
    )
    return "\n".join(parts) + "\n"


def gateway_text(
    requests: Mapping[tuple[str, str, str], tuple[float, float]],
    *,
    spend_usd: float,
    pools: tuple[str, ...] = (),
    created: float = 100.0,
) -> str:
    """A gateway's ``/metrics``: ``requests`` maps (route, decision, status) → (count, its series' ``_created``)."""
    lines = ["# TYPE servewise_gateway_requests counter"]
    for (route, decision, status), (count, _) in requests.items():
        labels = _labels({"org": "acme", "team": "", "route": route, "decision": decision, "status": status})
        lines.append(f"servewise_gateway_requests_total{labels} {count}")
    lines.append("# TYPE servewise_gateway_requests_created gauge")
    for (route, decision, status), (_, born) in requests.items():
        labels = _labels({"org": "acme", "team": "", "route": route, "decision": decision, "status": status})
        lines.append(f"servewise_gateway_requests_created{labels} {born}")
    spend = _labels({"org": "acme", "team": "", "route": "all", "decision": "local"})
    lines += [
        "# TYPE servewise_gateway_spend_usd counter",
        f"servewise_gateway_spend_usd_total{spend} {spend_usd}",
        "# TYPE servewise_gateway_spend_usd_created gauge",
        f"servewise_gateway_spend_usd_created{spend} {created}",
        "# TYPE servewise_gateway_pool_up gauge",
    ]
    lines += [f'servewise_gateway_pool_up{{pool="{pool}"}} 1.0' for pool in pools]
    return "\n".join(lines) + "\n"


def make_observation(**overrides: object) -> Observation:
    """A 60 s window of two replicas with round numbers (TTFT histogram: 100 requests, 90 within 0.5 s)."""
    ttft = {0.25: 50.0, 0.5: 90.0, 1.0: 98.0, math.inf: 100.0}
    sample = Sample(
        t_s=60.0, interval_s=60.0, replicas=2, qps=100 / 60, running=4.0, waiting=0.0, kv_cache_usage_ratio=0.2,
        ttft_p95_s=0.75, itl_p95_s=0.03, e2e_p95_s=5.0, spend_usd_per_hour=None,
    )  # fmt: skip
    base = Observation(
        source="scrape",
        endpoints=("http://a:8000/metrics", "http://b:8000/metrics"),
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        started_at="2026-11-25T10:00:00+00:00",
        ended_at="2026-11-25T10:01:00+00:00",
        window_s=60.0,
        replicas=2,
        replicas_mean=2.0,
        requests=100,
        qps=100 / 60,
        qps_peak=100 / 60,
        prompt_tokens_mean=512.0,
        output_tokens_mean=128.0,
        prompt_tokens_p95=None,
        output_tokens_p95=None,
        ttft_s={0.5: 0.25, 0.9: 0.5, 0.95: 0.75, 0.99: 1.0},
        itl_s={0.5: 0.02, 0.9: 0.025, 0.95: 0.03, 0.99: 0.04},
        e2e_s={0.5: 3.0, 0.9: 4.0, 0.95: 5.0, 0.99: 6.0},
        queue_s={0.5: 0.0, 0.9: 0.1, 0.95: 0.2, 0.99: 0.3},
        kv_cache_usage_mean=0.2,
        kv_cache_usage_max=0.3,
        running_mean=4.0,
        waiting_mean=0.0,
        waiting_max=0.0,
        preemptions=0,
        generation_tokens_per_s=100 * 128 / 60,
        errors=0,
        error_rate=0.0,
        fallback_share=None,
        local_ratio=None,
        spend_usd=None,
        spend_usd_per_hour=None,
        schema_valid_ratio=None,
        samples=(sample,),
        warnings=(),
        histograms={"ttft": ttft},
        ttft_mean_s=0.3,
        itl_mean_s=0.021,
        e2e_mean_s=3.1,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


async def drive_load(
    urls: list[str], model: str, *, delay_s: float, duration_s: float
) -> list[RequestRecord]:
    """``servewise.bench``'s closed loop: ``CONCURRENCY`` clients on each replica for ``duration_s`` after
    ``delay_s``; every request's record."""
    await asyncio.sleep(delay_s)
    clients = [OpenAIStreamClient(url, model=model) for url in urls]
    try:
        runs = await asyncio.gather(
            *(
                run_closed_loop(
                    client,
                    CONCURRENCY,
                    itertools.repeat(RequestShape(PROMPT_TOKENS, OUTPUT_TOKENS)),
                    requests=None,
                    duration_s=duration_s,
                    indices=itertools.count(),
                )
                for client in clients
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    return [record for run in runs for record in run]
