"""``/api/v1/watch`` over a real server: a live watch of two simulated replicas (JSON and HTML), rendering a report
document, and every kind of bad input answered in the one error body with a one-line message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from servewise.simulator import config_from_plan, serve_in_background
from servewise.watch._report import report_document
from tests.watch.test_html import sample_report

WINDOW_S = 2.0
INTERVAL_S = 1.0


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message", "field"} and "\n" not in error["message"]
    return error


def test_render_turns_a_report_document_into_the_html_file(api: httpx.Client) -> None:
    response = api.post("/watch/render", json=report_document(sample_report()))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!doctype html>") and 'data-chart="latency"' in response.text


def test_render_refuses_what_is_not_a_report(api: httpx.Client) -> None:
    error = _error(api.post("/watch/render", json={"schema_version": "1"}), 400)
    assert error["code"] == "bad_request" and "servewise watch" in error["message"]
    error = _error(api.post("/watch/render", json=[1, 2]), 422)
    assert error["code"] == "validation_error"
    malformed = api.post("/watch/render", content=b"{nope", headers={"content-type": "application/json"})
    assert _error(malformed, 422)["code"] == "validation_error"


@pytest.mark.parametrize(
    ("change", "status", "field", "needle"),
    [
        ({"endpoints": []}, 422, "endpoints", "at least 1 item"),
        ({"window_s": 600}, 422, "window_s", "less than or equal to 120"),
        ({"interval_s": 0.1}, 422, "interval_s", "greater than or equal to 0.5"),
        ({"interval_s": 20, "window_s": 10}, 400, None, "longer than the 10 s window"),
        ({"endpoints": ["file:///etc/passwd"]}, 400, None, "not an http(s) URL"),
        ({"endpoints": ["http://169.254.169.254/latest/meta-data/"]}, 400, None, "link-local"),
        ({"gateway": "http://[fe80::1]:8080/metrics"}, 400, None, "link-local"),
        ({"plan": {"options": []}}, 400, None, "not a Servewise plan"),
        ({"surprise": 1}, 422, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_live_input_is_refused_before_scraping(
    api: httpx.Client,
    plan_doc: dict[str, Any],
    change: dict[str, Any],
    status: int,
    field: str | None,
    needle: str,
) -> None:
    body = {"plan": plan_doc, "endpoints": ["http://127.0.0.1:9/metrics"], "window_s": 2} | change
    error = _error(api.post("/watch", json=body), status)
    assert needle in error["message"] and error["field"] == field


def test_a_server_with_an_allow_list_scrapes_only_inside_it(
    api: httpx.Client, plan_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SERVEWISE_WATCH_ALLOW`` (read per request, as the server's environment): an address outside it is refused
    before any scrape; one inside goes on to be scraped (here: nothing listens on port 9, so "answered")."""
    monkeypatch.setenv("SERVEWISE_WATCH_ALLOW", "10.0.0.0/8")
    body = {"plan": plan_doc, "endpoints": ["http://127.0.0.1:9/metrics"], "window_s": 1, "interval_s": 1}
    error = _error(api.post("/watch", json=body), 400)
    assert "outside the networks" in error["message"] and "10.0.0.0/8" in error["message"]
    monkeypatch.setenv("SERVEWISE_WATCH_ALLOW", "10.0.0.0/8, 127.0.0.1")
    assert "answered" in _error(api.post("/watch", json=body), 400)["message"]


def test_an_endpoint_that_does_not_answer_is_a_400(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    body = {"plan": plan_doc, "endpoints": ["http://127.0.0.1:9/metrics"], "window_s": 1, "interval_s": 1}
    error = _error(api.post("/watch", json=body), 400)
    assert "answered" in error["message"]


@pytest.fixture(scope="module")
def replicas(plan_doc: dict[str, Any]) -> Iterator[list[str]]:
    config = config_from_plan(plan_doc, 1)
    with ExitStack() as stack:
        yield [stack.enter_context(serve_in_background(config)) for _ in range(2)]


def _send_load(urls: list[str], model: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as http:
        n = 0
        while not stop.is_set():
            body = {"model": model, "prompt": "hi " * 50, "max_tokens": 8}
            http.post(f"{urls[n % len(urls)]}/v1/completions", json=body).raise_for_status()
            n += 1


def _watch(api: httpx.Client, body: dict[str, Any], urls: list[str], model: str, fmt: str) -> httpx.Response:
    stop = threading.Event()
    load = threading.Thread(target=_send_load, args=(urls, model, stop), daemon=True)
    load.start()
    try:
        return api.post("/watch", params={"format": fmt}, json=body)
    finally:
        stop.set()
        load.join(timeout=30)


def test_a_live_watch_of_two_simulated_replicas(
    api: httpx.Client, plan_doc: dict[str, Any], replicas: list[str]
) -> None:
    model = plan_doc["options"][0]["candidate"]["model"]
    body = {"plan": plan_doc, "endpoints": replicas, "window_s": WINDOW_S, "interval_s": INTERVAL_S}
    response = _watch(api, body, replicas, model, "json")
    assert response.status_code == 200, response.text
    document = response.json()
    text = json.dumps(document)
    assert model in text
    assert all(url in text for url in replicas), "the observation names the scraped endpoints"
    response = _watch(api, body, replicas, model, "html")
    assert response.status_code == 200, response.text
    assert response.text.startswith("<!doctype html>") and 'data-chart="load"' in response.text
