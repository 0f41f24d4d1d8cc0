"""A ``WatchReport`` as HTML: the standalone report file (``servewise watch --html FILE``) and the body of the web
app's *Watch* page, from one template and one set of chart specs.

Why one code path: the page (``/watch``) and the file must never disagree, so both call ``render_report_body``
(tables, figures, chart placeholders) and ``report_charts`` (plotly specs, ``{"data", "layout", "meta"}`` like
``servewise.web._charts``). The file wraps the body in ``report.html`` with the stylesheet, the chart data and the
plotly.js bundled in the ``plotly`` wheel inlined — the same file the web app serves at ``/static/plotly.min.js`` —
so it opens offline, anywhere, with nothing fetched. Every string from the report goes through Jinja2 autoescape;
the chart JSON goes through ``tojson`` (``<``, ``>``, ``&``, ``'`` escaped), so an endpoint URL or a gate name cannot
inject markup. A number the window did not measure is ``None`` and shows as "not observed", never 0.

The charts themselves are ``_html_charts``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from servewise.watch._html_charts import budget_pace_usd_per_hour, report_charts
from servewise.watch._observation import WatchReport

__all__ = ["plotly_js_path", "render_html", "render_report_body"]

TEMPLATES_DIR = Path(__file__).with_name("templates")
APP_CSS = Path(__file__).parents[1] / "web" / "static" / "app.css"
"""The web app's stylesheet, inlined into the standalone file so both look the same."""
NOT_OBSERVED = "not observed"


def plotly_js_path() -> Path:
    """plotly.js inside the installed ``plotly`` wheel: the file ``servewise.web.plotly_js_path`` serves."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


# -- rendering ---------------------------------------------------------------------------------------------------
def _number(value: Any, decimals: int = 0, unit: str = "") -> str:
    """``12345.6 → "12,346"``; ``None`` or non-finite → "not observed" (a missing number never reads as 0)."""
    if value is None or isinstance(value, bool):
        return NOT_OBSERVED
    number = float(value)
    if not math.isfinite(number):
        return NOT_OBSERVED
    text = f"{number:,.{decimals}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # -0.0 after rounding reads as 0.0
    return f"{text}\u202f{unit}" if unit else text


def _usd(value: Any, decimals: int = 0) -> str:
    text = _number(value, decimals)
    if text == NOT_OBSERVED:
        return text
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def _ms_text(seconds: Any, decimals: int = 0) -> str:
    return NOT_OBSERVED if seconds is None else _number(float(seconds) * 1000.0, decimals, "ms")


def _percent(ratio: Any, decimals: int = 1) -> str:
    return NOT_OBSERVED if ratio is None else _number(float(ratio) * 100.0, decimals, "%")


def _when(iso: str) -> str:
    """``2026-11-25T10:00:00+00:00`` → ``2026-11-25 10:00:00 UTC``; text that is not ISO-8601 as given."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment.tzinfo is not None else f"{moment:%Y-%m-%d %H:%M:%S}"


def _mark(value: bool | None) -> str:
    return "—" if value is None else ("✓" if value else "✗")


def _quantile(q: float) -> str:
    return f"p{q * 100:g}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {
        "num": _number,
        "usd": _usd,
        "ms": _ms_text,
        "pct": _percent,
        "mark": _mark,
        "q": _quantile,
        "when": _when,
    }
    return env


@lru_cache(maxsize=1)
def _inline_assets() -> tuple[Markup, Markup]:
    """(stylesheet, plotly.js) as text safe inside ``<style>`` / ``<script>`` (no closing tag can end them early)."""
    css = APP_CSS.read_text(encoding="utf-8").replace("</", "<\\/")
    js = plotly_js_path().read_text(encoding="utf-8").replace("</script", "<\\/script")
    return Markup(css), Markup(js)


def _best_recommendation(report: WatchReport) -> int | None:
    """Index of the recommendation that saves the most (a positive saving only), else ``None``."""
    savings = [(r.saving_usd_per_month, i) for i, r in enumerate(report.recommendations)]
    best = max(savings, default=None)
    return best[1] if best is not None and best[0] > 0 else None


def _chart_cards(charts: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(key, title, caption) of each chart, drawn or not (a missing one says "not observed")."""
    spend = charts.get("spend")
    metered = (
        ", and the gateway-metered spend"
        if spend is not None and spend["meta"]["gateway_spend"]
        else " (no gateway metrics: metered spend not observed)"
    )
    return [
        (
            "latency",
            "Latency p95 over time vs SLO",
            "p95 per interval from the replicas' histograms (linear within a bucket, as Prometheus "
            "histogram_quantile); dashed: the plan's p95 targets.",
        ),
        (
            "load",
            "Replicas vs load",
            "Replicas that answered in each interval (steps) and finished requests per second (bars); dashed: "
            "the plan's replicas and its capacity at the SLO (replicas × max req/s per replica).",
        ),
        (
            "spend",
            "$/hour vs budget pace",
            f"GPU cost of the replicas up at the plan's $/replica-hour{metered}; dashed: the budget ÷ 730 h "
            "(when the workload has a budget) and the plan's $/hour.",
        ),
    ]


def _context(report: WatchReport, charts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    observation = report.observation
    drift = report.drift
    drift_keys = (
        []
        if drift is None
        else [*drift.predicted_s, *(k for k in drift.observed_s if k not in drift.predicted_s)]
    )
    quantiles = sorted({q for d in (observation.ttft_s, observation.itl_s, observation.e2e_s) for q in d})
    return {
        "report": report,
        "target": report.target,
        "observation": observation,
        "charts": charts,
        "chart_cards": _chart_cards(charts),
        "drift_keys": drift_keys,
        "best": _best_recommendation(report),
        "quantiles": quantiles,
        "latencies": (
            ("TTFT", observation.ttft_s),
            ("ITL", observation.itl_s),
            ("E2E", observation.e2e_s),
            ("queue", observation.queue_s),
        ),
        "budget_pace": budget_pace_usd_per_hour(report.target),
        "failed_gates": [
            g.name for g in report.gates if g.passed is False or (g.passed is None and g.required)
        ],
    }


def render_report_body(report: WatchReport, charts: dict[str, dict[str, Any]] | None = None) -> Markup:
    """The report's sections (summary, tables, chart placeholders ``[data-chart=KEY]``) as an HTML fragment; the
    charts are drawn from ``report_charts(report)`` (pass them when already built) by whoever embeds it
    (``report.html``, or the web app's ``static/app.js``)."""
    charts = report_charts(report) if charts is None else charts
    return Markup(_environment().get_template("report_body.html").render(_context(report, charts)))


def render_html(report: WatchReport) -> str:
    """One self-contained HTML file: the body, the stylesheet, the chart data and plotly.js inline; no network."""
    css, plotly_js = _inline_assets()
    charts = report_charts(report)
    context = {
        "report": report,
        "charts": charts,
        "body": render_report_body(report, charts),
        "css": css,
        "plotly_js": plotly_js,
    }
    return _environment().get_template("report.html").render(context)
