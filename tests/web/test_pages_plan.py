"""Describe → Plan → Compare pages through the real app (``create_app``, real catalog, real planner), server side.

One plan is made per module (planning takes a second or two) and shared by the tests that only read it.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servewise.api import create_app
from servewise.web import PlanStore, plotly_js_path
from servewise.web._charts import pareto_indices
from servewise.web._router import fmt_number, fmt_usd

TEXT = "a support chatbot for 5,000 employees, answers within half a second, under $8k a month"
FORM: dict[str, Any] = {
    "name": "support-bot",
    "use_case": "chatbot_conversational",
    "rate_mode": "qps",
    "qps": "20",
    "peak_factor": "1.5",
    "prompt_tokens": "512",
    "output_tokens": "256",
    "ttft_p95_ms": "500",
    "itl_p95_ms": "50",
    "e2e_p95_ms": "",
    "budget_usd_month": "$8,000",
    "gpus": "",
    "providers": "",
    "max_gpus": "",
    "min_params_b": "7",
    "precisions": ["bf16", "fp8"],
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("web") / "catalog.db"
    with TestClient(create_app(db_url=f"sqlite:///{db}")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def planned(client: TestClient) -> dict[str, Any]:
    """One plan made through the form: its id, page HTML, JSON document and embedded chart specs."""
    response = client.post("/plan", data=FORM, follow_redirects=False)
    assert response.status_code == 303, _errors(response.text)
    plan_id = response.headers["location"].removeprefix("/plan/")
    page = client.get(f"/plan/{plan_id}")
    assert page.status_code == 200
    document = client.get(f"/plan/{plan_id}.json").json()
    return {"id": plan_id, "html": page.text, "doc": document, "charts": _charts(page.text)}


def _errors(text: str) -> dict[str, str]:
    return {m[0]: html.unescape(m[1]) for m in re.findall(r'data-testid="error-([\w-]+)">([^<]*)<', text)}


def _charts(text: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', text, re.S)
    assert match, "the plan page embeds its chart data"
    charts: dict[str, Any] = json.loads(match.group(1))
    return charts


def _input_value(text: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', text)
    assert match, f"no input {name}"
    return html.unescape(match.group(1))


# ---------------------------------------------------------------- Describe


def test_describe_page_offers_the_text_box_and_nav_to_every_page(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'id="intent-text"' in page.text and "5,000 employees" in page.text  # the placeholder
    for href in ("/", "/plan", "/compare", "/deploy", "/catalog", "/spend"):
        assert f'href="{href}"' in page.text
    assert '<label for="intent-text">' in page.text


def test_describe_turns_text_into_an_editable_form_with_assumptions(client: TestClient) -> None:
    page = client.post("/describe", data={"text": TEXT})
    assert page.status_code == 200, _errors(page.text)
    assert 'id="workload-form"' in page.text and 'action="/plan"' in page.text
    assert _input_value(page.text, "budget_usd_month") == "8000"
    assert _input_value(page.text, "users") == "5000"
    assert 'data-testid="assumptions"' in page.text
    base = json.loads(_input_value(page.text, "base_workload"))
    assert base["traffic"]["users"] == 5000 and base["budget_usd_month"] == 8000
    for name in ("ttft_p95_ms", "itl_p95_ms", "e2e_p95_ms", "gpus", "providers", "max_gpus", "min_params_b"):
        assert f'for="f-{name}"' in page.text, f"field {name} has a label"


def test_empty_description_gets_a_message_next_to_the_box(client: TestClient) -> None:
    page = client.post("/describe", data={"text": "   "})
    assert page.status_code == 422
    assert "write a sentence" in _errors(page.text)["text"]


# ---------------------------------------------------------------- form validation


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"budget_usd_month": "-5"}, "budget_usd_month", "greater than 0"),
        ({"qps": "lots"}, "qps", "valid number"),
        ({"qps": ""}, "qps", "no request rate"),
        ({"rate_mode": "users", "users": "", "requests_per_user_hour": "4"}, "users", "no request rate"),
        ({"peak_factor": "0.5"}, "peak_factor", "greater than or equal to 1"),
        ({"prompt_tokens": "0"}, "prompt_tokens", "greater than 0"),
        ({"precisions": []}, "precisions", "at least one"),
        ({"ttft_p95_ms": "-1"}, "ttft_p95_ms", "greater than 0"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_not_a_500(
    client: TestClient, changes: dict[str, Any], field: str, words: str
) -> None:
    page = client.post("/plan", data={**FORM, **changes}, follow_redirects=False)
    assert page.status_code == 422
    errors = _errors(page.text)
    assert words in errors[field], errors
    assert f'id="f-{field}"' in page.text or field == "precisions"
    assert _input_value(page.text, "budget_usd_month") == str({**FORM, **changes}["budget_usd_month"])


def test_unknown_gpu_is_reported_on_the_gpu_field_with_suggestions(client: TestClient) -> None:
    page = client.post("/plan", data={**FORM, "gpus": "H1OO"}, follow_redirects=False)
    assert page.status_code == 422
    assert "unknown gpu 'H1OO'" in _errors(page.text)["gpus"]


# ---------------------------------------------------------------- Plan page


def test_plan_page_shows_ranked_options_chosen_first_and_links(planned: dict[str, Any]) -> None:
    text, doc, plan_id = planned["html"], planned["doc"], planned["id"]
    assert doc["chosen"] == 0 and 1 <= len(doc["options"]) <= 50
    ranks = [int(r) for r in re.findall(r'data-testid="option-row" data-rank="(\d+)"', text)]
    assert ranks == [o["rank"] for o in doc["options"]]
    assert text.count('aria-label="chosen">★') == 1
    assert f'href="/deploy/{plan_id}?option=1"' in text
    assert f'href="/plan/{plan_id}.json"' in text
    assert doc["why"] in html.unescape(text)
    chosen = doc["options"][0]
    assert fmt_usd(chosen["cost"]["usd_per_month"]) in text  # $ with thousands separators
    assert "✓" in text and "/ 500\u202fms" in text  # SLO check: predicted / target with its unit
    assert 'data-testid="rejected"' in text and "Rejected:" in text


def test_plan_json_download_is_the_plan_document(client: TestClient, planned: dict[str, Any]) -> None:
    response = client.get(f"/plan/{planned['id']}.json")
    assert response.headers["content-disposition"] == f'attachment; filename="plan-{planned["id"]}.json"'
    doc = response.json()
    assert doc["workload"]["name"] == "support-bot" and doc["workload"]["budget_usd_month"] == 8000
    assert doc["workload"]["traffic"]["peak_factor"] == 1.5


def test_scatter_has_one_point_per_option_and_a_non_dominated_front(planned: dict[str, Any]) -> None:
    scatter, options = planned["charts"]["scatter"], planned["doc"]["options"]
    by_name = {trace["name"]: trace for trace in scatter["data"]}
    ranks = by_name["options"]["customdata"] + by_name["Pareto front"]["customdata"]
    assert sorted(ranks) == sorted(o["rank"] for o in options)
    by_rank = {o["rank"]: (o["perf"]["e2e"]["p95_ms"], o["cost"]["usd_per_month"]) for o in options}
    for trace in by_name.values():
        for rank, x, y in zip(trace["customdata"], trace["x"], trace["y"], strict=True):
            assert by_rank[rank] == pytest.approx((x, y))

    def dominates(p: tuple[float, float], q: tuple[float, float]) -> bool:
        return p[0] <= q[0] and p[1] <= q[1] and p != q

    front = set(by_name["Pareto front"]["customdata"])
    for rank, point in by_rank.items():
        dominated = any(dominates(other, point) for other in by_rank.values())
        assert dominated == (rank not in front), rank
    assert by_name["chosen ★"]["customdata"] == [options[0]["rank"]]


def test_pareto_indices_on_a_known_set() -> None:
    points = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (2.0, 3.0), (5.0, 1.0)]
    assert pareto_indices(points) == [0, 1, 3, 4]
    assert pareto_indices([]) == []


def test_cost_breakdown_adds_up_to_the_chosen_options_monthly_cost(planned: dict[str, Any]) -> None:
    chosen = planned["doc"]["options"][0]
    bars = planned["charts"]["breakdown"]["data"][0]
    assert bars["y"] == [item["label"] for item in chosen["cost"]["line_items"]]
    assert sum(bars["x"]) == pytest.approx(chosen["cost"]["usd_per_month"], rel=1e-6)


def test_replicas_over_a_day_follow_demand_and_capacity(planned: dict[str, Any]) -> None:
    spec = planned["charts"]["replicas"]
    replicas, static, demand = spec["data"]
    chosen = planned["doc"]["options"][0]
    capacity = chosen["perf"]["max_qps_per_replica"]
    assert len(replicas["y"]) == len(demand["y"]) == 24 and replicas["x"][0] == "00:00"
    for count, qps in zip(replicas["y"], demand["y"], strict=True):
        assert count == max(1, math.ceil(qps / capacity - 1e-6))
    assert set(static["y"]) == {chosen["replicas"]}
    assert spec["meta"]["avg_qps"] == pytest.approx(20.0)
    # the weekday shape rises above the weekly mean and falls below it
    assert max(demand["y"]) > 20.0 > min(demand["y"])


def test_break_even_compares_self_hosting_with_a_few_hosted_apis(planned: dict[str, Any]) -> None:
    spec = planned["charts"]["breakeven"]
    names = [trace["name"] for trace in spec["data"]]
    assert names[0].startswith("self-host ") and 1 <= len(names) - 1 <= 3
    for api in spec["data"][1:]:
        slopes = {round(y / x, 6) for x, y in zip(api["x"], api["y"], strict=True) if x > 0}
        assert len(slopes) == 1, "an API costs the same per token at every volume"
    assert spec["meta"]["workload_tokens_per_month_m"] == pytest.approx(20 * 730 * 3600 * 768 / 1e6)


def test_a_plan_with_no_feasible_option_explains_why(client: TestClient) -> None:
    response = client.post("/plan", data={**FORM, "budget_usd_month": "1"}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert 'data-testid="no-option"' in page.text and 'id="chart-data"' not in page.text
    assert "budget" in page.text and 'data-testid="rejected"' in page.text


# ---------------------------------------------------------------- Compare


def test_compare_two_options_of_one_plan_with_deltas(client: TestClient, planned: dict[str, Any]) -> None:
    page = client.get(f"/compare?plan={planned['id']}&options=1&options=2")
    assert page.status_code == 200, page.text[-500:]
    sides = re.findall(r'data-testid="compare-side">([^<]*)<', page.text)
    assert [s.split(": ", 1)[1].split(" ", 1)[0] for s in sides] == ["#1", "#2"]
    assert 'data-testid="delta-usd_per_month"' in page.text
    assert client.get(f"/compare?plan={planned['id']}&options=1,2,3").status_code == 200


@pytest.mark.parametrize("options", ["1", "1,999", "1,2,3,4", "x,1"])
def test_compare_needs_two_or_three_existing_options(
    client: TestClient, planned: dict[str, Any], options: str
) -> None:
    page = client.get(f"/compare?plan={planned['id']}&options={options}")
    assert page.status_code == 422 and 'data-testid="page-error"' in page.text


def test_compare_two_plans_side_by_side(client: TestClient, planned: dict[str, Any]) -> None:
    response = client.post("/plan", data={**FORM, "name": "double", "qps": "40"}, follow_redirects=False)
    other = response.headers["location"].removeprefix("/plan/")
    page = client.get(f"/compare?ids={planned['id']},{other}")
    assert page.status_code == 200
    assert re.findall(r'data-testid="compare-side">([^<]*)<', page.text) == ["1: support-bot", "2: double"]
    assert 'data-testid="delta-peak_qps"' in page.text and "+30" in page.text  # 30 → 60 req/s at peak
    assert client.get("/compare").status_code == 200  # the picker lists both plans
    assert 'name="ids"' in client.get("/compare").text


def test_unknown_plan_is_a_404_page_that_says_why(client: TestClient) -> None:
    for path in ("/plan/nope", "/plan/nope.json", "/compare?ids=nope,nada"):
        page = client.get(path)
        assert page.status_code == 404 and "restart" in page.text


# ---------------------------------------------------------------- assets and formatting


def test_pages_reference_no_external_urls(client: TestClient, planned: dict[str, Any]) -> None:
    pages = [
        client.get("/").text,
        client.post("/describe", data={"text": TEXT}).text,
        planned["html"],
        client.get(f"/compare?plan={planned['id']}&options=1,2").text,
        client.get("/plan").text,
    ]
    for text in pages:
        links = re.findall(r'(?:src|href|action)="([^"]*)"', text)
        assert links and all(not re.match(r"(?i)(https?:)?//", link) for link in links), links
    for asset in ("/static/app.js", "/static/app.css"):
        assert not re.search(r"https?://", client.get(asset).text)
    assert '<script src="/static/plotly.min.js"' in planned["html"]


def test_plotly_is_the_file_shipped_in_the_plotly_wheel(client: TestClient) -> None:
    served = client.get("/static/plotly.min.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    shipped = Path(plotly_js_path()).read_bytes()
    assert hashlib.sha256(served.content).digest() == hashlib.sha256(shipped).digest()


def test_number_filters_use_units_and_thousands_separators() -> None:
    assert fmt_number(12345.6) == "12,346"
    assert fmt_number(1234.56, 1, "ms") == "1,234.6\u202fms"
    assert fmt_number(None) == "—" and fmt_number(math.inf) == "—"
    assert fmt_usd(8000) == "$8,000" and fmt_usd(-1234.5, 2) == "-$1,234.50" and fmt_usd(None) == "—"


def test_plan_store_keeps_the_most_recently_used_plans() -> None:
    store = PlanStore(capacity=2)
    first, second = store.add({"n": 1}), store.add({"n": 2})
    assert first.plan_id != second.plan_id
    assert store.get(first.plan_id) is first  # reading makes it the most recent
    third = store.add({"n": 3})
    assert store.get(second.plan_id) is None and len(store) == 2
    assert [p.plan_id for p in store.recent()] == [third.plan_id, first.plan_id]
    with pytest.raises(ValueError, match="at least 1"):
        PlanStore(capacity=0)
