"""``POST /intent``: free text to a workload through the rule-based parser."""

from __future__ import annotations

import httpx


def test_intent_reads_the_issue_example(api: httpx.Client) -> None:
    text = "a support chatbot for 5,000 employees, answers within half a second, under $8k a month"
    response = api.post("/intent", json={"text": text})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["method"] == "rules"
    assert document["workload"]["budget_usd_month"] == 8000
    assert document["matched"]


def test_intent_empty_text_is_422(api: httpx.Client) -> None:
    response = api.post("/intent", json={"text": ""})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "text"
