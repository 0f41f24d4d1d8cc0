"""``render_html``: one self-contained file with the summary, the tables and three plotly charts; everything escaped;
unobserved numbers shown as "not observed". Also the report factory the web and API watch tests reuse.

The reports here are built from the contract's dataclasses with made-up, round test numbers (they exercise the
rendering, not the analyses, which have their own tests)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from servewise.watch._html import plotly_js_path, render_html, render_report_body
from servewise.watch._html_charts import (
    budget_pace_usd_per_hour,
    latency_spec,
    load_spec,
    replica_usd_per_hour,
    report_charts,
    spend_spec,
)
from servewise.watch._observation import (
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

INJECTED = '<script>alert("x")</script>'
STARTED_AT = "2026-11-25T10:00:00+00:00"


def sample_target(**overrides: Any) -> WatchTarget:
    """Two replicas of a made-up 8B deployment at $2/GPU-hour, budget $3,650/month ($5/h pace)."""
    base = WatchTarget(
        plan_path="plan.json",
        option_rank=1,
        model="Llama-3.1-8B",
        gpu="L4",
        gpu_count=1,
        tp=1,
        precision="bf16",
        backend="vllm",
        replicas=2,
        usd_per_hour=4.0,
        usd_per_month=2920.0,
        usd_per_gpu_hour=2.0,
        budget_usd_month=3650.0,
        slo_targets_s={"ttft_p95": 0.5, "itl_p95": 0.05, "e2e_p95": 8.0},
        predicted_s={"ttft_p95": 0.3, "itl_p95": 0.03, "e2e_p95": 6.0},
        peak_qps=4.0,
        max_qps_per_replica=2.5,
        prompt_tokens_mean=512.0,
        output_tokens_mean=200.0,
        engine={"max_num_seqs": 64, "max_num_batched_tokens": 8192},
        workload={"name": "chat"},
    )
    return dataclasses.replace(base, **overrides)


def sample_samples(count: int = 6, interval_s: float = 10.0) -> tuple[Sample, ...]:
    """``count`` intervals; the third misses every latency (nothing finished) and spend is never metered."""
    return tuple(
        Sample(
            t_s=interval_s * (i + 1),
            interval_s=interval_s,
            replicas=2 if i != 4 else 1,
            qps=1.0 + 0.5 * i,
            running=4.0 + i,
            waiting=0.0,
            kv_cache_usage_ratio=0.2,
            ttft_p95_s=None if i == 2 else 0.2 + 0.1 * i,
            itl_p95_s=None if i == 2 else 0.02 + 0.01 * i,
            e2e_p95_s=None if i == 2 else 4.0 + i,
            spend_usd_per_hour=None,
        )
        for i in range(count)
    )


def sample_observation(**overrides: Any) -> Observation:
    quantiles: LatencyQuantiles = {0.5: 0.2, 0.9: 0.35, 0.95: 0.6, 0.99: 0.9}
    base = Observation(
        source="scrape",
        endpoints=("http://127.0.0.1:8001/metrics", "http://127.0.0.1:8002/metrics"),
        model_name="Llama-3.1-8B",
        started_at=STARTED_AT,
        ended_at="2026-11-25T10:01:00+00:00",
        window_s=60.0,
        replicas=2,
        replicas_mean=1.83,
        requests=120,
        qps=2.0,
        qps_peak=3.5,
        prompt_tokens_mean=500.0,
        output_tokens_mean=190.0,
        prompt_tokens_p95=None,
        output_tokens_p95=None,
        ttft_s=quantiles,
        itl_s={0.5: 0.02, 0.9: 0.03, 0.95: 0.04, 0.99: 0.06},
        e2e_s={0.5: 4.0, 0.9: 6.0, 0.95: 7.0, 0.99: 9.0},
        queue_s={0.5: 0.0, 0.9: 0.01, 0.95: None, 0.99: None},
        kv_cache_usage_mean=0.2,
        kv_cache_usage_max=0.35,
        running_mean=6.5,
        waiting_mean=0.0,
        waiting_max=0.0,
        preemptions=0,
        generation_tokens_per_s=380.0,
        errors=0,
        error_rate=0.0,
        fallback_share=None,
        local_ratio=None,
        spend_usd=None,
        spend_usd_per_hour=None,
        schema_valid_ratio=None,
        samples=sample_samples(),
        warnings=("no gateway metrics: spend not observed",),
    )
    return dataclasses.replace(base, **overrides)


def sample_report(**overrides: Any) -> WatchReport:
    """A report whose TTFT SLO is missed (so its gate fails), with two recommendations and a drift table."""
    base = WatchReport(
        target=sample_target(),
        observation=sample_observation(),
        compliance=(
            SloCompliance("ttft", 0.95, 0.5, 0.6, False, 0.08, 1.6),
            SloCompliance("itl", 0.95, 0.05, 0.04, True, 0.01, 0.2),
            SloCompliance("e2e", 0.95, 8.0, None, None, None, None),
        ),
        gates=(
            GateResult("ttft_p95", "TTFT p95 ≤ target", 0.5, 0.6, False, True, "0.6 s > 0.5 s"),
            GateResult(
                "schema_valid", "schema-valid responses ≥ 99.5%", 0.995, None, None, False, "no gateway"
            ),
        ),
        efficiency=Efficiency(
            score=62.0,
            gpu_hours_paid_per_hour=1.83,
            gpu_hours_needed_per_hour=0.8,
            replicas_needed=0.8,
            utilisation=0.1,
            kv_headroom=0.65,
            components={"paid_vs_needed": 0.44, "utilisation": 0.1, "kv_headroom": 0.65},
            usd_per_month_paid=2672.0,
            usd_per_month_needed=1168.0,
            provenance="calibrated",
        ),
        recommendations=(
            Recommendation(
                "off_peak_replicas",
                "drop to 1 replica off-peak",
                "night traffic fits one",
                600.0,
                "medium",
                "one replica has no spare",
                {"e2e_p95": 6.5},
            ),
            Recommendation("replicas", "run 1 replica", "0.8 replicas needed", 1460.0, "high", "no headroom"),
        ),
        drift=Drift(
            predicted_s={"ttft_p95": 0.3, "e2e_p95": 6.0, "itl_p95": 0.03},
            observed_s={"ttft_p95": 0.6, "e2e_p95": None, "itl_p95": 0.03},
            error_pct={"ttft_p95": -50.0, "e2e_p95": None, "itl_p95": -1.8e-14},
            threshold_pct=25.0,
            drifted=True,
            stored_rows=0,
            source="watch:http://127.0.0.1:8001 2026-11-25T10:01Z",
        ),
    )
    return dataclasses.replace(base, **overrides)


# -- helpers --------------------------------------------------------------------------------------------------------
class _Tables(HTMLParser):
    """Collects the text of each ``data-testid`` table's rows (``testid → [[cell text, ...], ...]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and found.get("data-testid"):
            self._table = str(found["data-testid"])
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(re.sub(r"[ \t\r\n]+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tr" and self._table and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert match, "the page embeds its chart data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(sample_report())


# -- tests ----------------------------------------------------------------------------------------------------------
def test_the_file_is_self_contained_with_plotly_inline(html: str) -> None:
    assert html.startswith("<!doctype html>")
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    plotly_js = plotly_js_path().read_text(encoding="utf-8")
    assert plotly_js in html, "plotly.js from the plotly wheel is inlined, whole"
    outside_plotly = html.replace(plotly_js, "")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", outside_plotly), (
        "nothing may be fetched from a host"
    )
    assert "--accent: #2457c5" in html, "the web app's stylesheet is inlined"
    assert html.count("<script>") == 2 and html.count("</html>") == 1


def test_the_summary_says_what_was_watched_and_that_a_gate_failed(html: str) -> None:
    assert 'data-testid="watch-banner" data-passed="false"' in html
    assert "Gate(s) failed: ttft_p95" in html
    assert "Llama-3.1-8B" in html and "bf16 on 1×L4" in html
    assert "60\u202fs" in html and "2026-11-25 10:00:00 UTC → 2026-11-25 10:01:00 UTC" in html
    assert "no gateway metrics: spend not observed" in html
    assert "62 / 100" in html


def test_a_passing_report_has_a_pass_banner() -> None:
    report = sample_report(gates=(GateResult("ttft_p95", "TTFT p95 ≤ target", 0.5, 0.4, True, True, "ok"),))
    body = str(render_report_body(report))
    assert 'data-passed="true"' in body and "All 1 gate(s) passed" in body


def test_compliance_and_gates_tables_show_marks_burn_and_skips(html: str) -> None:
    found = tables(html)
    compliance = found["watch-compliance"][1:]
    assert compliance[0] == ["TTFT p95", "500\u202fms", "600\u202fms", "✗", "8.00\u202f%", "1.60\u202f×"]
    assert compliance[1][3] == "✓"
    assert compliance[2][2] == "not observed" and "not observed" in compliance[2][3]
    gates = found["watch-gates"][1:]
    assert gates[0][0] == "ttft_p95" and gates[0][4] == "✗ fail" and gates[0][5] == "yes"
    assert gates[1][3] == "not observed" and gates[1][4] == "skipped"


def test_recommendations_mark_the_biggest_saving(html: str) -> None:
    rows = tables(html)["watch-recommendations"][1:]
    assert [r[2] for r in rows] == ["$600", "$1,460"]
    assert "★ biggest saving" in rows[1][0] and "★" not in rows[0][0]
    assert html.count('data-best="true"') == 1


def test_no_recommendation_is_marked_when_none_saves_money() -> None:
    scale_up = Recommendation("scale_up", "add 1 replica", "TTFT missed", -1460.0, "low", "more headroom")
    body = str(render_report_body(sample_report(recommendations=(scale_up,))))
    assert 'data-best="true"' not in body and "-$1,460" in body


def test_efficiency_components_and_drift(html: str) -> None:
    found = tables(html)
    assert ["paid_vs_needed", "0.440"] in found["watch-efficiency-components"]
    drift = found["watch-drift"][1:]
    assert drift[0] == ["ttft_p95", "300\u202fms", "600\u202fms", "-50.0\u202f%"]
    assert drift[1][2:] == ["not observed", "not observed"]
    assert drift[2][3] == "0.0\u202f%", "a rounding residue is not shown as -0.0"
    assert 'data-drifted="true"' in html


def test_charts_are_embedded_with_their_data(html: str) -> None:
    charts = chart_data(html)
    assert set(charts) == {"latency", "load", "spend"}
    for key in charts:
        assert f'data-chart="{key}"' in html
    latency = charts["latency"]
    assert [t["name"] for t in latency["data"]] == [
        "TTFT p95",
        "TTFT p95 target",
        "ITL p95",
        "ITL p95 target",
        "E2E p95",
        "E2E p95 target",
    ]
    assert latency["data"][0]["y"][2] is None, "an interval with no finished request is a gap, not 0"
    assert latency["data"][1]["y"] == [500.0, 500.0]
    assert latency["data"][0]["x"][0] == "2026-11-25T10:00:10.000+00:00"


def test_latency_chart_without_any_observation_is_left_out() -> None:
    empty = tuple(
        dataclasses.replace(s, ttft_p95_s=None, itl_p95_s=None, e2e_p95_s=None) for s in sample_samples()
    )
    report = sample_report(observation=sample_observation(samples=empty))
    assert latency_spec(report) is None
    body = str(render_report_body(report))
    assert 'data-testid="watch-chart-missing-latency"' in body and 'data-chart="latency"' not in body
    assert set(report_charts(report)) == {"load", "spend"}


def test_no_samples_means_no_chart_and_no_crash() -> None:
    report = sample_report(
        observation=sample_observation(samples=(), ttft_s={}, itl_s={}, e2e_s={}, queue_s={}),
        efficiency=None,
        drift=None,
        recommendations=(),
        gates=(),
        compliance=(),
    )
    assert report_charts(report) == {}
    html = render_html(report)
    assert "not observed: the efficiency score was not computed" in html
    assert "No gates were checked." in html
    assert chart_data(html) == {}


def test_non_finite_numbers_never_reach_the_chart_json() -> None:
    samples = tuple(dataclasses.replace(s, qps=math.nan, ttft_p95_s=math.inf) for s in sample_samples())
    html = render_html(sample_report(observation=sample_observation(samples=samples)))
    charts = chart_data(html)  # json.loads accepts NaN; the browser's JSON.parse does not
    assert "NaN" not in html.split('id="chart-data">', 1)[1].split("</script>", 1)[0]
    assert charts["load"]["data"][2]["y"] == [None] * len(samples)


def test_load_chart_draws_replicas_against_qps_and_plan_capacity() -> None:
    spec = load_spec(sample_report())
    assert spec is not None
    replicas, plan, qps, capacity = spec["data"]
    assert replicas["y"] == [2, 2, 2, 2, 2, 1, 2], "each interval's value, from the window's start"
    assert replicas["x"][0] == "2026-11-25T10:00:00.000+00:00" and replicas["line"]["shape"] == "vh"
    assert plan["y"] == [2, 2]
    assert qps["yaxis"] == "y2" and qps["y"] == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert qps["x"][0] == "2026-11-25T10:00:05.000+00:00", "each bar in the middle of its interval"
    assert capacity["y"] == [5.0, 5.0] and spec["meta"]["capacity_qps"] == 5.0


def test_spend_chart_paces_against_the_budget_or_the_plan() -> None:
    report = sample_report()
    assert budget_pace_usd_per_hour(report.target) == pytest.approx(3650.0 / 730.0)
    assert replica_usd_per_hour(report.target) == 2.0
    spec = spend_spec(report)
    assert spec is not None
    names = [t["name"] for t in spec["data"]]
    assert names == ["GPU cost of replicas up (plan pricing)", "budget pace ($/month ÷ 730 h)", "plan $/hour"]
    assert spec["data"][0]["y"] == [4.0, 4.0, 4.0, 4.0, 4.0, 2.0, 4.0]
    assert spec["data"][1]["y"] == [5.0, 5.0]
    assert spec["meta"]["gateway_spend"] is False

    metered = tuple(dataclasses.replace(s, spend_usd_per_hour=3.0) for s in sample_samples())
    no_budget = sample_report(
        target=sample_target(budget_usd_month=None), observation=sample_observation(samples=metered)
    )
    spec = spend_spec(no_budget)
    assert spec is not None
    names = [t["name"] for t in spec["data"]]
    assert names == ["GPU cost of replicas up (plan pricing)", "gateway-metered spend", "plan $/hour"]
    assert spec["meta"]["budget_pace_usd_per_hour"] is None


def test_every_string_from_the_report_is_escaped() -> None:
    target = sample_target(model=INJECTED, plan_path=INJECTED)
    observation = sample_observation(
        endpoints=(f"http://x/metrics?{INJECTED}",), warnings=(INJECTED,), model_name=INJECTED
    )
    report = sample_report(
        target=target,
        observation=observation,
        gates=(GateResult(INJECTED, INJECTED, 1.0, None, None, True, INJECTED),),
        recommendations=(Recommendation("replicas", INJECTED, INJECTED, 10.0, "low", INJECTED),),
    )
    html = render_html(report)
    assert INJECTED not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    chart_json = re.search(r'id="chart-data">(.*?)</script>', html, re.S)
    assert chart_json is not None and "<" not in chart_json.group(1)


def test_the_web_app_serves_the_same_plotly_file() -> None:
    from servewise.web import plotly_js_path as web_plotly_js_path

    assert plotly_js_path() == web_plotly_js_path()
