"""Planning endpoints over a real server: plan, compare, TCO, eval cost, predict, deploy, gateway views."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import yaml


def test_plan_ranks_options_and_keeps_top(plan_doc: dict[str, Any]) -> None:
    assert plan_doc["schema_version"] == "1"
    assert plan_doc["chosen"] == 0
    assert 1 <= len(plan_doc["options"]) <= 5
    assert plan_doc["workload"]["traffic"]["qps"] == 5
    ranks = [o["rank"] for o in plan_doc["options"]]
    assert ranks == sorted(ranks)


def test_plan_invalid_override_is_400_naming_the_field(api: httpx.Client) -> None:
    body = {"use_case": "chatbot_conversational", "overrides": {"traffic": {"qps": -5}}}
    response = api.post("/plan", json=body)
    assert response.status_code == 400
    assert "traffic.qps" in response.json()["error"]["message"]


def test_plan_schema_errors_are_422_with_the_field_path(api: httpx.Client) -> None:
    response = api.post("/plan", json={"use_case": "chatbot_conversational", "top": 0})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "top"
    missing = api.post("/plan", json={})
    assert missing.status_code == 422
    assert "use_case" in missing.json()["error"]["message"]


def test_plan_unknown_use_case_is_404(api: httpx.Client) -> None:
    response = api.post("/plan", json={"use_case": "chatbot_conversationl"})
    assert response.status_code == 404
    assert "chatbot_conversational" in response.json()["error"]["suggestions"]


def test_compare_two_plan_documents(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    response = api.post("/compare", json={"plans": [plan_doc, plan_doc], "labels": ["now", "again"]})
    assert response.status_code == 200, response.text
    document = response.json()
    assert [s["label"] for s in document["sides"]] == ["now", "again"]
    cost = next(d for d in document["deltas"] if d["metric"] == "usd_per_month")
    assert cost["delta"] == 0 and cost["side"] == "again"


def test_compare_rejects_a_non_plan(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    response = api.post("/compare", json={"plans": [plan_doc, {"hello": 1}]})
    assert response.status_code == 400
    assert "plan 2" in response.json()["error"]["message"]


def test_tco_of_a_plan_document(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    response = api.post("/tco", json={"plan": plan_doc, "vs": ["gpt-4o-mini"], "pue": 1.2})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["schema"] == "servewise.tco/1"
    chosen = plan_doc["options"][0]["candidate"]
    assert document["deployment"]["model"] == chosen["model"]
    assert [a["model"] for a in document["apis"]] == ["gpt-4o-mini"]
    assert {"--pue": 1.2}.items() <= {d["flag"]: d["value"] for d in document["defaults"]}.items()


def test_tco_out_of_range_term_is_422(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    response = api.post("/tco", json={"plan": plan_doc, "pue": 0.5})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "pue"


def test_evalcost_marks_defaults(api: httpx.Client) -> None:
    given = api.post(
        "/evalcost", json={"input_usd_per_1m": 1, "output_usd_per_1m": 2, "evals_per_month": 1000}
    )
    document = given.json()
    # 1000 judged evals x (1000 input tokens x $1 + 50 output tokens x $2) per 1M tokens
    assert document["usd_per_month"] == 1000 * (1000 * 1 + 50 * 2) / 1e6
    assert "--evals-per-month" not in document["inputs"]["defaults_used"]
    assert "--input-tokens" in document["inputs"]["defaults_used"]
    no_judge = api.post("/evalcost", json={})
    assert no_judge.status_code == 400 and "judge" in no_judge.json()["error"]["message"]


def test_predict_closed_loop(api: httpx.Client) -> None:
    body = {"model": "Qwen2.5-7B", "gpu": "H100-SXM", "precision": "bf16", "isl": 256, "osl": 32}
    response = api.post("/predict", json={**body, "concurrency": 2, "requests": 20})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["load"]["mode"] == "closed-loop" and document["completed"] == 20
    assert 0 < document["latency_ms"]["ttft"]["p50"] <= document["latency_ms"]["ttft"]["p99"]
    both = api.post("/predict", json={**body, "concurrency": 2, "qps": 1})
    assert both.status_code == 422
    dense = api.post("/predict", json={**body, "concurrency": 2, "tp": 2, "expert_parallel": True})
    assert dense.status_code == 400 and "is dense" in dense.json()["error"]["message"]
    too_long = api.post(
        "/predict", json={**body, "model": "Mistral-7B-v0.3", "isl": 32700, "osl": 100, "concurrency": 1}
    )
    assert too_long.status_code == 400 and "context is 32768 tokens" in too_long.json()["error"]["message"]


def test_deploy_zip_holds_valid_manifests_and_reports_the_check(
    api: httpx.Client, plan_doc: dict[str, Any]
) -> None:
    response = api.post("/deploy", json={"plan": plan_doc, "target": "vllm", "namespace": "team-a"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert json.loads(response.headers["x-servewise-check"]) == {"ok": True, "target": "vllm"}
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        manifests = [n for n in names if n.startswith("servewise-deploy/kubernetes/")]
        assert manifests
        kinds = {
            d["kind"] for n in manifests for d in yaml.safe_load_all(archive.read(n)) if isinstance(d, dict)
        }
        namespaces = {
            d["metadata"].get("namespace")
            for n in manifests
            for d in yaml.safe_load_all(archive.read(n))
            if isinstance(d, dict) and d.get("kind") == "Deployment"
        }
    assert "Deployment" in kinds and namespaces == {"team-a"}


def test_deploy_json_variant_and_bad_option(api: httpx.Client, plan_doc: dict[str, Any]) -> None:
    document = api.post(
        "/deploy", params={"format": "json"}, json={"plan": plan_doc, "target": "kserve"}
    ).json()
    assert document["target"] == "kserve" and document["check"]["ok"] is True
    assert document["summary"]["model"] == plan_doc["options"][0]["candidate"]["model"]
    assert any(f["path"].endswith(".yaml") for f in document["files"])
    bad = api.post("/deploy", json={"plan": plan_doc, "option": 999})
    assert bad.status_code == 400
    bad_namespace = api.post("/deploy", json={"plan": plan_doc, "namespace": "Not_Valid"})
    assert bad_namespace.status_code == 400


def test_gateway_views_are_empty_without_gateway_tables(api: httpx.Client) -> None:
    assert api.get("/gateway/spend", params={"by": "route"}).json() == {"by": "route", "rows": []}
    assert api.get("/gateway/budgets").json() == {"budgets": []}
    assert api.get("/gateway/spend", params={"by": "colour"}).status_code == 422


def test_openapi_documents_every_route_with_summary(base_url: str) -> None:
    schema = httpx.get(f"{base_url}/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    api_paths = [p for p in schema["paths"] if p.startswith("/api/v1/")]
    assert len(api_paths) >= 12
    assert all(op.get("summary") for op in operations if "tags" in op)
    assert httpx.get(f"{base_url}/docs").status_code == 200
