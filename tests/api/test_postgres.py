"""The same app over a PostgreSQL catalog (``SERVEWISE_TEST_PG_URL``; skipped with the reason when none answers)."""

from __future__ import annotations

import httpx
import pytest

from servewise.api import create_app

from .conftest import serving

pytestmark = pytest.mark.postgres


def test_catalog_plan_and_gateway_views_on_postgres(postgres_url: str) -> None:
    with (
        serving(create_app(db_url=postgres_url, web=False)) as url,
        httpx.Client(base_url=f"{url}/api/v1", timeout=60) as api,
    ):
        gpu = api.get("/catalog/gpus/H100-SXM")
        assert gpu.status_code == 200 and gpu.json()["offers"]
        assert api.get("/catalog/gpus/H100-SXN").json()["error"]["suggestions"]
        assert api.get("/catalog/health").status_code == 200
        plan = api.post(
            "/plan", json={"use_case": "chatbot_conversational", "overrides": {"traffic": {"qps": 2}}}
        )
        assert plan.status_code == 200 and plan.json()["options"]
        assert api.get("/gateway/budgets").json() == {"budgets": []}
