"""The stable JSON of a TCO comparison (schema ``servewise.tco/1``) and the list of every term it assumed.

Why apart from the CLI: ``servewise tco --format json`` and the REST API's ``POST /api/v1/tco`` return the same
document, so a client can switch between them; the assumed terms (with their sources) travel with the numbers.
"""

from __future__ import annotations

import math
from typing import Any

from ._owned import OWNED_SOURCES, OwnedTerms
from ._pricing import PRICING_SOURCES, PricingTerms
from ._tco import TcoReport

__all__ = ["TCO_SCHEMA", "tco_defaults", "tco_document"]

TCO_SCHEMA = "servewise.tco/1"


def tco_defaults(
    terms: PricingTerms, owned: OwnedTerms, cached_share: float, cached_given: bool
) -> list[dict[str, Any]]:
    """Every number the comparison assumes, its flag and its source: printed and in the JSON."""
    rows = [
        ("--spot-overhead", terms.spot_overhead, PRICING_SOURCES["spot_overhead"]),
        ("--on-demand-floor", terms.on_demand_floor_share, PRICING_SOURCES["on_demand_floor_share"]),
        (
            "--on-demand-floor-replicas",
            terms.on_demand_floor_replicas,
            PRICING_SOURCES["on_demand_floor_replicas"],
        ),
        ("--reserved-1y-discount", terms.reserved_1y_discount, PRICING_SOURCES["reserved_1y_discount"]),
        ("--reserved-3y-discount", terms.reserved_3y_discount, PRICING_SOURCES["reserved_3y_discount"]),
        ("--amortize-months", owned.amortize_months, OWNED_SOURCES["amortize_months"]),
        ("--utilization", owned.utilization, OWNED_SOURCES["utilization"]),
        ("--pue", owned.pue, OWNED_SOURCES["pue"]),
        ("--usd-per-kwh", owned.usd_per_kwh, OWNED_SOURCES["usd_per_kwh"]),
        ("--ops-overhead", owned.ops_overhead, OWNED_SOURCES["ops_overhead"]),
        (
            "--api-cached-share",
            cached_share,
            "given"
            if cached_given
            else "the workload's prefix share (prompt tokens billed at the cached-input price)",
        ),
    ]
    return [{"flag": flag, "value": value, "source": source} for flag, value, source in rows]


def tco_document(report: TcoReport, defaults: list[dict[str, Any]]) -> dict[str, Any]:
    """The stable JSON of ``servewise tco --format json`` (schema ``servewise.tco/1``)."""
    d = report.deployment
    return {
        "schema": TCO_SCHEMA,
        "deployment": {
            "model": d.model,
            "gpu": d.gpu.name,
            "tp": d.tp,
            "replicas": d.replicas,
            "gpus_total": d.tp * d.replicas,
            "max_qps_per_replica": d.max_qps_per_replica,
            "avg_qps": d.avg_qps,
            "peak_qps": d.peak_qps,
            "prompt_tokens": d.prompt_tokens,
            "output_tokens": d.output_tokens,
        },
        "monthly_requests": report.monthly_requests,
        "requests_per_replica_month": report.requests_per_replica_month,
        "defaults": defaults,
        "options": [
            {
                "name": o.name,
                "usd_per_hour": o.usd_per_hour,
                "usd_per_month": o.usd_per_month,
                "usd_per_1m_tokens": _finite(o.usd_per_1m_tokens),
                "note": o.note,
                "line_items": [
                    {"label": i.label, "usd_per_hour": i.usd_per_hour, "detail": i.detail}
                    for i in o.line_items
                ],
            }
            for o in report.options
        ],
        "owned_price_is_guess": report.owned.price_is_guess if report.owned else None,
        "apis": [
            {
                "provider": a.provider,
                "model": a.model,
                "usd_per_request": a.usd_per_request,
                "usd_per_month": a.usd_per_month,
                "input_usd_per_month": a.input_usd_per_month,
                "cached_input_usd_per_month": a.cached_input_usd_per_month,
                "output_usd_per_month": a.output_usd_per_month,
                "cached_price_known": a.cached_price_known,
                "source": a.source,
                "as_of": a.as_of,
            }
            for a in report.apis
        ],
        "break_evens": [
            {
                "option": b.option,
                "api_model": b.api_model,
                "first_requests_per_month": b.first_requests_per_month,
                "sustained_requests_per_month": b.sustained_requests_per_month,
                "range_max_requests": b.range_max_requests,
            }
            for b in report.break_evens
        ],
        "hybrid": None
        if report.hybrid is None
        else {
            "basis": report.hybrid_basis,
            "local_replicas": report.hybrid.local_replicas,
            "local_share": report.hybrid.local_share,
            "usd_per_month": report.hybrid.usd_per_month,
            "local_usd_per_month": report.hybrid.local_usd_per_month,
            "api_usd_per_month": report.hybrid.api_usd_per_month,
        },
        "recommendation": {
            "tier": str(report.tier),
            "option": report.recommended,
            "usd_per_month": _finite(report.recommended_usd_per_month),
            "reasons": list(report.reasons),
        },
        "chart": {
            "x": "monthly_requests",
            "y": "usd_per_month",
            "volumes": list(report.chart_volumes),
            "series": {label: list(values) for label, values in report.chart_series},
        },
    }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
