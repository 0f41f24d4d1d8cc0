"""``servewise watch``: a running deployment against its plan — metrics from the replicas' ``/metrics`` or a
Prometheus server, SLO compliance and validation gates, efficiency, right-sizing and drift (docs/watch.md).

The data contract is ``_observation.py``; ``build_report`` runs every analysis and ``report_document`` is the stable
JSON the CLI, the HTML report and the web *Watch* page share."""

from ._compliance import slo_compliance
from ._drift import drift, observed_benchmark_rows, store_observed_rows
from ._efficiency import efficiency
from ._exposition import (
    counter_increase,
    fraction_above,
    histogram_increase,
    histogram_quantile,
    parse_exposition,
)
from ._gates import GateSpec, default_gates, evaluate_gates, gates_from_config, load_gates, observed_metrics
from ._html import render_html
from ._observation import (
    Drift,
    Efficiency,
    GateResult,
    LatencyQuantiles,
    Observation,
    Recommendation,
    Sample,
    SloCompliance,
    WatchReport,
    WatchTarget,
)
from ._promql import prometheus_observation
from ._report import REPORT_SCHEMA_VERSION, build_report, report_document, report_from_document
from ._rightsize import recommendations
from ._scrape import metrics_url, scrape_observation
from ._target import load_target, target_from_plan
from ._window import ScrapeRound, WindowBuilder, observation_from_rounds

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "Drift",
    "Efficiency",
    "GateResult",
    "GateSpec",
    "LatencyQuantiles",
    "Observation",
    "Recommendation",
    "Sample",
    "ScrapeRound",
    "SloCompliance",
    "WatchReport",
    "WatchTarget",
    "WindowBuilder",
    "build_report",
    "counter_increase",
    "default_gates",
    "drift",
    "efficiency",
    "evaluate_gates",
    "fraction_above",
    "gates_from_config",
    "histogram_increase",
    "histogram_quantile",
    "load_gates",
    "load_target",
    "metrics_url",
    "observation_from_rounds",
    "observed_benchmark_rows",
    "observed_metrics",
    "parse_exposition",
    "prometheus_observation",
    "recommendations",
    "render_html",
    "report_document",
    "report_from_document",
    "scrape_observation",
    "slo_compliance",
    "store_observed_rows",
    "target_from_plan",
]
