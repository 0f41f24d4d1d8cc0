"""``--set key=value`` on a Workload: any field by dotted path, YAML values, one-line errors naming the path."""

import pytest

from servewise.errors import UsageError
from servewise.types import PricingMode
from servewise.workload import (
    Slo,
    Workload,
    apply_overrides,
    build_workload,
    override_paths,
    parse_override,
    parse_variation,
)


def _workload(**traffic: object) -> Workload:
    base: dict[str, object] = {
        "users": 100,
        "requests_per_user_hour": 36,
        "prompt_tokens": {"mean": 500, "kind": "lognormal", "cv": 0.5},
        "output_tokens": 200,
    }
    return build_workload(
        file_data={"traffic": base | traffic, "slo": {"ttft_p95_ms": 150}, "budget_usd_month": 5000}
    )


def _set(workload: Workload, *texts: str) -> Workload:
    return apply_overrides(workload, [parse_override(t) for t in texts])


def test_scalars_lists_and_nested_fields_are_set_by_path():
    w = _set(
        _workload(),
        "traffic.qps=40",
        "slo.ttft_p95_ms=300",
        "constraints.gpus=[H100, L4]",
        "constraints.pricing=spot",
        "traffic.output_tokens.mean=333.5",
    )
    # 40 replaces the users-based rate (100 users x 36/h / 3600 = 1 req/s) rather than conflicting with it
    assert w.traffic.qps == 40 and w.traffic.users is None and w.traffic.avg_qps == 40
    assert w.slo.ttft_p95_ms == 300 and w.slo.itl_p95_ms is None
    assert w.constraints.gpus == ["H100", "L4"] and w.constraints.pricing is PricingMode.spot
    assert w.traffic.output_tokens.mean == 333.5
    assert w.budget_usd_month == 5000  # untouched fields keep their values


def test_a_bare_length_changes_the_mean_and_keeps_the_distribution():
    w = _set(_workload(), "traffic.prompt_tokens=800")
    assert w.traffic.prompt_tokens.mean == 800
    assert w.traffic.prompt_tokens.kind == "lognormal" and w.traffic.prompt_tokens.cv == 0.5


def test_null_or_empty_unsets_an_optional_field_and_the_original_is_unchanged():
    original = _workload()
    assert _set(original, "budget_usd_month=null").budget_usd_month is None
    assert _set(original, "slo.ttft_p95_ms=").slo.ttft_p95_ms is None
    assert original.budget_usd_month == 5000 and original.slo.ttft_p95_ms == 150


def test_later_assignments_win_and_variations_split_on_semicolons():
    sets = parse_variation("traffic.qps=10; traffic.qps=20;slo.e2e_p95_ms=9000")
    assert [o.path for o in sets] == ["traffic.qps", "traffic.qps", "slo.e2e_p95_ms"]
    w = apply_overrides(_workload(), sets)
    assert w.traffic.qps == 20 and w.slo.e2e_p95_ms == 9000


def test_every_model_field_is_a_path():
    paths = override_paths()
    for path in (
        "traffic.qps",
        "slo.ttft_p95_ms",
        "constraints.gpus",
        "traffic.prompt_tokens.cv",
        "priority",
    ):
        assert path in paths
    # generic over the model: every leaf field of every section is reachable
    assert len([p for p in paths if p.startswith("slo.")]) == len(Slo.model_fields) == 9


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "traffic.qsp=4",
            "--set traffic.qsp: unknown key 'qsp' under traffic; did you mean 'qps'? valid keys under traffic: "
            "qps, users",
        ),
        ("slo.tfft_p95_ms=3", "did you mean 'ttft_p95_ms'"),
        ("bogus=1", "unknown key 'bogus'; valid keys: name, use_case, traffic, slo"),
        ("traffic.qps.x=3", "traffic.qps is a value, not a section"),
        ("traffic.qps", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
        ("traffic.qps=[1", "cannot read '[1'"),
        ("traffic={qps: 3}", "give one value, not a mapping"),
    ],
)
def test_bad_paths_and_unreadable_values_are_one_line_errors(text, message):
    with pytest.raises(UsageError) as err:
        parse_override(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("traffic.qps=-4", "--set traffic.qps=-4: traffic.qps: Input should be greater than 0 (got -4)"),
        ("traffic.qps=abc", "traffic.qps: Input should be a valid number"),
        ("constraints.pricing=free", "constraints.pricing: Input should be 'on-demand'"),
        ("traffic.peak_factor=0.5", "traffic.peak_factor: Input should be greater than or equal to 1"),
    ],
)
def test_invalid_values_name_the_path(text, message):
    with pytest.raises(UsageError) as err:
        _set(_workload(), text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_no_overrides_returns_the_same_workload():
    w = _workload()
    assert apply_overrides(w, []) is w
