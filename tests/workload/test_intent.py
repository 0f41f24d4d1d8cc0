"""Free text → workload by rules: a table of phrasings with the workload each must give, the assumptions a user must
see, half-understood and unusable text, and the data planned for real with ``servewise plan -f``."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from servewise.catalog import Catalog, open_catalog
from servewise.cli import main
from servewise.errors import UsageError
from servewise.workload import IntentResult, build_workload, load_workload_file, parse_intent

EMPLOYEE_QPS = 20 / 86400  # 20 requests per employee per working day, averaged over 24 h
USER_QPS = 10 / 86400  # 10 requests per user per day
DEV_QPS = 60 * 8 / 86400  # 60 completions per developer per working hour, 8 hours
MONTH_S = 730 * 3600


@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One catalog database for the module: parsing only reads names, so sharing it is safe and fast."""
    return f"sqlite:///{tmp_path_factory.mktemp('intent') / 'catalog.db'}"


@pytest.fixture(scope="module")
def catalog(catalog_url: str) -> Iterator[Catalog]:
    with open_catalog(catalog_url) as opened:
        yield opened


# phrase → expected: use_case, qps (average), peak (peak qps), slo fields (None = no target), budget, constraints,
# priority, prompt/output tokens. Keys left out are not checked.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("a support chatbot for 5,000 employees, answers within half a second, under $8k a month",
     {"use_case": "chatbot_conversational", "qps": 5000 * EMPLOYEE_QPS, "peak": 3 * 5000 * EMPLOYEE_QPS,
      "slo": {"ttft_p95_ms": 500, "itl_p95_ms": 25, "e2e_p95_ms": 7000}, "budget": 8000}),
    ("RAG over our knowledge base, 20 qps, p95 under 300 ms, H100 only, on AWS",
     {"use_case": "document_analysis_rag", "qps": 20, "peak": 20, "slo": {"ttft_p95_ms": 300},
      "constraints": {"gpus": ["H100"], "providers": ["aws"]}}),
    ("code completion for 2k developers, first token under 200ms, no more than 8 GPUs, fp8",
     {"use_case": "code_completion", "qps": 2000 * DEV_QPS, "peak": 3 * 2000 * DEV_QPS, "slo": {"ttft_p95_ms": 200},
      "constraints": {"max_gpus": 8, "precisions": ["fp8"]}}),
    ("summarise long reports, 10k documents per day, under 10 grand a month",
     {"use_case": "long_document_summarization", "qps": 10000 / 86400, "peak": 2 * 10000 / 86400, "budget": 10000}),
    ("translate product descriptions from English to German, 1.5M requests a month, on GCP, cheapest",
     {"use_case": "translation", "qps": 1.5e6 / MONTH_S, "constraints": {"providers": ["gcp"]}, "priority": "cost"}),
    ("chatbot with 200 concurrent users, latency matters most",
     {"use_case": "chatbot_conversational", "qps": 200 / 30, "peak": 200 / 30, "priority": "latency"}),
    ("customer support assistant for 100k users, responses in 2 seconds, $20,000 per month",
     {"use_case": "chatbot_conversational", "qps": 1e5 * USER_QPS, "peak": 2e5 * USER_QPS,
      "slo": {"ttft_p95_ms": 2000}, "budget": 20000}),
    ("50 requests per second of code generation, 70B or bigger, spot instances",
     {"use_case": "code_generation_detailed", "qps": 50, "constraints": {"min_params_b": 70, "pricing": "spot"}}),
    ("a chatbot, 3,000 requests per minute at peak, p99 first token under 1 s",
     {"qps": 50, "peak": 50, "slo": {"ttft_p99_ms": 1000, "ttft_p95_ms": None}}),
    ("average 10 qps, peak 30 qps, chat assistant", {"use_case": "chatbot_conversational", "qps": 10, "peak": 30}),
    ("RAG chatbot, 5 QPS with peak 3x, budget $5k/month, Azure, A100s",
     {"use_case": "document_analysis_rag", "qps": 5, "peak": 15, "budget": 5000,
      "constraints": {"providers": ["azure"], "gpus": ["A100"]}}),
    ("summarize support tickets, 500k per day, answers within 10 seconds",
     {"use_case": "summarization_short", "qps": 5e5 / 86400, "slo": {"ttft_p95_ms": 10000, "e2e_p95_ms": 18000}}),
    ("a translation service, full translation back within 60 seconds, int4 is fine",
     {"use_case": "translation", "qps": 1, "slo": {"e2e_p95_ms": 60000, "ttft_p95_ms": 400},
      "constraints": {"precisions": ["int4"]}}),
    ("content generation for marketing, 2,000 articles a day, balanced",
     {"use_case": "content_generation", "qps": 2000 / 86400, "priority": "balanced"}),
    ("long document summarization, 100-page reports, 200 per day, $3k a month",
     {"use_case": "long_document_summarization", "qps": 200 / 86400, "prompt": 50000, "budget": 3000}),
    ("IDE autocomplete for 500 engineers on L4 GPUs, within 8 GPUs",
     {"use_case": "code_completion", "qps": 500 * DEV_QPS, "constraints": {"gpus": ["L4"], "max_gpus": 8}}),
    ("chatbot on H100 or A100, no more than 4 GPUs, fp8 only, 2 qps",
     {"qps": 2, "constraints": {"gpus": ["H100", "A100"], "max_gpus": 4, "precisions": ["fp8"]}}),
    ("Llama 3.1 70B chatbot at 15 qps",
     {"qps": 15, "constraints": {"models": ["Llama-3.1-70B"], "min_params_b": None}}),
    ("document Q&A over our wiki, prompts of about 6,000 tokens, answers of 300 tokens, 2 requests per second",
     {"use_case": "document_analysis_rag", "qps": 2, "prompt": 6000, "output": 300}),
    ("batch summarization of emails overnight, 1M emails per day, cheapest",
     {"use_case": "summarization_short", "qps": 1e6 / 86400, "priority": "cost",
      "slo": {"ttft_p95_ms": None, "itl_p95_ms": None, "e2e_p95_ms": None}}),
    ("chatbot, answers at 40 tokens per second, first token under 500 ms, 10 rps",
     {"qps": 10, "slo": {"itl_p95_ms": 25, "ttft_p95_ms": 500}}),
    ("support bot for a team of 50, steady traffic",
     {"use_case": "chatbot_conversational", "qps": 50 * EMPLOYEE_QPS, "peak": 50 * EMPLOYEE_QPS}),
    ("a chatbot for 10,000 employees, each sends 5 requests per hour",
     {"qps": 10000 * 5 * 8 / 86400, "peak": 3 * 10000 * 5 * 8 / 86400}),
    ("1M monthly active users, chat assistant", {"qps": 1e6 * 0.2 * USER_QPS, "peak": 2 * 1e6 * 0.2 * USER_QPS}),
    ("RAG for 20k daily active users, median response under 1 second",
     {"use_case": "document_analysis_rag", "qps": 20000 * USER_QPS, "slo": {"ttft_p50_ms": 1000, "ttft_p95_ms": None}}),
    ("code assistant generating whole functions, 30 requests/min, 3-year reserved",
     {"use_case": "code_generation_detailed", "qps": 0.5, "constraints": {"pricing": "reserved-3y"}}),
    ("chat, 100 qps, on CPU", {"qps": 100, "constraints": {"cpu": True}}),
    ("translation from French into English at 5 qps, under €2,000 per month",
     {"use_case": "translation", "qps": 5, "budget": 2000}),
    ("legal contract analysis at 1 request per minute, at least 30B parameters",
     {"use_case": "research_legal_analysis", "qps": 1 / 60, "constraints": {"min_params_b": 30}}),
    ("chatbot for 5k users with spiky traffic", {"qps": 5000 * USER_QPS, "peak": 3 * 5000 * USER_QPS}),
    ("chatbot, 20 qps during business hours", {"qps": 20 / 3, "peak": 20}),
    ("2,000 requests per day during working hours, RAG",
     {"use_case": "document_analysis_rag", "qps": 2000 / 86400, "peak": 3 * 2000 / 86400}),
    ("a chatbot on runpod or lambda, $1.50 an hour, 1 qps",
     {"budget": 1.5 * 730, "constraints": {"providers": ["runpod", "lambda"]}}),
    ("chatbot, $120k a year budget, 3 qps", {"budget": 10000, "qps": 3}),
    ("qps of 40, chatbot, Qwen3-32B, int4",
     {"qps": 40, "constraints": {"models": ["Qwen3-32B"], "precisions": ["int4"]}}),
    ("5 requests per second, prompts 2k tokens, 500-token answers, e2e under 20 seconds",
     {"use_case": "chatbot_conversational", "qps": 5, "prompt": 2000, "output": 500, "slo": {"e2e_p95_ms": 20000}}),
    ("code completion, 99th percentile under 150 ms, 30 qps",
     {"use_case": "code_completion", "slo": {"ttft_p99_ms": 150, "ttft_p95_ms": None}}),
    ("on an 8xH100 node, chatbot, 10 qps", {"constraints": {"gpus": ["H100"], "max_gpus": 8}}),
    ("summaries of 200 words for short articles, 3 per second",
     {"use_case": "summarization_short", "qps": 3, "output": 267}),
    ("an internal assistant for 800 staff", {"use_case": "chatbot_conversational", "qps": 800 * EMPLOYEE_QPS}),
    ("translation: ten thousand requests a day, Japanese to English",
     {"use_case": "translation", "qps": 10000 / 86400}),
    ("chatbot, half a million requests per day, latency under 300ms p95, under $15k/month on AWS",
     {"qps": 5e5 / 86400, "slo": {"ttft_p95_ms": 300}, "budget": 15000, "constraints": {"providers": ["aws"]}}),
    ("RAG with long documents at 2 qps", {"use_case": "document_analysis_rag", "prompt": 10240, "qps": 2}),
    ("a chatbot with no more than 2 GPUs, 1 qps, quantization is fine",
     {"constraints": {"max_gpus": 2, "precisions": ["bf16", "fp8", "int4"]}}),
    ("p95 end-to-end latency under 5 s for code completion, 10 qps",
     {"use_case": "code_completion", "slo": {"e2e_p95_ms": 5000, "ttft_p95_ms": 100}}),
    ("H100 only", {"use_case": "chatbot_conversational", "qps": 1, "constraints": {"gpus": ["H100"]}}),
]  # fmt: skip


