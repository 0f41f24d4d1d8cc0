"""The *Watch* page through the real app (``create_app``, server side): a report opened from a file or pasted, the
downloads, bad input next to its field, and a live watch of two simulated replicas under load.

The live test plans one small workload, starts two simulator replicas of its chosen option
(``servewise.simulator.serve_in_background``), sends them short completions from a thread while the page watches
them for 3 s, and checks the report the page shows."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from servewise.api import _services as services
from servewise.api import create_app
from servewise.simulator import config_from_plan, serve_in_background
from servewise.watch._html_charts import report_charts
from servewise.watch._report import report_document
from servewise.workload import Workload
from tests.watch.test_html import INJECTED, chart_data, sample_observation, sample_report, tables

LIVE_WINDOW_S = 3.0
LIVE_INTERVAL_S = 1.0


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("watch-web") / "catalog.db"
    with TestClient(create_app(db_url=f"sqlite:///{db}")) as test_client:
        yield test_client


def _errors(text: str) -> dict[str, str]:
    return {m[0]: html.unescape(m[1]) for m in re.findall(r'data-testid="error-([\w-]+)">([^<]*)<', text)}


def _report_json() -> str:
    return json.dumps(report_document(sample_report()))


def test_the_watch_page_is_in_the_navigation_with_both_forms(client: TestClient) -> None:
    page = client.get("/watch")
    assert page.status_code == 200
    assert 'data-testid="nav-watch"' in page.text and 'aria-current="page"' in page.text
    assert 'data-testid="report-form"' in page.text and 'data-testid="live-form"' in page.text
    assert 'id="chart-data"' not in page.text, "no report yet, nothing to draw"
    assert 'data-testid="nav-watch"' in client.get("/catalog").text


def test_an_uploaded_report_is_shown_with_the_same_charts_as_the_html_file(client: TestClient) -> None:
    report = sample_report()
    files = {"report_file": ("report.json", _report_json().encode(), "application/json")}
    page = client.post("/watch/report", files=files, data={"report_json": ""})
    assert page.status_code == 200, _errors(page.text)
    assert '<script src="/static/plotly.min.js" defer></script>' in page.text
    assert chart_data(page.text) == json.loads(json.dumps(report_charts(report))), (
        "one code path for the charts"
    )
    found = tables(page.text)
    assert found["watch-compliance"][1][0] == "TTFT p95" and found["watch-compliance"][1][3] == "✗"
    assert 'data-testid="watch-banner" data-passed="false"' in page.text
    assert "★ biggest saving" in page.text
    assert 'data-testid="download-html"' in page.text


def test_a_pasted_report_is_shown_and_strings_are_escaped(client: TestClient) -> None:
    document = report_document(sample_report(observation=sample_observation(warnings=(INJECTED,))))
    page = client.post("/watch/report", data={"report_json": json.dumps(document)})
    assert page.status_code == 200, _errors(page.text)
    assert INJECTED not in page.text and "&lt;script&gt;alert(" in page.text


def test_bad_report_input_is_a_400_with_the_message_next_to_the_field(client: TestClient) -> None:
    page = client.post("/watch/report", data={"report_json": "{not json"})
    assert page.status_code == 400
    assert _errors(page.text)["report"].startswith("the watch report is not JSON (line 1")
    assert "{not json" in page.text, "the pasted text is kept"

    page = client.post("/watch/report", data={"report_json": '{"schema_version": "1"}'})
    assert page.status_code == 400
    message = _errors(page.text)["report"]
    assert "\n" not in message and "servewise watch" in message

    page = client.post("/watch/report", data={"report_json": " "})
    assert page.status_code == 400 and "is empty" in _errors(page.text)["report"]


def test_the_shown_report_downloads_as_the_html_file_and_as_json(client: TestClient) -> None:
    document = _report_json()
    response = client.post("/watch/download", data={"report_json": document, "format": "html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'filename="servewise-watch-2026-11-25T100100.html"' in response.headers["content-disposition"]
    assert response.text.startswith("<!doctype html>") and "Plotly" in response.text
    response = client.post("/watch/download", data={"report_json": document, "format": "json"})
    assert response.status_code == 200 and response.json() == json.loads(document)


@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"endpoints": ""}, "endpoints", "no endpoints"),
        ({"endpoints": "ftp://x/metrics"}, "endpoints", "not an http(s) URL"),
        ({"window_s": "600"}, "window_s", "1 to 120 s"),
        ({"window_s": "abc"}, "window_s", "not a number"),
        ({"window_s": "0.5", "interval_s": "0.5"}, "window_s", "1 to 120 s"),
        ({"interval_s": "10", "window_s": "5"}, "interval_s", "longer than the 5 s window"),
        ({"option": "first"}, "option", "not a rank"),
        ({"plan_id": "no-such-plan"}, "plan", "no plan with id 'no-such-plan'"),
        ({"plan_id": ""}, "plan", "choose a plan"),
        ({"plan_json": '{"options": []}'}, "plan", "not a Servewise plan"),
    ],
)
def test_bad_live_input_is_a_400_next_to_its_field_before_anything_is_scraped(
    client: TestClient, fields: dict[str, str], field: str, needle: str
) -> None:
    form = {"plan_id": "no-such-plan", "endpoints": "http://127.0.0.1:9/metrics", "window_s": "3"} | fields
    page = client.post("/watch/live", data=form)
    assert page.status_code == 400
    errors = _errors(page.text)
    assert needle in errors[field], errors
    assert "\n" not in errors[field]


# -- live: two simulated replicas ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plan_document() -> dict[str, Any]:
    workload = Workload.model_validate(
        {
            "name": "watch-web",
            "use_case": "chatbot_conversational",
            "traffic": {"qps": 2, "prompt_tokens": {"mean": 64}, "output_tokens": {"mean": 16}},
            "slo": {"ttft_p95_ms": 500, "itl_p95_ms": 50, "e2e_p95_ms": 2000},
            "constraints": {"gpus": ["L4"]},
        }
    )
    document: dict[str, Any] = services.plan_for(workload, top=3)
    return document


@pytest.fixture(scope="module")
def replicas(plan_document: dict[str, Any]) -> Iterator[list[str]]:
    config = config_from_plan(plan_document, 1)
    with ExitStack() as stack:
        yield [stack.enter_context(serve_in_background(config)) for _ in range(2)]


def _load(urls: list[str], model: str, stop: threading.Event) -> None:
    """Short completions, round-robin over the replicas, two at a time, until ``stop``."""

    def worker(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = offset
            while not stop.is_set():
                body = {"model": model, "prompt": "hello " * 40, "max_tokens": 8}
                http.post(f"{urls[n % len(urls)]}/v1/completions", json=body).raise_for_status()
                n += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_live_watch_of_two_simulated_replicas_shows_their_report(
    client: TestClient, plan_document: dict[str, Any], replicas: list[str]
) -> None:
    model = plan_document["options"][0]["candidate"]["model"]
    stop = threading.Event()
    load = threading.Thread(target=_load, args=(replicas, model, stop), daemon=True)
    load.start()
    try:
        page = client.post(
            "/watch/live",
            files={"plan_file": ("plan.json", json.dumps(plan_document).encode(), "application/json")},
            data={
                "endpoints": "\n".join(f"{url}/metrics" for url in replicas),
                "window_s": f"{LIVE_WINDOW_S:g}",
                "interval_s": f"{LIVE_INTERVAL_S:g}",
            },
        )
    finally:
        stop.set()
        load.join(timeout=30)
    assert page.status_code == 200, _errors(page.text) or page.text[-2000:]
    charts = chart_data(page.text)
    assert {"latency", "load", "spend"} <= set(charts)
    load_chart = charts["load"]["data"][0]
    assert load_chart["name"] == "replicas up" and set(load_chart["y"]) == {2}
    assert sum(charts["load"]["data"][2]["y"]) > 0, "the load chart shows the requests sent"
    compliance = tables(page.text)["watch-compliance"][1:]
    assert [row[0] for row in compliance] == ["TTFT p95", "ITL p95", "E2E p95"]
    assert all(row[2].endswith("ms") for row in compliance), "each SLO was observed under load"
    assert model in page.text
