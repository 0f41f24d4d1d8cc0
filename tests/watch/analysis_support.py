"""Realistic inputs for the efficiency, right-sizing and drift tests: a real plan (planner on the packaged catalog)
turned into a ``WatchTarget`` by ``target_from_plan``, and ``Observation`` objects built as the scrape would."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from functools import cache

from servewise.catalog import CatalogSnapshot, load_packaged
from servewise.planner import make_plan, plan_document
from servewise.watch._observation import Observation, Sample, WatchTarget
from servewise.watch._target import target_from_plan
from servewise.workload import Workload, build_workload

CHATBOT_SLO_MS = {"ttft_p95_ms": 150.0, "itl_p95_ms": 25.0, "e2e_p95_ms": 7000.0}


@cache
def snapshot() -> CatalogSnapshot:
    """The packaged catalog (models, GPUs, offers), without a database."""
    packaged = load_packaged(benchmarks=False)
    return CatalogSnapshot(
        accelerators=tuple(packaged.accelerators),
        models=tuple(packaged.models),
        offers=tuple(packaged.offers),
        api_prices=tuple(packaged.api_prices),
        use_cases=tuple(packaged.use_cases),
        cpus=tuple(packaged.cpus),
    )


def workload(
    *,
    qps: float = 5.0,
    model: str = "Llama-3.1-8B",
    gpus: Sequence[str] = ("L4",),
    precisions: Sequence[str] = ("bf16", "fp8"),
    prompt: dict[str, object] | float = 512,
    output: dict[str, object] | float = 256,
    peak_factor: float = 1.0,
    slo: dict[str, float] | None = None,
) -> Workload:
    """A chatbot workload (the template's SLO) restricted to one model and some GPUs."""
    return build_workload(
        template=None,
        file_data={
            "name": "chatbot",
            "use_case": "chatbot_conversational",
            "traffic": {
                "qps": qps,
                "peak_factor": peak_factor,
                "prompt_tokens": prompt,
                "output_tokens": output,
            },
            "slo": slo or CHATBOT_SLO_MS,
            "constraints": {
                "models": [model],
                "gpus": list(gpus),
                "precisions": list(precisions),
                "cpu": False,
            },
        },
        overrides={},
        source="test",
    )


@cache
def _target(key: str) -> WatchTarget:
    w = workload(**json.loads(key))
    document = plan_document(make_plan(w, snapshot()))
    return target_from_plan(document, "plan.json")


def target(**kwargs: object) -> WatchTarget:
    """The chosen option of a real plan of ``workload(**kwargs)`` (cached per arguments)."""
    return _target(json.dumps(kwargs, sort_keys=True))


def restricted(t: WatchTarget, **constraints: object) -> WatchTarget:
    """``t`` with its plan's workload constraints replaced (what the user allowed when planning)."""
    block = dict(t.workload)
    current = block["constraints"]
    assert isinstance(current, dict)
    block["constraints"] = {**current, **constraints}
    return dataclasses.replace(t, workload=block)


def samples(qps: Sequence[float], *, interval_s: float = 10.0, replicas: int = 2) -> tuple[Sample, ...]:
    """One sample per interval with the given QPS (other series plausible and constant)."""
    return tuple(
        Sample(
            t_s=(i + 1) * interval_s,
            interval_s=interval_s,
            replicas=replicas,
            qps=q,
            running=q * 4.5,
            waiting=0.0,
            kv_cache_usage_ratio=0.02,
            ttft_p95_s=0.12,
            itl_p95_s=0.018,
            e2e_p95_s=4.6,
            spend_usd_per_hour=None,
        )
        for i, q in enumerate(qps)
    )


def observation(
    *,
    qps: float = 2.0,
    series: Sequence[float] | None = None,
    interval_s: float = 10.0,
    replicas: int = 2,
    prompt_mean: float | None = 512.0,
    output_mean: float | None = 256.0,
    prompt_p95: float | None = None,
    output_p95: float | None = None,
    ttft: tuple[float, float] = (0.09, 0.14),
    itl: tuple[float, float] = (0.014, 0.018),
    e2e: tuple[float, float] = (3.8, 4.6),
    running_mean: float | None = None,
    waiting_mean: float | None = 0.0,
    kv_max: float | None = 0.03,
    means: tuple[float, float, float] | None = None,
) -> Observation:
    """A window of ``len(series)`` intervals (default: 12 at ``qps``) on ``replicas`` replicas."""
    series = list(series) if series is not None else [qps] * 12
    window_s = interval_s * len(series)
    mean_qps = sum(series) / len(series)
    requests = round(mean_qps * window_s)
    running = running_mean if running_mean is not None else mean_qps * e2e[0]
    ttft_mean, itl_mean, e2e_mean = means if means is not None else (None, None, None)
    return Observation(
        source="scrape",
        endpoints=("http://10.0.0.5:8000/metrics", "http://10.0.0.6:8000/metrics"),
        model_name="meta-llama/Llama-3.1-8B-Instruct",
        started_at="2026-11-25T10:00:00Z",
        ended_at="2026-11-25T10:02:00Z",
        window_s=window_s,
        replicas=replicas,
        replicas_mean=float(replicas),
        requests=requests,
        qps=requests / window_s if window_s else 0.0,
        qps_peak=max(series),
        prompt_tokens_mean=prompt_mean if requests else None,
        output_tokens_mean=output_mean if requests else None,
        prompt_tokens_p95=prompt_p95,
        output_tokens_p95=output_p95,
        ttft_s={0.5: ttft[0], 0.95: ttft[1]} if requests else {0.5: None, 0.95: None},
        itl_s={0.5: itl[0], 0.95: itl[1]} if requests else {0.5: None, 0.95: None},
        e2e_s={0.5: e2e[0], 0.95: e2e[1]} if requests else {0.5: None, 0.95: None},
        queue_s={0.5: 0.0, 0.95: 0.01},
        kv_cache_usage_mean=kv_max / 2 if kv_max is not None else None,
        kv_cache_usage_max=kv_max,
        running_mean=running if requests or running_mean is not None else 0.0,
        waiting_mean=waiting_mean,
        waiting_max=waiting_mean,
        preemptions=0,
        generation_tokens_per_s=mean_qps * (output_mean or 0.0),
        errors=0,
        error_rate=0.0 if requests else None,
        fallback_share=None,
        local_ratio=None,
        spend_usd=None,
        spend_usd_per_hour=None,
        schema_valid_ratio=None,
        samples=samples(series, interval_s=interval_s, replicas=replicas),
        ttft_mean_s=ttft_mean,
        itl_mean_s=itl_mean,
        e2e_mean_s=e2e_mean,
    )
