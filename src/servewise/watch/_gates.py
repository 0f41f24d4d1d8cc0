"""Validation gates: checks a cost-managed deployment must pass, so ``servewise watch`` can fail a CI/CD step.

A gate is ``metric ≤ threshold`` (``max``) or ``metric ≥ threshold`` (``min``) on one observed number
(``observed_metrics``). A gate whose metric was not observed (no gateway metrics, no finished request) is *skipped*:
it passes unless it is ``required``. A ``max`` gate on a latency percentile (``ttft_p95_s``, ``queue_p99_s``, …)
is decided by the histogram bucket holding the percentile (``_compliance.bucket_verdict``): passed when the bucket
ends at or below the threshold, failed when it starts at or above it, and *undecided* (``passed`` is ``None``,
like a skipped gate) when the threshold lies inside it — unless the gate says ``inside_bucket: interpolate``, which
decides by Prometheus's interpolated value as an alert on ``histogram_quantile`` would.

Built-in gates (``default_gates``):

| gate | metric | check | default |
|---|---|---|---|
| ``ttft_p95``, ``itl_p95``, ``e2e_p95`` (each SLO of the plan) | ``<slo>_s`` | max | the SLO target |
| ``error_rate`` | ``error_rate`` | max | 0.01 |
| ``schema_valid`` | ``schema_valid_ratio`` | min | 0.995 |
| ``fallback_share`` | ``fallback_share`` | max | 0.10 |
| ``local_ratio`` | ``local_ratio`` | min | off; on when a gates file gives ``min`` |
| ``preemption_storm`` | ``preemptions_per_request`` | max | 0.05 |
| ``budget_pace`` | ``spend_usd_per_month_pace`` | max | the workload's ``budget_usd_month`` (when set) |

A YAML file (``--gates gates.yaml``, docs/watch.md) changes thresholds, makes gates required, disables them, or
adds gates on any observed metric::

    gates:
      ttft_p95: {max: 0.2}
      error_rate: {max: 0.02, required: true}
      fallback_share: {enabled: false}
      local_ratio: {min: 0.9}
      queue_p95: {metric: queue_p95_s, max: 0.5}
      itl_p95: {inside_bucket: interpolate}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from servewise.errors import UsageError, did_you_mean

from ._compliance import PERCENTILE_QUANTILES, SLO_METRICS, bucket_verdict, split_slo_key
from ._observation import GateResult, Observation, WatchTarget

__all__ = [
    "HOURS_PER_MONTH",
    "METRIC_NAMES",
    "GateSpec",
    "default_gates",
    "evaluate_gates",
    "gates_from_config",
    "load_gates",
    "observed_metrics",
]

HOURS_PER_MONTH = 730.0
"""The month every Servewise cost uses (docs/cost.md)."""
GateOp = Literal["max", "min"]
InsideBucket = Literal["undecided", "interpolate"]
_ALLOWED_KEYS = frozenset({"max", "min", "required", "enabled", "metric", "description", "inside_bucket"})
_HISTOGRAM_METRICS = (*SLO_METRICS, "queue")
_DOC = "see docs/watch.md (Gates)"


@dataclass(frozen=True, slots=True)
class GateSpec:
    """One gate to evaluate: ``metric`` ≤ (``max``) or ≥ (``min``) ``threshold``."""

    name: str
    metric: str
    op: GateOp
    threshold: float
    description: str
    required: bool = False
    inside_bucket: InsideBucket = "undecided"
    """For a ``max`` gate on a latency percentile whose threshold lies inside the bucket holding it."""


def observed_metrics(observation: Observation) -> dict[str, float | None]:
    """Every number a gate can check, by name (``None``: not observed in the window)."""
    o = observation
    out: dict[str, float | None] = {}
    for metric, quantiles in (("ttft", o.ttft_s), ("itl", o.itl_s), ("e2e", o.e2e_s), ("queue", o.queue_s)):
        for percentile, q in PERCENTILE_QUANTILES.items():
            out[f"{metric}_{percentile}_s"] = quantiles.get(q)
    per_request = o.preemptions / o.requests if o.requests > 0 else None
    pace = None if o.spend_usd_per_hour is None else o.spend_usd_per_hour * HOURS_PER_MONTH
    out |= {
        "ttft_mean_s": o.ttft_mean_s,
        "itl_mean_s": o.itl_mean_s,
        "e2e_mean_s": o.e2e_mean_s,
        "qps": o.qps,
        "qps_peak": o.qps_peak,
        "requests": float(o.requests),
        "replicas": float(o.replicas),
        "replicas_mean": o.replicas_mean,
        "error_rate": o.error_rate,
        "fallback_share": o.fallback_share,
        "local_ratio": o.local_ratio,
        "schema_valid_ratio": o.schema_valid_ratio,
        "kv_cache_usage_mean": o.kv_cache_usage_mean,
        "kv_cache_usage_max": o.kv_cache_usage_max,
        "running_mean": o.running_mean,
        "waiting_mean": o.waiting_mean,
        "waiting_max": o.waiting_max,
        "preemptions": float(o.preemptions),
        "preemptions_per_request": per_request,
        "generation_tokens_per_s": o.generation_tokens_per_s,
        "prompt_tokens_mean": o.prompt_tokens_mean,
        "output_tokens_mean": o.output_tokens_mean,
        "prompt_tokens_p95": o.prompt_tokens_p95,
        "output_tokens_p95": o.output_tokens_p95,
        "spend_usd": o.spend_usd,
        "spend_usd_per_hour": o.spend_usd_per_hour,
        "spend_usd_per_month_pace": pace,
    }
    return out


METRIC_NAMES: tuple[str, ...] = tuple(
    [f"{m}_{p}_s" for m in (*SLO_METRICS, "queue") for p in PERCENTILE_QUANTILES]
    + [
        "ttft_mean_s", "itl_mean_s", "e2e_mean_s", "qps", "qps_peak", "requests", "replicas", "replicas_mean",
        "error_rate", "fallback_share", "local_ratio", "schema_valid_ratio", "kv_cache_usage_mean",
        "kv_cache_usage_max", "running_mean", "waiting_mean", "waiting_max", "preemptions",
        "preemptions_per_request", "generation_tokens_per_s", "prompt_tokens_mean", "output_tokens_mean",
        "prompt_tokens_p95", "output_tokens_p95", "spend_usd", "spend_usd_per_hour", "spend_usd_per_month_pace",
    ]
)  # fmt: skip

_BUILT_IN: dict[str, tuple[str, GateOp, float | None, str]] = {
    "error_rate": ("error_rate", "max", 0.01, "failed requests over all requests"),
    "schema_valid": (
        "schema_valid_ratio",
        "min",
        0.995,
        "JSON outputs the gateway validated as schema-valid",
    ),
    "fallback_share": (
        "fallback_share",
        "max",
        0.10,
        "requests answered by a hosted API or a fallback route",
    ),
    "local_ratio": ("local_ratio", "min", None, "requests answered by a local pool"),
    "preemption_storm": ("preemptions_per_request", "max", 0.05, "vLLM preemptions per finished request"),
    "budget_pace": (
        "spend_usd_per_month_pace",
        "max",
        None,
        "gateway spend at this pace for a month vs budget",
    ),
}
"""name → (metric, op, default threshold or None = off unless configured, description)."""


def _slo_description(key: str) -> str:
    parsed = split_slo_key(key)
    metric, quantile = parsed if parsed else (key, 0.0)
    return f"p{round(quantile * 100)} {metric.upper()} within the plan's SLO (seconds)"


def _slo_names() -> list[str]:
    return [f"{m}_{p}" for m in SLO_METRICS for p in PERCENTILE_QUANTILES]


def default_gates(target: WatchTarget) -> list[GateSpec]:
    """The built-in gates for ``target`` (module docstring): one per SLO, then the deployment checks."""
    gates = [
        GateSpec(key, f"{key}_s", "max", value, _slo_description(key))
        for key, value in target.slo_targets_s.items()
        if split_slo_key(key) is not None
    ]
    for name, (metric, op, threshold, description) in _BUILT_IN.items():
        if name == "budget_pace":
            threshold = target.budget_usd_month
        if threshold is not None:
            gates.append(GateSpec(name, metric, op, threshold, description))
    return gates


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"{where} must be a number (got {value!r}); {_DOC}")
    return float(value)


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where} must be true or false (got {value!r}); {_DOC}")
    return value


def _bound(entry: Mapping[str, Any], where: str) -> tuple[GateOp, float] | None:
    given = [op for op in ("max", "min") if op in entry]
    if len(given) > 1:
        raise UsageError(f"{where}: give either max or min, not both; {_DOC}")
    if not given:
        return None
    op: GateOp = "max" if given[0] == "max" else "min"
    return op, _number(entry[op], f"{where}.{op}")


def _configured(
    name: str, entry: Mapping[str, Any], existing: GateSpec | None, where: str
) -> GateSpec | None:
    """The gate ``name`` after applying ``entry``; ``None`` when it ends up off."""
    unknown = sorted(set(entry) - _ALLOWED_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown key {unknown[0]!r}; use max, min, required, enabled, metric, description, "
            f"inside_bucket; {_DOC}"
        )
    enabled = _flag(entry.get("enabled", True), f"{where}.enabled")
    bound = _bound(entry, where)
    builtin = _BUILT_IN.get(name)
    if name in _slo_names():
        builtin = (f"{name}_s", "max", None, _slo_description(name))
    if builtin is not None:
        metric, op, _, description = builtin
        if "metric" in entry and entry["metric"] != metric:
            raise UsageError(
                f"{where}: the built-in gate {name} checks {metric}; name a new gate to check another"
            )
        if bound is not None and bound[0] != op:
            raise UsageError(
                f"{where}: {name} is {'an upper' if op == 'max' else 'a lower'} bound; use {op}:"
            )
    else:
        named = entry.get("metric")
        if not isinstance(named, str):
            raise UsageError(
                f"{where}: a new gate needs metric: (one of {', '.join(METRIC_NAMES[:6])}, …); {_DOC}"
            )
        metric = named
        if metric not in METRIC_NAMES:
            close = did_you_mean(metric, METRIC_NAMES)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise UsageError(f"{where}: unknown metric {metric!r}; {hint}{_DOC}")
        if bound is None:
            raise UsageError(f"{where}: a new gate needs max: or min: (its threshold); {_DOC}")
        op, description = bound[0], f"{metric} {'≤' if bound[0] == 'max' else '≥'} threshold"
    if not enabled:
        return None
    threshold = bound[1] if bound is not None else (existing.threshold if existing else None)
    if threshold is None:
        raise UsageError(f"{where}: {name} has no default threshold; give {op}: to turn it on")
    text = entry.get("description", existing.description if existing else description)
    inside = entry.get("inside_bucket", existing.inside_bucket if existing else "undecided")
    if inside not in ("undecided", "interpolate"):
        raise UsageError(f"{where}.inside_bucket must be undecided or interpolate (got {inside!r}); {_DOC}")
    return GateSpec(
        name=name,
        metric=metric,
        op=op,
        threshold=threshold,
        description=str(text),
        required=_flag(entry.get("required", existing.required if existing else False), f"{where}.required"),
        inside_bucket="interpolate" if inside == "interpolate" else "undecided",
    )


def gates_from_config(data: object, target: WatchTarget, where: str = "the gates file") -> list[GateSpec]:
    """The built-in gates of ``target`` changed by a parsed gates document (module docstring)."""
    if data is None:
        return default_gates(target)
    if not isinstance(data, dict) or not isinstance(data.get("gates"), dict) or set(data) - {"gates"}:
        raise UsageError(f"{where} must hold one mapping `gates:` of gate name → settings; {_DOC}")
    gates = {gate.name: gate for gate in default_gates(target)}
    for name, entry in data["gates"].items():
        at = f"{where}: gates.{name}"
        if not isinstance(entry, dict):
            raise UsageError(f"{at} must be a mapping such as {{max: 0.2}} or {{enabled: false}}; {_DOC}")
        gate = _configured(str(name), entry, gates.get(str(name)), at)
        if gate is None:
            gates.pop(str(name), None)
        else:
            gates[gate.name] = gate
    return list(gates.values())


def load_gates(path: Path, target: WatchTarget) -> list[GateSpec]:
    """``gates_from_config`` of the YAML file at ``path``; one-line errors for a missing or malformed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"gates file {path} does not exist; check --gates") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read gates file {path} ({err}); check --gates") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise UsageError(f"gates file {path} is not valid YAML ({line}{problem}); {_DOC}") from None
    return gates_from_config(data, target, f"gates file {path}")


