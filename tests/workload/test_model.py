import math

import pytest
from pydantic import ValidationError

from servewise.types import Precision
from servewise.workload import Constraints, LengthDistribution, Traffic, Workload


def test_fixed_length_is_the_mean_at_every_quantile():
    length = LengthDistribution(mean=512)
    assert length.quantile(0.5) == length.quantile(0.99) == 512


def test_lognormal_quantiles_match_the_closed_form():
    # cv = 1: sigma^2 = ln 2, mu = ln(1000) - ln(2)/2; median = exp(mu) = 1000 / sqrt(2)
    length = LengthDistribution(mean=1000, kind="lognormal", cv=1.0)
    assert length.quantile(0.5) == pytest.approx(1000 / math.sqrt(2))
    sigma = math.sqrt(math.log(2))
    assert length.quantile(0.95) == pytest.approx(1000 / math.sqrt(2) * math.exp(1.6448536 * sigma), rel=1e-6)


def test_exponential_p95_is_mean_times_ln20_and_max_tokens_caps_it():
    assert LengthDistribution(mean=100, kind="exponential").quantile(0.95) == pytest.approx(
        100 * math.log(20)
    )
    assert LengthDistribution(mean=100, kind="exponential", max_tokens=200).quantile(0.99) == 200


def test_a_plain_number_is_a_fixed_length():
    traffic = Traffic.model_validate({"qps": 1, "prompt_tokens": 300, "output_tokens": 20})
    assert traffic.prompt_tokens == LengthDistribution(mean=300)


def test_rate_from_users_and_peak_factor():
    traffic = Traffic(users=3600, requests_per_user_hour=2, peak_factor=3, prompt_tokens=10, output_tokens=10)
    assert traffic.avg_qps == pytest.approx(2.0)
    assert traffic.peak_qps == pytest.approx(6.0)


@pytest.mark.parametrize(
    "traffic, message",
    [
        ({"prompt_tokens": 10, "output_tokens": 10}, "no request rate"),
        ({"qps": 1, "users": 5, "prompt_tokens": 10, "output_tokens": 10}, "not both"),
        ({"qps": -1, "prompt_tokens": 10, "output_tokens": 10}, "greater than 0"),
        (
            {"qps": 1, "peak_factor": 0.5, "prompt_tokens": 10, "output_tokens": 10},
            "greater than or equal to 1",
        ),
        ({"qps": 1, "prompt_tokens": {"mean": 10, "kind": "lognormal"}, "output_tokens": 10}, "needs cv > 0"),
    ],
)
def test_invalid_traffic_is_rejected_with_a_reason(traffic, message):
    with pytest.raises(ValidationError, match=message):
        Traffic.model_validate(traffic)


def test_constraints_default_to_quality_preserving_precisions_and_need_one():
    assert Constraints().precisions == [Precision.bf16, Precision.fp8]
    with pytest.raises(ValidationError, match="at least one"):
        Constraints(precisions=[])


def test_workload_is_frozen_and_rejects_unknown_fields():
    workload = Workload.model_validate({"traffic": {"qps": 1, "prompt_tokens": 1, "output_tokens": 1}})
    with pytest.raises(ValidationError):
        workload.priority = "latency"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Workload.model_validate({"traffic": {"qps": 1, "prompt_tokens": 1, "output_tokens": 1}, "qps": 3})


def test_cv_only_applies_to_lognormal_and_numbers_must_be_finite():
    with pytest.raises(ValidationError, match="cv applies to lognormal lengths only"):
        LengthDistribution(mean=100, cv=0.5)
    with pytest.raises(ValidationError, match="finite number"):
        Traffic(qps=float("inf"), prompt_tokens=10, output_tokens=10)
    with pytest.raises(ValidationError, match="finite number"):
        LengthDistribution(mean=float("nan"))