def _check(result: IntentResult, expected: dict[str, Any]) -> None:
    w = result.workload
    if "use_case" in expected:
        assert w.use_case == expected["use_case"]
    if "qps" in expected:
        assert w.traffic.avg_qps == pytest.approx(expected["qps"], rel=1e-3)
    if "peak" in expected:
        assert w.traffic.peak_qps == pytest.approx(expected["peak"], rel=1e-3)
    for field, value in expected.get("slo", {}).items():
        assert getattr(w.slo, field) == (pytest.approx(value) if value is not None else None), field
    if "budget" in expected:
        assert w.budget_usd_month == pytest.approx(expected["budget"])
    for field, value in expected.get("constraints", {}).items():
        assert getattr(w.constraints, field) == value, field
    if "priority" in expected:
        assert str(w.priority) == expected["priority"]
    if "prompt" in expected:
        assert w.traffic.prompt_tokens.mean == pytest.approx(expected["prompt"])
    if "output" in expected:
        assert w.traffic.output_tokens.mean == pytest.approx(expected["output"])


@pytest.mark.parametrize(("phrase", "expected"), CASES, ids=[c[0][:50] for c in CASES])
def test_phrasing_gives_the_expected_workload(
    phrase: str, expected: dict[str, Any], catalog: Catalog, tmp_path: Path
) -> None:
    result = parse_intent(phrase, catalog=catalog)
    assert result.method == "rules"
    _check(result, expected)
    assert result.matched and result.assumptions
    # the data is a workload file: YAML round trip, then template < file gives the same workload
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(result.data), encoding="utf-8")
    loaded = load_workload_file(path)
    assert build_workload(template=catalog.use_case(loaded["use_case"]), file_data=loaded) == result.workload


