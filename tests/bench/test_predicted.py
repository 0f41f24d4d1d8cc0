"""Predictions for ``--against plan.json``: a plan option becomes the replica it deploys, and at fixed lengths the
prediction is exactly the simulator's ``predicted_point``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servewise.bench import plan_target, predicted_flat
from servewise.cli import main
from servewise.errors import UsageError
from servewise.simulator import predicted_point


@pytest.fixture(scope="session")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("plan")
    db_url = f"sqlite:///{folder / 'catalog.db'}"
    path = folder / "plan.json"
    main(["plan", "-u", "chatbot_conversational", "--qps", "2", "--gpu", "L4", "--model", "Llama-3.1-8B",
          "-o", str(path), "--db-url", db_url, "--format", "json"])  # fmt: skip
    return path, db_url


def test_the_default_option_is_the_chosen_one(plan_file):
    path, db_url = plan_file
    document = json.loads(path.read_text())
    chosen = document["options"][document["chosen"]]
    target = plan_target(path, None, db_url=db_url)
    assert target.rank == chosen["rank"]
    assert (target.config.model, target.config.gpu, target.config.tp, target.config.precision) == (
        chosen["candidate"]["model"],
        chosen["candidate"]["gpu"],
        chosen["candidate"]["tp"],
        chosen["candidate"]["precision"],
    )
    assert target.config.engine.max_num_seqs == chosen["candidate"]["engine"]["max_num_seqs"]
    assert plan_target(path, 2, db_url=db_url).rank == 2


def test_at_fixed_lengths_the_prediction_is_the_simulators(plan_file):
    path, db_url = plan_file
    target = plan_target(path, None, db_url=db_url)
    ours = predicted_flat(target, isl=512, osl=64, concurrency=4, range_ratio=1.0, seed=target.config.seed)
    theirs = predicted_point(target.config, prompt_tokens=512, output_tokens=64, concurrency=4)
    for key, value in theirs.items():
        if key in ours:
            assert ours[key] == pytest.approx(value), key
    shorter = predicted_flat(target, isl=512, osl=64, concurrency=4, range_ratio=0.8)
    assert shorter["e2e_mean_ms"] < ours["e2e_mean_ms"]  # lengths from [0.8 len, len] are shorter on average


def test_bad_plans_are_one_line_errors(plan_file, tmp_path: Path):
    path, db_url = plan_file
    with pytest.raises(UsageError, match="no option of rank 99"):
        plan_target(path, 99, db_url=db_url)
    with pytest.raises(UsageError, match="does not exist"):
        plan_target(tmp_path / "none.json", None)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(UsageError, match="is not JSON"):
        plan_target(broken, None)
    target = plan_target(path, None, db_url=db_url)
    with pytest.raises(UsageError, match="max_model_len"):
        predicted_flat(target, isl=10**6, osl=1, concurrency=1)
