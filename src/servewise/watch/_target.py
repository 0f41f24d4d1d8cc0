"""What the deployment being watched was planned to do: one option of a plan document (``servewise plan … -o
plan.json``, docs/plan-json.md) as a ``WatchTarget``.

Why read the document and not re-plan: ``watch`` judges the deployment against what was promised when it was
deployed — the option's replicas, price and predictions as written then — even if the catalog changed since.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from servewise.errors import UsageError
from servewise.planner import check_plan_document, load_plan_document

from ._observation import WatchTarget

__all__ = ["BACKEND", "load_target", "target_from_plan"]

BACKEND = "vllm"
"""Plans size vLLM replicas (the plan's ``engine`` assumption); the simulator and ``deploy`` do the same."""
_METRICS = ("ttft", "itl", "e2e")
_PERCENTILES = ("p50", "p90", "p95", "p99")
_HOW = "write the plan with `servewise plan ... -o plan.json`"


def _option(document: dict[str, Any], option_rank: int | None, plan_path: str) -> dict[str, Any]:
    options = document["options"]
    if option_rank is None:
        chosen = document.get("chosen")
        if not isinstance(chosen, int) or not 0 <= chosen < len(options):
            raise UsageError(f"{plan_path} has no chosen option; name one with --option RANK")
        option = options[chosen]
    else:
        option = next((o for o in options if isinstance(o, dict) and o.get("rank") == option_rank), None)
        if option is None:
            ranks = [
                int(o["rank"]) for o in options if isinstance(o, dict) and isinstance(o.get("rank"), int)
            ]
            raise UsageError(
                f"{plan_path} has no option of rank {option_rank}; pick --option {min(ranks)} to {max(ranks)}"
                if ranks
                else f"{plan_path} has no ranked options; {_HOW}"
            )
    if not isinstance(option, dict):
        raise UsageError(f"{plan_path}: an option is not an object; {_HOW}")
    return option


def _seconds(block: dict[str, Any], suffix: str = "_ms") -> dict[str, float]:
    """``{"ttft_p95_ms": 150}`` → ``{"ttft_p95": 0.15}`` (nulls dropped)."""
    return {
        key.removesuffix(suffix): float(value) / 1000.0
        for key, value in block.items()
        if key.endswith(suffix) and isinstance(value, int | float) and not isinstance(value, bool)
    }


def _predicted(perf: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in _METRICS:
        block = perf.get(metric) or {}
        for percentile in _PERCENTILES:
            value = block.get(f"{percentile}_ms")
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{metric}_{percentile}"] = float(value) / 1000.0
    return out


def target_from_plan(document: dict[str, Any], plan_path: str, option_rank: int | None = None) -> WatchTarget:
    """The option of rank ``option_rank`` (default: the plan's chosen one) of a plan document.

    ``predicted_s`` holds every percentile the plan predicted (``ttft_p50`` … ``e2e_p99``), ``slo_targets_s`` the
    workload's SLO targets; both in seconds. ``usd_per_gpu_hour`` is the option's $/hour over its GPUs (over its
    instances for a CPU option)."""
    document = check_plan_document(document, plan_path)
    option = _option(document, option_rank, plan_path)
    try:
        candidate, perf, cost = option["candidate"], option["perf"], option["cost"]
        workload = document["workload"]
        traffic = workload["traffic"]
        replicas = int(option["replicas"])
        gpus_total = int(option.get("gpus_total") or 0)
        usd_per_hour = float(cost["usd_per_hour"])
        tp = int(candidate["tp"])
        target = WatchTarget(
            plan_path=plan_path,
            option_rank=int(option["rank"]),
            model=str(candidate["model"]),
            gpu=str(candidate["gpu"]),
            gpu_count=tp if candidate.get("cpu") is None else 0,
            tp=tp,
            precision=str(candidate["precision"]),
            backend=BACKEND,
            replicas=replicas,
            usd_per_hour=usd_per_hour,
            usd_per_month=float(cost["usd_per_month"]),
            usd_per_gpu_hour=usd_per_hour / (gpus_total if gpus_total > 0 else max(1, replicas)),
            budget_usd_month=(
                None if workload.get("budget_usd_month") is None else float(workload["budget_usd_month"])
            ),
            slo_targets_s=_seconds(dict(workload.get("slo") or {})),
            predicted_s=_predicted(perf),
            peak_qps=float(document["peak_qps"]),
            max_qps_per_replica=float(perf["max_qps_per_replica"]),
            prompt_tokens_mean=float(traffic["prompt_tokens"]["mean"]),
            output_tokens_mean=float(traffic["output_tokens"]["mean"]),
            engine=dict(candidate.get("engine") or {}),
            workload=dict(workload),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(
            f"{plan_path}: option {option.get('rank', '?')} is incomplete ({type(err).__name__}: {err}); {_HOW}"
        ) from None
    if replicas < 1:
        raise UsageError(f"{plan_path}: option {target.option_rank} has {replicas} replicas; {_HOW}")
    return target


def load_target(path: Path, option_rank: int | None = None) -> WatchTarget:
    """``target_from_plan`` of the plan file at ``path`` (one-line errors for a missing or malformed file)."""
    return target_from_plan(load_plan_document(path), str(path), option_rank)
