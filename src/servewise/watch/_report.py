"""The watch report: every analysis of one window (compliance, gates, efficiency, right-sizing, drift) in one
``WatchReport``, and its stable JSON document (docs/watch.md, *JSON output*).

Why one builder: the CLI, the HTML report and the web *Watch* page show the same report, so they call
``build_report`` and render, never recompute. An analysis that cannot run on this window (e.g. the plan's model is
not in the catalog the perf model reads) does not sink the report: its part is ``None`` and the reason is added to
the observation's warnings — compliance and gates, which need only the metrics, still decide the exit code.

JSON: dataclass fields as they are, with latency quantiles keyed ``"p50"``/``"p90"``/``"p95"``/``"p99"`` instead of
0.5…, histograms as ``[[upper_bound, cumulative_count], …]`` with ``"+Inf"`` for the last bound, and non-finite
numbers as ``null`` (JSON has no infinity). ``report_from_document`` reads it back (round trip tested).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from servewise.catalog import CatalogSnapshot
from servewise.errors import ServewiseError, UsageError

from ._compliance import resolution_notes, slo_compliance
from ._drift import drift, store_observed_rows
from ._efficiency import efficiency
from ._gates import GateSpec, default_gates, evaluate_gates
from ._observation import (
    Drift,
    Efficiency,
    GateResult,
    Observation,
    Recommendation,
    Sample,
    SloCompliance,
    WatchReport,
    WatchTarget,
)
from ._rightsize import recommendations
from ._rightsize_replica import catalog_snapshot

__all__ = ["REPORT_SCHEMA_VERSION", "build_report", "report_document", "report_from_document"]

REPORT_SCHEMA_VERSION = "1"
_QUANTILE_FIELDS = ("ttft_s", "itl_s", "e2e_s", "queue_s")
_T = TypeVar("_T")


def build_report(
    target: WatchTarget,
    observation: Observation,
    *,
    gates: Sequence[GateSpec] | None = None,
    drift_threshold_pct: float = 25.0,
    store_drift_rows: bool = False,
    db_url: str | None = None,
    catalog: CatalogSnapshot | None = None,
) -> WatchReport:
    """Every analysis of ``observation`` against ``target``. ``gates`` default to the built-ins; with
    ``store_drift_rows``, a drifted window is written to the catalog at ``db_url`` as measured benchmark rows
    (``Drift.stored_rows`` says how many). ``catalog`` (default: the one at ``db_url``) feeds the perf model."""
    compliance = slo_compliance(target, observation)
    notes = resolution_notes(compliance, observation)
    results = evaluate_gates(list(gates) if gates is not None else default_gates(target), observation)
    try:
        snapshot: CatalogSnapshot | None = catalog_snapshot(catalog, db_url)
    except ServewiseError as err:
        snapshot = None
        notes.append(f"efficiency, right-sizing and drift not computed: {err}")

    def attempt(what: str, run: Callable[[CatalogSnapshot], _T]) -> _T | None:
        if snapshot is None:
            return None
        try:
            return run(snapshot)
        except ServewiseError as err:
            notes.append(f"{what} not computed: {err}")
            return None

    found_efficiency = attempt("efficiency", lambda c: efficiency(target, observation, catalog=c))
    found_recommendations = attempt("right-sizing", lambda c: recommendations(target, observation, catalog=c))
    found_drift = attempt(
        "drift", lambda c: drift(target, observation, threshold_pct=drift_threshold_pct, catalog=c)
    )
    if found_drift is not None and found_drift.drifted and store_drift_rows:
        try:
            stored = store_observed_rows(target, observation, db_url=db_url, source=found_drift.source)
        except ServewiseError as err:  # the report stands; the user sees why nothing was stored
            notes.append(f"the drifted window was not stored: {err}")
        else:
            found_drift = dataclasses.replace(found_drift, stored_rows=stored)
    if notes:
        observation = dataclasses.replace(observation, warnings=(*observation.warnings, *notes))
    return WatchReport(
        target=target,
        observation=observation,
        compliance=compliance,
        gates=results,
        efficiency=found_efficiency,
        recommendations=found_recommendations or (),
        drift=found_drift,
    )


# -- JSON ------------------------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as ``None``, tuples as lists, dicts recursed."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _quantile_key(quantile: float) -> str:
    return f"p{quantile * 100:g}"


def _observation_document(observation: Observation) -> dict[str, Any]:
    document = {f.name: getattr(observation, f.name) for f in dataclasses.fields(observation)}
    for name in _QUANTILE_FIELDS:
        document[name] = {_quantile_key(q): v for q, v in sorted(getattr(observation, name).items())}
    document["samples"] = [dataclasses.asdict(sample) for sample in observation.samples]
    document["histograms"] = {
        key: [["+Inf" if math.isinf(le) else le, count] for le, count in sorted(buckets.items())]
        for key, buckets in observation.histograms.items()
    }
    return document


def report_document(report: WatchReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (module docstring); ``passed`` decides ``watch``'s exit code."""
    document: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "passed": report.passed,
        "target": dataclasses.asdict(report.target),
        "observation": _observation_document(report.observation),
        "compliance": [dataclasses.asdict(row) for row in report.compliance],
        "gates": [dataclasses.asdict(gate) for gate in report.gates],
        "efficiency": None if report.efficiency is None else dataclasses.asdict(report.efficiency),
        "recommendations": [dataclasses.asdict(r) for r in report.recommendations],
        "drift": None if report.drift is None else dataclasses.asdict(report.drift),
    }
    result: dict[str, Any] = _finite(document)
    return result


