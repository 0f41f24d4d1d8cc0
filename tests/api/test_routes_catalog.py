"""Catalog endpoints: list with filters and limit, show by name with suggestions, health; one error shape."""

from __future__ import annotations

import httpx


def test_list_filters_and_limits_rows(api: httpx.Client) -> None:
    every = api.get("/catalog/gpus").json()
    nvidia = api.get("/catalog/gpus", params={"filter": "vendor=nvidia", "limit": 2}).json()
    assert nvidia["kind"] == "gpus"
    assert len(nvidia["rows"]) == 2
    assert all(row["vendor"].lower() == "nvidia" for row in nvidia["rows"])
    assert 2 < nvidia["total"] < every["total"]


def test_list_offers_carry_source_and_date(api: httpx.Client) -> None:
    rows = api.get("/catalog/offers", params={"limit": 3}).json()["rows"]
    assert rows and all("source" in row and "as_of" in row for row in rows)


def test_unknown_filter_key_is_400_naming_the_valid_keys(api: httpx.Client) -> None:
    response = api.get("/catalog/gpus", params={"filter": "colour=red"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert "colour" in error["message"] and "vendor" in error["message"]


def test_unknown_kind_is_422_with_the_field(api: httpx.Client) -> None:
    response = api.get("/catalog/teapots")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "kind"


def test_show_gpu_with_offers_and_model_with_benchmarks(api: httpx.Client) -> None:
    gpu = api.get("/catalog/gpus/H100-SXM").json()
    assert gpu["kind"] == "gpu" and gpu["record"]["name"] == "H100-SXM"
    assert gpu["offers"] and all(o["gpu"] == "H100-SXM" for o in gpu["offers"])
    model = api.get("/catalog/models/Qwen/Qwen2.5-7B-Instruct").json()
    assert model["record"]["name"] == "Qwen2.5-7B"
    assert isinstance(model["benchmark_rows"], int)


def test_unknown_name_is_404_with_suggestions(api: httpx.Client) -> None:
    response = api.get("/catalog/gpus/H100-SXN")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "H100-SXM" in error["suggestions"]
    assert "did you mean" in error["message"]


def test_health_counts_match_findings(api: httpx.Client) -> None:
    health = api.get("/catalog/health").json()
    severities = [f["severity"] for f in health["findings"]]
    assert health["errors"] == severities.count("error")
    assert health["warnings"] == severities.count("warning")