def _histogram_of(gate: GateSpec) -> tuple[str, float] | None:
    """(metric, quantile) when ``gate`` is a ``max`` gate on a latency percentile decided by its bucket."""
    if gate.op != "max" or gate.inside_bucket == "interpolate" or not gate.metric.endswith("_s"):
        return None
    metric, _, percentile = gate.metric.removesuffix("_s").partition("_")
    quantile = PERCENTILE_QUANTILES.get(percentile)
    return (metric, quantile) if metric in _HISTOGRAM_METRICS and quantile is not None else None


def _verdict(gate: GateSpec, observed: float | None, observation: Observation) -> bool | None:
    if observed is None:
        return None
    histogram = _histogram_of(gate)
    if histogram is not None:
        metric, quantile = histogram
        return bucket_verdict(quantile, gate.threshold, observed, observation.histograms.get(metric))
    return observed <= gate.threshold if gate.op == "max" else observed >= gate.threshold


def _reason(gate: GateSpec, observed: float | None, passed: bool | None) -> str:
    sign = "≤" if gate.op == "max" else "≥"
    if observed is None:
        return "not observed in the window" + ("; the gate is required" if gate.required else ": skipped")
    if passed is None:
        return (
            f"undecided: {gate.threshold:.4g} lies inside the histogram bucket holding {gate.metric} "
            f"(interpolated {observed:.4g})" + ("; the gate is required" if gate.required else "")
        )
    ok = observed <= gate.threshold if gate.op == "max" else observed >= gate.threshold
    relation = sign if ok else (">" if gate.op == "max" else "<")
    return f"{gate.metric} {observed:.4g} {relation} {gate.threshold:.4g}"


def evaluate_gates(gates: Sequence[GateSpec], observation: Observation) -> tuple[GateResult, ...]:
    """Each gate against the observation; ``passed`` is ``None`` for a gate whose metric was not observed or that
    its histogram cannot decide."""
    metrics = observed_metrics(observation)
    results = []
    for gate in gates:
        observed = metrics.get(gate.metric)
        passed = _verdict(gate, observed, observation)
        results.append(
            GateResult(
                name=gate.name,
                description=gate.description,
                threshold=gate.threshold,
                observed=observed,
                passed=passed,
                required=gate.required,
                reason=_reason(gate, observed, passed),
            )
        )
    return tuple(results)