def test_there_are_at_least_forty_phrasings() -> None:
    assert len(CASES) >= 40


def test_issue_example_says_what_it_assumed(catalog: Catalog) -> None:
    result = parse_intent(
        "a support chatbot for 5,000 employees, answers within half a second, under $8k a month",
        catalog=catalog,
    )
    text = "\n".join(result.assumptions)
    assert "20 requests per employee per working day" in text
    assert "business-hours peak factor 3" in text
    assert "TTFT p95 500 ms" in text and "no percentile given" in text
    assert "from the chatbot_conversational template: prompt 512 tokens" in text
    assert result.data == {
        "use_case": "chatbot_conversational",
        "traffic": {
            "users": 5000,
            "requests_per_user_hour": pytest.approx(20 / 24, rel=1e-5),
            "peak_factor": 3.0,
        },
        "slo": {"ttft_p95_ms": 500.0},
        "budget_usd_month": 8000.0,
    }
    assert result.ignored == ()
    assert any(m.startswith('"5,000 employees"') for m in result.matched)


def test_half_understood_text_keeps_what_it_understood_and_lists_the_rest(catalog: Catalog) -> None:
    result = parse_intent(
        "a chatbot at 10 qps, deployed with blue-green rollouts in Kubernetes, without H100", catalog=catalog
    )
    assert result.workload.traffic.qps == 10
    assert result.workload.constraints.gpus == []
    ignored = " | ".join(result.ignored)
    assert "Kubernetes" in ignored and "blue-green" in ignored
    assert "excluding a GPU is not supported" in ignored


