"""The admin API: a separate admin key (401 without, 403 wrong or unset), keys, budgets and spend over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from servewise.gateway import GatewayConfig
from tests.gateway.conftest import MODEL, RunningGateway, config_document, serve_gateway

ADMIN = "admin-secret-for-tests"


@pytest.fixture
def admin_gateway(
    simulator_url: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningGateway]:
    monkeypatch.setenv("SW_TEST_ADMIN_KEY", ADMIN)
    document = config_document(simulator_url, database_url=sqlite_url, admin_key_env="SW_TEST_ADMIN_KEY")
    yield from serve_gateway(GatewayConfig.model_validate(document))


def test_admin_endpoints_need_the_admin_key(admin_gateway: RunningGateway) -> None:
    url = f"{admin_gateway.url}/admin/keys"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
    client_key = admin_gateway.new_key()
    assert httpx.get(url, headers={"Authorization": f"Bearer {client_key}"}).status_code == 403
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_admin_api_is_off_without_an_admin_key(gateway: RunningGateway) -> None:
    answer = httpx.get(f"{gateway.url}/admin/keys", headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 403 and "admin API is off" in answer.json()["error"]["message"]


def test_keys_budgets_and_spend_over_http(admin_gateway: RunningGateway) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    base = f"{admin_gateway.url}/admin"
    created = httpx.post(f"{base}/keys", json={"org": "acme", "team": "search", "name": "web"}, headers=auth)
    assert created.status_code == 201
    key = created.json()["key"]
    budget = httpx.put(
        f"{base}/budgets",
        headers=auth,
        json={"scope": "org", "scope_id": "acme", "window": "daily", "hard_usd": 0.05},
    )
    assert budget.status_code == 200 and budget.json()["hard_usd"] == 0.05
    bad = httpx.put(
        f"{base}/budgets", headers=auth, json={"scope": "planet", "scope_id": "x", "window": "daily"}
    )
    assert bad.status_code == 400

    client = admin_gateway.client(key)
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    admin_gateway.wait_for_rows(1)
    spend = httpx.get(f"{base}/spend", params={"by": "tenant"}, headers=auth).json()
    assert spend["rows"][0]["tenant"] == "acme" and spend["rows"][0]["micro_usd"] == (4 + 1 + 3) * 1000
    (shown,) = httpx.get(f"{base}/budgets", headers=auth).json()["budgets"]
    assert shown["spent_usd"] == pytest.approx(0.008) and shown["reserved_usd"] == 0

    key_id = created.json()["key_id"]
    assert httpx.post(f"{base}/keys/{key_id}/revoke", headers=auth).json()["revoked_at"]
    revoked = httpx.post(
        f"{admin_gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert revoked.status_code == 403  # revoked through the admin API: effective at once in this process
