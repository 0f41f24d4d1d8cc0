"""LLM extraction against real servers: the Servewise simulator (an OpenAI API whose answers are synthetic text, so
the fallback to the rules is what runs) and a tiny OpenAI-compatible server started here that answers a fixed
completion — valid workload JSON, invalid JSON, an invalid workload — over real HTTP through the ``openai`` SDK."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from servewise.catalog import Catalog, open_catalog
from servewise.simulator import serve_in_background, simulator_config
from servewise.workload import build_workload, extract_intent, parse_intent

TEXT = "a support chatbot for 5,000 employees, answers within half a second, under $8k a month"
VALID = {
    "use_case": "document_analysis_rag",
    "traffic": {"qps": 7, "peak_factor": 2},
    "slo": {"ttft_p95_ms": 800},
    "budget_usd_month": 6000,
    "constraints": {"gpus": ["L4"], "providers": ["gcp"]},
}


@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('intent-llm') / 'catalog.db'}"


@pytest.fixture(scope="module")
def catalog(catalog_url: str) -> Iterator[Catalog]:
    with open_catalog(catalog_url) as opened:
        yield opened


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fixed_completion_server(
    content: str, *, reject_response_format: bool = False
) -> Iterator[tuple[str, list[Any]]]:
    """A real OpenAI-compatible server on a free port whose every chat completion answers ``content``; yields its
    URL and the request bodies it received."""
    received: list[Any] = []
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": "fixed-model", "object": "model", "created": 0, "owned_by": "test"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        received.append(body)
        if reject_response_format and "response_format" in body:
            error = {"message": "response_format is not supported", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=400)
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_valid_json_from_the_llm_is_the_workload(catalog: Catalog) -> None:
    with fixed_completion_server(json.dumps(VALID)) as (url, received):
        result = extract_intent(TEXT, base_url=url, catalog=catalog)
    assert result.method == "llm"
    assert result.data == VALID
    assert result.workload == build_workload(
        template=catalog.use_case("document_analysis_rag"), file_data=VALID
    )
    assert result.assumptions[0].startswith("extracted by the LLM fixed-model at ")
    assert any(
        "from the document_analysis_rag template: prompt 4,096 tokens" in a for a in result.assumptions
    )
    body = received[0]
    assert body["model"] == "fixed-model" and body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]["content"]
    assert (
        '"title":"Workload"' in system and "document_analysis_rag" in system
    )  # the schema and the templates
    assert body["messages"][1] == {"role": "user", "content": TEXT}


def test_json_in_a_fenced_block_and_a_workload_key_is_accepted(catalog: Catalog) -> None:
    content = "Here it is:\n```json\n" + json.dumps({"workload": VALID}) + "\n```"
    with fixed_completion_server(content) as (url, _):
        result = extract_intent(TEXT, base_url=url, model="any", catalog=catalog)
    assert result.method == "llm" and result.data == VALID


def test_a_server_without_json_mode_is_asked_again_without_it(catalog: Catalog) -> None:
    with fixed_completion_server(json.dumps(VALID), reject_response_format=True) as (url, received):
        result = extract_intent(TEXT, base_url=url, catalog=catalog)
    assert result.method == "llm"
    assert ["response_format" in body for body in received] == [True, False]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"use_case": "chatbot_conversational", "traffic": {"qps": ', "the LLM reply is not valid JSON"),
        ("I think you need about four GPUs.", "the LLM reply holds no JSON object"),
        ('{"use_case": "chatbot_conversational", "traffic": {"qps": -5}}', "traffic.qps"),
        ('{"use_case": "karaoke", "traffic": {"qps": 5}}', "unknown use case 'karaoke'"),
        ('{"use_case": "chatbot_conversational", "traffic": {"qps": 5}, "constraints": {"gpus": ["Z9000"]}}',
         "a GPU the catalog does not know: 'Z9000'"),
    ],
)  # fmt: skip
def test_an_unusable_reply_falls_back_to_the_rules_and_says_why(
    content: str, reason: str, catalog: Catalog
) -> None:
    with fixed_completion_server(content) as (url, _):
        result = extract_intent(TEXT, base_url=url, catalog=catalog)
    assert result.method == "rules"
    assert result.assumptions[0].startswith("LLM extraction failed, used the rules instead: ")
    assert reason in result.assumptions[0]
    assert result.workload == parse_intent(TEXT, catalog=catalog).workload


def test_the_simulator_answers_lorem_text_so_the_rules_are_used(catalog: Catalog, catalog_url: str) -> None:
    config = simulator_config(model="Llama-3.1-8B", gpu="L4", speed=50.0, db_url=catalog_url)
    with serve_in_background(config) as url:
        result = extract_intent(TEXT, base_url=url, catalog=catalog)
    assert result.method == "rules"
    assert result.assumptions[0].startswith("LLM extraction failed, used the rules instead: the LLM reply ")
    assert result.workload == parse_intent(TEXT, catalog=catalog).workload


def test_an_unreachable_endpoint_falls_back(catalog: Catalog) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    result = extract_intent(TEXT, base_url=url, model="m", timeout_s=2, catalog=catalog)
    assert result.method == "rules"
    assert f"cannot reach the LLM endpoint at {url}" in result.assumptions[0]


def test_the_endpoint_comes_from_the_environment(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    with fixed_completion_server(json.dumps(VALID)) as (url, received):
        monkeypatch.setenv("SERVEWISE_INTENT_LLM_URL", f"{url}/v1")
        monkeypatch.setenv("SERVEWISE_INTENT_LLM_MODEL", "from-env")
        result = extract_intent(TEXT, catalog=catalog)
    assert result.method == "llm" and received[0]["model"] == "from-env"


def test_without_an_endpoint_the_rules_are_used_silently(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVEWISE_INTENT_LLM_URL", raising=False)
    result = extract_intent(TEXT, catalog=catalog)
    assert result.method == "rules"
    assert result.assumptions == parse_intent(TEXT, catalog=catalog).assumptions
