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


def test_against_mismatch_is_certain_for_the_simulator_and_a_doubt_for_a_real_server(tmp_path):
    from servewise.bench import PlanTarget, against_mismatch
    from servewise.simulator import simulator_config

    db_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    l4 = simulator_config(model="Llama-3.1-8B", gpu="L4", db_url=db_url)
    h100 = simulator_config(model="Llama-3.1-8B", gpu="H100-SXM", db_url=db_url)
    target = PlanTarget(tmp_path / "plan.json", 1, l4)
    served = l4.served_model

    def simulating(config):
        return [{"id": config.served_model, "servewise": {"simulated": config.describe()}}]

    assert against_mismatch(target, served, simulating(l4)) is None
    found = against_mismatch(target, served, simulating(h100))
    assert found is not None and found.startswith(
        f"the endpoint simulates {h100.describe()}, not plan option 1"
    )
    assert against_mismatch(target, served, [{"id": served}]) is None  # a real server of the option's model
    doubt = against_mismatch(target, "my-alias", [{"id": "my-alias"}])
    assert doubt is not None and "unless that is a --served-model-name alias" in doubt
