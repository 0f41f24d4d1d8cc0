"""A plan option as the ``WatchTarget``: the chosen one by default, ``--option N`` by rank, seconds from the plan's
milliseconds, one-line errors for what is not a usable plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from servewise.errors import UsageError
from servewise.watch._target import load_target, target_from_plan


def test_the_chosen_option_with_its_slo_predictions_and_price(watch_plan: dict[str, Any]) -> None:
    target = target_from_plan(watch_plan, "plan.json")
    chosen = watch_plan["options"][watch_plan["chosen"]]
    assert target.option_rank == chosen["rank"]
    assert (target.model, target.gpu, target.tp, target.precision) == (
        chosen["candidate"]["model"], chosen["candidate"]["gpu"], chosen["candidate"]["tp"],
        chosen["candidate"]["precision"],
    )  # fmt: skip
    assert target.gpu_count == target.tp and target.backend == "vllm"
    assert target.replicas == chosen["replicas"]
    assert target.usd_per_hour == chosen["cost"]["usd_per_hour"]
    assert target.usd_per_gpu_hour == pytest.approx(chosen["cost"]["usd_per_hour"] / chosen["gpus_total"])
    assert target.slo_targets_s == {"ttft_p95": 2.0, "itl_p95": 0.1, "e2e_p95": 30.0}
    assert target.predicted_s["ttft_p95"] == pytest.approx(chosen["perf"]["ttft"]["p95_ms"] / 1000)
    assert target.budget_usd_month == 9000.0
    assert (target.prompt_tokens_mean, target.output_tokens_mean) == (512.0, 128.0)
    assert target.max_qps_per_replica == chosen["perf"]["max_qps_per_replica"]
    assert target.engine["max_num_seqs"] == chosen["candidate"]["engine"]["max_num_seqs"]
    assert target.workload == watch_plan["workload"]


def test_option_by_rank_and_errors(watch_plan: dict[str, Any], watch_plan_file: Path, tmp_path: Path) -> None:
    ranks = [o["rank"] for o in watch_plan["options"]]
    assert load_target(watch_plan_file, ranks[-1]).option_rank == ranks[-1]
    with pytest.raises(UsageError, match=f"no option of rank 99; pick --option 1 to {max(ranks)}"):
        load_target(watch_plan_file, 99)
    with pytest.raises(UsageError, match="does not exist"):
        load_target(tmp_path / "missing.json")
    broken = copy.deepcopy(watch_plan)
    del broken["options"][0]["cost"]
    with pytest.raises(UsageError, match="option 1 is incomplete"):
        target_from_plan(broken, "plan.json", 1)
    not_a_plan = tmp_path / "x.json"
    not_a_plan.write_text(json.dumps({"hello": 1}))
    with pytest.raises(UsageError, match="not a Servewise plan"):
        load_target(not_a_plan)