def _build(cls: type[_T], data: object, where: str) -> _T:
    """A flat dataclass from its ``asdict`` form; list fields become tuples where the default type is a tuple."""
    if not isinstance(data, Mapping):
        raise UsageError(f"not a watch report: {where} must be an object")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            value = data[f.name]
            values[f.name] = (
                tuple(value) if isinstance(value, list) and str(f.type).startswith("tuple") else value
            )
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UsageError(f"not a watch report: {where} lacks {f.name!r}")
    return cls(**values)


def _quantiles(data: object, where: str) -> dict[float, float | None]:
    if not isinstance(data, Mapping):
        raise UsageError(f"not a watch report: {where} must be an object of p50/p90/p95/p99")
    try:
        return {float(str(key).removeprefix("p")) / 100.0: value for key, value in data.items()}
    except ValueError:
        raise UsageError(f"not a watch report: {where} keys must look like p95") from None


def _histograms(data: object) -> dict[str, dict[float, float]]:
    if not isinstance(data, Mapping):
        raise UsageError("not a watch report: observation.histograms must be an object")
    try:
        return {
            str(key): {math.inf if le == "+Inf" else float(le): float(count) for le, count in pairs}
            for key, pairs in data.items()
        }
    except (TypeError, ValueError):
        raise UsageError("not a watch report: histograms must be lists of [upper_bound, count]") from None


def _observation(data: object) -> Observation:
    if not isinstance(data, Mapping):
        raise UsageError("not a watch report: observation must be an object")
    fields = dict(data)
    for name in _QUANTILE_FIELDS:
        fields[name] = _quantiles(fields.get(name, {}), f"observation.{name}")
    samples = fields.get("samples", [])
    if not isinstance(samples, list):
        raise UsageError("not a watch report: observation.samples must be a list")
    fields["samples"] = [_build(Sample, s, "a sample") for s in samples]
    fields["histograms"] = _histograms(fields.get("histograms", {}))
    return _build(Observation, fields, "observation")


def _items(data: object, cls: type[_T], where: str) -> tuple[_T, ...]:
    if not isinstance(data, list):
        raise UsageError(f"not a watch report: {where} must be a list")
    return tuple(_build(cls, item, where) for item in data)


def report_from_document(document: dict[str, Any]) -> WatchReport:
    """The ``WatchReport`` a ``report_document`` describes; one-line ``UsageError`` for anything else."""
    if not isinstance(document, dict) or "observation" not in document or "target" not in document:
        raise UsageError(
            "not a watch report (no target/observation); write one with `servewise watch -o FILE`"
        )
    version = document.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise UsageError(
            f"watch report schema_version {version!r}; this Servewise reads {REPORT_SCHEMA_VERSION!r}"
        )
    efficiency_data, drift_data = document.get("efficiency"), document.get("drift")
    return WatchReport(
        target=_build(WatchTarget, document["target"], "target"),
        observation=_observation(document["observation"]),
        compliance=_items(document.get("compliance", []), SloCompliance, "compliance"),
        gates=_items(document.get("gates", []), GateResult, "gates"),
        efficiency=None if efficiency_data is None else _build(Efficiency, efficiency_data, "efficiency"),
        recommendations=_items(document.get("recommendations", []), Recommendation, "recommendations"),
        drift=None if drift_data is None else _build(Drift, drift_data, "drift"),
    )
