"""The JSON of a what-if comparison: each side's chosen option (or why it has none) and the deltas against the
first side; what ``servewise compare --format json`` prints and ``POST /api/v1/compare`` returns."""

from __future__ import annotations

from typing import Any

from ._compare import Comparison

__all__ = ["comparison_document"]


def comparison_document(comparison: Comparison) -> dict[str, Any]:
    """The JSON payload: sides (each its chosen option or why it has none) and the deltas against the first."""
    return {
        "base": comparison.sides[0].label if comparison.sides else None,
        "sides": [
            {
                "label": s.label,
                "feasible": s.feasible,
                "reason": s.reason,
                "model": s.model,
                "precision": s.precision,
                "gpu": s.gpu,
                "tp": s.tp,
                "replicas": s.replicas,
                "gpus_total": s.gpus_total,
                "usd_per_month": s.usd_per_month,
                "ttft_p95_ms": s.ttft_p95_ms,
                "itl_p95_ms": s.itl_p95_ms,
                "e2e_p95_ms": s.e2e_p95_ms,
                "peak_qps": s.peak_qps,
                "options": s.options,
            }
            for s in comparison.sides
        ],
        "deltas": [
            {
                "side": d.side,
                "metric": d.metric,
                "base": d.base,
                "value": d.value,
                "delta": d.absolute,
                "delta_pct": d.percent,
            }
            for d in comparison.deltas
        ],
    }
