"""Plans made by the real planner on the packaged catalog (small workloads, well under a second each), once per
session, and the rendered bundles of each plan for each target."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from servewise.planner import make_plan, plan_document
from servewise.workload import Workload
from tests.factories import packaged_snapshot

_CHAT_SLO = {"ttft_p95_ms": 500, "itl_p95_ms": 50}

WORKLOADS: dict[str, dict[str, Any]] = {
    # one GPU per replica, several replicas, a provider without a managed Kubernetes label (GFD product)
    "single_gpu": {
        "traffic": {"qps": 5, "prompt_tokens": 512, "output_tokens": 256},
        "slo": _CHAT_SLO,
        "constraints": {"models": ["Llama-3.1-8B"], "precisions": ["bf16"], "gpus": ["L40S"]},
    },
    # a 70B model on 8 H100s per replica, on AWS
    "tp_multi_gpu": {
        "traffic": {"qps": 2, "prompt_tokens": 1024, "output_tokens": 256},
        "slo": {"ttft_p95_ms": 2000, "itl_p95_ms": 80, "e2e_p95_ms": 30000},
        "constraints": {
            "models": ["Llama-3.1-70B"],
            "precisions": ["bf16"],
            "gpus": ["H100-SXM"],
            "providers": ["aws"],
        },
    },
    # fp8 weights from a 16-bit checkpoint
    "fp8": {
        "traffic": {"qps": 5, "prompt_tokens": 512, "output_tokens": 256},
        "slo": _CHAT_SLO,
        "constraints": {"models": ["Qwen2.5-7B"], "precisions": ["fp8"], "gpus": ["L40S"]},
    },
    # a CPU instance
    "cpu": {
        "traffic": {"qps": 0.05, "prompt_tokens": 256, "output_tokens": 128},
        "slo": {"ttft_p95_ms": 3000, "itl_p95_ms": 250},
        "constraints": {"models": ["Llama-3.2-1B"], "precisions": ["bf16"], "cpu": True},
    },
    # shared prefixes, a peak factor, L4 (on GCP: GKE accelerator label) or A10G
    "prefix": {
        "traffic": {
            "qps": 30,
            "peak_factor": 2,
            "prompt_tokens": 2000,
            "output_tokens": 200,
            "prefix_share": 0.5,
        },
        "slo": {"ttft_p95_ms": 800, "itl_p95_ms": 50},
        "constraints": {"models": ["Llama-3.1-8B"], "precisions": ["bf16", "fp8"], "gpus": ["L4", "A10G"]},
    },
    # a monthly budget (alerts in dollars of the budget, not of the option), on Azure
    "budget": {
        "traffic": {"qps": 5, "prompt_tokens": 512, "output_tokens": 256},
        "slo": _CHAT_SLO,
        "budget_usd_month": 6000,
        "constraints": {"models": ["Llama-3.1-8B"], "precisions": ["bf16"], "providers": ["azure"]},
    },
}


@pytest.fixture(scope="session")
def plans() -> dict[str, dict[str, Any]]:
    snapshot = packaged_snapshot()
    return {
        name: plan_document(make_plan(Workload.model_validate(workload), snapshot))
        for name, workload in WORKLOADS.items()
    }


@pytest.fixture
def plan(plans: dict[str, dict[str, Any]]) -> Any:
    """A deep copy of one plan, by name: ``plan("fp8")`` (tests may edit it)."""

    def get(name: str) -> dict[str, Any]:
        return copy.deepcopy(plans[name])

    return get
