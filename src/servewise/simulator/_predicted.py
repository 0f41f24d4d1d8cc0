"""What the model predicts for a closed-loop benchmark point against the simulator: the same ``perf.simulate`` run
on the same step model and engine the server replays, so a load generator can put measured next to predicted.

Differences from ``servewise predict --concurrency``: lengths are exactly ``prompt_tokens`` / ``output_tokens`` (a
load generator sends fixed lengths; ``predict`` draws them from [0.8 × len, len] like the InferenceX harness) and
the engine is the server's (``max_num_seqs`` of the served replica, not the harness's "sequence cap = concurrency").
"""

from __future__ import annotations

from servewise.errors import UsageError
from servewise.perf import closed_loop, simulate, uniform_lengths

from ._config import SimulatorConfig

__all__ = ["QUANTILES", "predicted_point"]

QUANTILES = (50, 90, 95, 99)
REQUESTS_PER_CLIENT = 10
"""Requests simulated per client when ``requests`` is not given (the benchmark harness's 10 × concurrency)."""


def predicted_point(
    config: SimulatorConfig,
    *,
    prompt_tokens: int,
    output_tokens: int,
    concurrency: int,
    requests: int | None = None,
    range_ratio: float = 1.0,
    seed: int | None = None,
) -> dict[str, float]:
    """``ttft|itl|tpot|e2e_p50|p90|p95|p99_ms``, their ``_mean_ms``, ``output_tokens_per_s`` and ``requests_per_s``
    of ``concurrency`` clients each sending its next request when the last one completes (simulated seconds).

    ``range_ratio`` < 1 draws each request's lengths from [ratio × len, len] (``servewise bench --range-ratio``);
    ``seed`` defaults to the server's."""
    if min(prompt_tokens, output_tokens, concurrency) < 1:
        raise UsageError("prompt_tokens, output_tokens and concurrency must be >= 1")
    if prompt_tokens + output_tokens > config.max_model_len:
        raise UsageError(
            f"prompt_tokens + output_tokens = {prompt_tokens + output_tokens} exceeds max_model_len "
            f"{config.max_model_len}; the server would refuse these requests"
        )
    n = requests or REQUESTS_PER_CLIENT * concurrency
    workload = closed_loop(
        concurrency,
        n,
        uniform_lengths(prompt_tokens, output_tokens, range_ratio),
        seed=config.seed if seed is None else seed,
    )
    result = simulate(config.step, config.engine, workload, prefix_hit_ratio=config.prefix_hit_ratio)
    point: dict[str, float] = {}
    for metric in ("ttft", "itl", "tpot", "e2e"):
        for q in QUANTILES:
            point[f"{metric}_p{q}_ms"] = result.percentile(metric, q) * 1000.0
    for metric in ("ttft", "tpot", "e2e"):
        point[f"{metric}_mean_ms"] = result.mean(metric) * 1000.0
    point["output_tokens_per_s"] = result.output_tokens_per_s
    point["requests_per_s"] = result.requests_per_s
    point["preemptions"] = float(result.preemptions)
    return point
