"""Monte Carlo over traffic, lengths and prices: estimates against closed forms, determinism, error paths."""

import dataclasses
import math
from statistics import NormalDist

import pytest

from servewise.errors import InfeasibleError, UsageError
from servewise.planner import InProcessExecutor, Uncertainty, make_plan, monte_carlo
from servewise.planner._montecarlo import chunks_for
from servewise.workload import build_workload
from tests.factories import packaged_snapshot

FAST = {"gpus": ["L4", "H100-SXM"], "models": ["Llama-3.1-8B", "Qwen3-8B"]}
N = 4000
PHI = NormalDist()


@pytest.fixture(scope="module")
def plan():
    template = next(u for u in packaged_snapshot().use_cases if u.name == "chatbot_conversational")
    workload = build_workload(template=template, overrides={"traffic": {"qps": 20}, "constraints": FAST})
    return make_plan(workload, packaged_snapshot())


def _with_budget(plan, budget):
    return dataclasses.replace(plan, workload=plan.workload.model_copy(update={"budget_usd_month": budget}))


def test_p_over_budget_matches_the_lognormal_closed_form(plan):
    cost = plan.options[0].cost.usd_per_month
    # budget = C·e^0.1 and price multiplier exp(0.2 Z): P(C·e^{0.2Z} > C·e^{0.1}) = P(Z > 0.5) = 1 − Φ(0.5) = 0.3085
    result = monte_carlo(
        _with_budget(plan, cost * math.exp(0.1)),
        packaged_snapshot(),
        samples=N,
        top_k=1,
        seed=7,
        uncertainty=Uncertainty(qps_sigma=0.0, length_sigma=0.0, price_sigma=0.2),
    )
    risk = result.options[0]
    expected = 1 - PHI.cdf(0.5)
    assert expected == pytest.approx(0.3085, abs=1e-4)
    standard_error = math.sqrt(expected * (1 - expected) / N)  # 0.0073 at N = 4000
    assert abs(risk.p_over_budget - expected) < 4 * standard_error
    # cost quantiles: median C·e^0 = C; p95 C·e^{0.2·1.645} = 1.390 C. Sampling error of the p95 quantile:
    # sqrt(0.05·0.95/N)/φ(1.645) = 0.033 in Z, ×0.2 = 0.7 % of the cost; of the median 0.4 %
    assert risk.usd_per_month_p50 == pytest.approx(cost, rel=0.02)
    assert risk.usd_per_month_p95 == pytest.approx(cost * math.exp(0.2 * 1.6449), rel=0.03)
    assert risk.p_slo_met == 1.0  # traffic and lengths exactly as planned


def test_p_slo_met_is_the_chance_the_load_stays_under_the_planned_capacity(plan):
    option = plan.options[0]
    # only QPS varies: met ⟺ q·peak_factor/replicas ≤ capacity ⟺ Z ≤ ln(capacity·replicas/qps)/σ
    capacity = option.perf.max_qps_per_replica * option.replicas
    sigma = 0.5
    expected = PHI.cdf(math.log(capacity / 20) / sigma)
    result = monte_carlo(
        plan,
        packaged_snapshot(),
        samples=N,
        top_k=1,
        seed=3,
        uncertainty=Uncertainty(qps_sigma=sigma, length_sigma=0.0, price_sigma=0.0),
    )
    risk = result.options[0]
    assert 0.5 < expected < 0.999  # the test can tell a right answer from a wrong one
    # sampling error, plus the capacity bisection's 0.5 % tolerance: φ(z)·ln(1.005)/σ ≤ 0.004
    standard_error = math.sqrt(expected * (1 - expected) / N)
    assert abs(risk.p_slo_met - expected) < 4 * standard_error + 0.004
    assert risk.p_over_budget is None  # no budget, no budget risk
    assert risk.usd_per_month_p95 == pytest.approx(option.cost.usd_per_month)  # prices exactly as planned
    # a sample that misses misses at least one target; no target is missed more often than the SLO as a whole
    assert risk.misses and max(share for _, share in risk.misses) <= 1 - risk.p_slo_met + 1e-12


def test_without_uncertainty_every_option_meets_its_slo_at_the_planned_cost(plan):
    result = monte_carlo(
        _with_budget(plan, 1e6), packaged_snapshot(), samples=150, top_k=3, uncertainty=Uncertainty(0, 0, 0)
    )
    assert len(result.options) == 3
    for risk, option in zip(result.options, plan.options[:3], strict=True):
        assert risk.rank == option.rank and risk.replicas == option.replicas
        assert risk.p_slo_met == 1.0 and risk.p_over_budget == 0.0 and risk.misses == ()
        assert risk.usd_per_month_p50 == risk.usd_per_month_p95 == pytest.approx(option.cost.usd_per_month)
        if option.perf.capacity_method != "simulated":
            assert risk.load_scale == 1.0


class _Backwards:
    """Runs the chunks last to first (as workers finishing out of order would) and returns them in order."""

    name = "backwards"

    def map(self, fn, shared, items, *, on_done=None):
        results = {i: fn(shared, items[i]) for i in reversed(range(len(items)))}
        return [results[i] for i in range(len(items))]


def test_the_seed_alone_decides_the_numbers(plan):
    def run(seed, executor=None):
        return monte_carlo(plan, packaged_snapshot(), samples=250, top_k=2, seed=seed, executor=executor)

    first, again, backwards, other = run(11), run(11), run(11, _Backwards()), run(12)
    assert first.options == again.options == backwards.options
    assert first.options != other.options
    # fixed chunks of 100: 250 samples are chunks of 100, 100 and 50
    assert chunks_for(250) == [(0, 100), (1, 100), (2, 50)]
    assert chunks_for(100) == [(0, 100)]


def test_progress_is_reported_per_chunk(plan):
    done = []
    monte_carlo(plan, packaged_snapshot(), samples=301, executor=InProcessExecutor(), on_done=done.append)
    assert done == [1, 1, 1, 1]  # ⌈301 / 100⌉ chunks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples": 0}, "--samples: must be at least 1"),
        ({"top_k": 0}, "--top-k: must be at least 1"),
        ({"uncertainty": Uncertainty(qps_sigma=-0.1)}, "--qps-sigma: must be between 0 and 3"),
        ({"uncertainty": Uncertainty(price_sigma=math.nan)}, "--price-sigma: must be between 0 and 3"),
    ],
)
def test_bad_settings_are_one_line_errors(plan, kwargs, message):
    with pytest.raises(UsageError, match=message):
        monte_carlo(plan, packaged_snapshot(), **kwargs)


def test_an_infeasible_plan_says_why():
    template = next(u for u in packaged_snapshot().use_cases if u.name == "chatbot_conversational")
    workload = build_workload(
        template=template, overrides={"traffic": {"qps": 20}, "budget_usd_month": 10, "constraints": FAST}
    )
    with pytest.raises(InfeasibleError, match="no option fits the budget"):
        monte_carlo(make_plan(workload, packaged_snapshot()), packaged_snapshot())
