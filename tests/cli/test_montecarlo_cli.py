"""``servewise montecarlo``: P(SLO met), P(over budget) and $/month percentiles of the best options."""

import json

import pytest

FAST = ("--gpu", "L4", "--gpu", "H100-SXM", "--model", "Llama-3.1-8B", "--model", "Qwen3-8B")
BASE = ("montecarlo", "-u", "chatbot_conversational", "--qps", "20", *FAST, "--samples", "300")


def test_json_is_seeded_and_repeatable(cli):
    code, out, err = cli(
        *BASE, "--budget-usd-month", "2500", "--seed", "4", "--top-k", "2", "--format", "json"
    )
    assert code == 0 and "sampling" in err  # the progress bar goes to stderr
    doc = json.loads(out)
    assert (doc["samples"], doc["seed"], doc["executor"]) == (300, 4, "inprocess")
    assert doc["uncertainty"] == {"qps_sigma": 0.25, "length_sigma": 0.1, "price_sigma": 0.1}
    assert len(doc["options"]) == 2
    first = doc["options"][0]
    assert 0 <= first["p_slo_met"] <= 1 and 0 <= first["p_over_budget"] <= 1
    assert first["usd_per_month_p50"] <= first["usd_per_month_p95"]
    _, again, _ = cli(*BASE, "--budget-usd-month", "2500", "--seed", "4", "--top-k", "2", "--format", "json")
    assert again == out


def test_without_spread_the_risk_is_nil_and_the_cost_is_the_plans(cli):
    code, out, _ = cli(
        *BASE,
        "--qps-sigma",
        "0",
        "--length-sigma",
        "0",
        "--price-sigma",
        "0",
        "--top-k",
        "1",
        "--format",
        "csv",
    )
    assert code == 0
    header, row = out.splitlines()
    assert header.startswith("mark,rank,option,replicas,gpus_total,usd_per_month,p_slo_met,p_over_budget")
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["p_slo_met"] == "1.0" and cells["p_over_budget"] == ""
    assert cells["usd_per_month"] == cells["usd_per_month_p50"] == cells["usd_per_month_p95"]


def test_table_and_markdown_print_the_assumptions(cli):
    code, out, _ = cli(*BASE)
    assert code == 0 and "★" in out and "P(SLO met)" in out
    assert "σ of the log 0.25 (--qps-sigma)" in " ".join(out.split())
    code, out, _ = cli(*BASE, "--format", "markdown")
    assert code == 0 and "| P(SLO met) |" in out and "- assumption: price × lognormal" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--qps-sigma", "-1"], "--qps-sigma: must be between 0 and 3"),
        (["--samples", "0"], "Invalid value for '--samples'"),
        (["--budget-usd-month", "10"], "no option fits the budget of $10/month"),
        (["--address", "auto"], "--address needs --executor ray"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, message):
    code, out, err = cli(*BASE, *args)
    assert code == 2 and out == ""
    assert message in " ".join(err.split())


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (2 CPUs), shut down afterwards; the commands join it instead of starting one."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'servewise[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_executor_ray_prints_what_in_process_prints(cli, ray_session):
    plan_args = ("plan", "-u", "chatbot_conversational", "--qps", "20", *FAST, "--format", "json")
    _, in_process, _ = cli(*plan_args)
    code, on_ray, _ = cli(*plan_args, "--executor", "ray")
    assert code == 0 and on_ray == in_process
    mc_args = (*BASE, "--seed", "9", "--format", "json")
    _, in_process, _ = cli(*mc_args)
    code, on_ray, _ = cli(*mc_args, "--executor", "ray")
    assert code == 0
    first, second = json.loads(in_process), json.loads(on_ray)
    assert (first.pop("executor"), second.pop("executor")) == ("inprocess", "ray")
    assert first == second