def test_a_second_rate_is_ignored_not_mixed_in(catalog: Catalog) -> None:
    result = parse_intent("chatbot, 20 qps, 40 qps", catalog=catalog)
    assert result.workload.traffic.qps == 20
    assert any("a second request rate" in line for line in result.ignored)


def test_named_rate_wins_over_users_and_says_so(catalog: Catalog) -> None:
    result = parse_intent("chatbot for 5,000 employees, 12 requests per second", catalog=catalog)
    assert result.workload.traffic.qps == 12 and result.workload.traffic.users is None
    assert any("5,000 employees" in line for line in result.ignored)


def test_per_token_prices_are_not_a_budget(catalog: Catalog) -> None:
    result = parse_intent("chatbot at 3 qps, $2 per 1M tokens", catalog=catalog)
    assert result.workload.budget_usd_month is None
    assert any("not a budget" in line for line in result.ignored)


@pytest.mark.parametrize("text", ["", "   ", "hello world", "asdf qwerty zxcv"])
def test_empty_or_nonsense_is_a_usage_error_with_an_example(text: str, catalog: Catalog) -> None:
    with pytest.raises(UsageError, match=r"describe the traffic, e\.g\. "):
        parse_intent(text, catalog=catalog)


@pytest.mark.parametrize(
    "phrase",
    [
        "a support chatbot for 5,000 employees, answers within half a second, under $8k a month",
        "RAG over our knowledge base, 2 qps, p95 under 2 seconds, on AWS",
        "code completion for 200 developers, first token under 300ms, fp8",
    ],
)
def test_parsed_data_plans_with_plan_f(
    phrase: str,
    catalog_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SERVEWISE_DB_URL", catalog_url)
    result = parse_intent(phrase)  # the catalog named by SERVEWISE_DB_URL, as the CLI and the API do
    path = tmp_path / "workload.yaml"
    path.write_text(yaml.safe_dump(result.data), encoding="utf-8")
    capsys.readouterr()
    main(["plan", "-f", str(path), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    planned = document["workload"]
    assert planned["use_case"] == result.workload.use_case
    assert planned["traffic"]["peak_factor"] == result.workload.traffic.peak_factor
    assert planned["slo"] == result.workload.slo.model_dump(mode="json")
    assert document["options"], "a parsed workload should have at least one feasible option"


_FRAGMENTS = (
    "a", "chatbot", "5,000", "employees", "$8k", "a month", "half a second", "p95", "under", "300 ms", "0 qps",
    "-5 qps", "per", "day", "peak", "0x", "3x", "H100", "no", "GPUs", "fewer than 1 GPUs", "70B", "or bigger", "fp8",
    "0 tokens", "prompts of", "words", "0 pages", "users", "each", "sends", "a couple of", "half", "concurrent",
    "english to german", "€", "grand", "1.5M", "per second", "at peak", "median", "first token", "0 tokens per second",
    "batch", "spiky", "business hours", "long documents", "RAG", "Llama 3.1 70B", "azure", "ten thousand", ",",
    "one and a half seconds", "0 ms", "99999999999 qps",
)  # fmt: skip


def test_any_mix_of_fragments_is_a_workload_or_a_usage_error(catalog: Catalog) -> None:
    """What the API fuzzes: no text may raise anything but a ``UsageError`` (a 4xx, never a 5xx)."""
    rng = random.Random(9)
    outcomes = {"workload": 0, "usage error": 0}
    for _ in range(300):
        text = " ".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 8)))
        try:
            parse_intent(text, catalog=catalog)
            outcomes["workload"] += 1
        except UsageError as err:
            assert "\n" not in str(err)
            outcomes["usage error"] += 1
    assert outcomes["workload"] > 100 and outcomes["usage error"] > 0
