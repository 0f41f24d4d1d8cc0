"""Fixtures of the ``watch`` core tests (W1): a real plan from the planner on the packaged catalog, written as the
file ``servewise plan -o`` writes, one catalog database for the session, and two simulated replicas of the plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from servewise.planner import make_plan, plan_document
from servewise.simulator import SimulatorConfig, config_from_plan, serve_in_background
from servewise.watch._observation import WatchTarget
from servewise.watch._target import target_from_plan
from servewise.workload import Workload
from tests.factories import packaged_snapshot

RELAXED_WORKLOAD: dict[str, Any] = {
    "name": "watch-test",
    "traffic": {"qps": 4, "prompt_tokens": 512, "output_tokens": 128},
    "slo": {"ttft_p95_ms": 2000, "itl_p95_ms": 100, "e2e_p95_ms": 30000},
    "budget_usd_month": 9000,
    "constraints": {"models": ["Llama-3.1-8B"], "precisions": ["bf16"], "gpus": ["L4"]},
}
"""SLOs a lightly loaded simulated L4 replica meets with room (so the gates pass unless a test tightens them)."""


@pytest.fixture(scope="session")
def watch_plan() -> dict[str, Any]:
    return plan_document(make_plan(Workload.model_validate(RELAXED_WORKLOAD), packaged_snapshot()))


@pytest.fixture(scope="session")
def watch_plan_file(watch_plan: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("watch-plan") / "plan.json"
    path.write_text(json.dumps(watch_plan, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def watch_target(watch_plan: dict[str, Any]) -> WatchTarget:
    return target_from_plan(watch_plan, "plan.json")


@pytest.fixture(scope="session")
def watch_catalog_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One catalog database for the session (the simulator and the analyses only read it)."""
    return f"sqlite:///{tmp_path_factory.mktemp('watch-catalog') / 'catalog.db'}"


@pytest.fixture(scope="session")
def replicas(
    watch_plan: dict[str, Any], watch_catalog_url: str
) -> Iterator[tuple[list[str], SimulatorConfig]]:
    """Two simulated vLLM replicas of the plan's chosen option (real time): their base URLs and config."""
    rank = watch_plan["options"][watch_plan["chosen"]]["rank"]
    config = config_from_plan(watch_plan, rank, db_url=watch_catalog_url)
    with ExitStack() as stack:
        yield [stack.enter_context(serve_in_background(config)) for _ in range(2)], config
