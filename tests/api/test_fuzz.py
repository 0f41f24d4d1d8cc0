"""Schemathesis fuzzing against the OpenAPI schema over a real server: no generated input may cause a 5xx.

Why capped: every operation gets a few generated requests (``max_examples``); the planning operations (plan,
compare) run the whole planner when a body happens to be valid, so they get fewer, and the test module stays fast.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from servewise.api import create_app

OPENAPI = create_app(web=False).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
planning_schema = schemathesis.openapi.from_dict(
    OPENAPI,
    # The coverage phase sends one request per boundary value of every field; for the planning operations that
    # means dozens of plans, so they get the schema's own examples and a few generated bodies only.
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
)

_SLOW = ("/api/v1/plan", "/api/v1/compare")


@pytest.fixture(scope="module")
def session() -> Any:
    with requests.Session() as http:
        yield http


@schema.exclude(path=list(_SLOW)).parametrize()
@settings(
    max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
def test_no_server_error_on_generated_input(case: Any, base_url: str, session: Any) -> None:
    case.call_and_validate(base_url=base_url, session=session, checks=[not_a_server_error])


@planning_schema.include(path=list(_SLOW)).parametrize()
@settings(
    max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
def test_no_server_error_on_generated_planning_input(case: Any, base_url: str, session: Any) -> None:
    case.call_and_validate(base_url=base_url, session=session, checks=[not_a_server_error])
