from pathlib import Path

import pytest

from servewise.errors import UsageError, WorkloadFileError
from servewise.workload import build_workload, load_workload_file
from tests.factories import packaged_snapshot


def _template(name: str = "chatbot_conversational"):
    return next(u for u in packaged_snapshot().use_cases if u.name == name)


def test_there_are_nine_use_case_templates_with_design_targets():
    templates = {u.name: u for u in packaged_snapshot().use_cases}
    assert len(templates) == 9
    rag = templates["document_analysis_rag"]
    assert (rag.prompt_tokens, rag.output_tokens, rag.ttft_p95_ms, rag.itl_p95_ms, rag.e2e_p95_ms) == (
        4096,
        512,
        600,
        30,
        18000,
    )


def test_template_then_file_then_flags():
    workload = build_workload(
        template=_template(),
        file_data={"traffic": {"qps": 5, "prompt_tokens": 600}, "slo": {"ttft_p95_ms": 300}},
        overrides={"traffic": {"output_tokens": {"mean": 100}}, "slo": {"ttft_p95_ms": 200}},
    )
    assert workload.use_case == "chatbot_conversational"
    assert workload.traffic.prompt_tokens.mean == 600  # file over template
    assert workload.traffic.output_tokens.mean == 100  # flag over template
    assert workload.slo.ttft_p95_ms == 200  # flag over file
    assert workload.slo.itl_p95_ms == 25  # template kept
    assert workload.constraints.min_params_b == 7


def test_a_flag_length_overrides_a_numeric_file_length():
    workload = build_workload(
        template=_template(),
        file_data={"traffic": {"qps": 1, "prompt_tokens": 600}},
        overrides={"traffic": {"prompt_tokens": {"mean": 700}}},
    )
    assert workload.traffic.prompt_tokens.mean == 700


def test_validation_error_is_one_line_naming_the_field():
    with pytest.raises(UsageError) as err:
        build_workload(template=_template(), overrides={"traffic": {"qps": -3}})
    assert str(err.value) == "workload: traffic.qps: Input should be greater than 0 (got -3)"


def test_no_lengths_and_no_template_says_what_to_pass():
    with pytest.raises(UsageError, match="--use-case"):
        build_workload(overrides={"traffic": {"qps": 1}})


def test_loading_yaml_and_json(tmp_path: Path):
    yaml_file = tmp_path / "w.yaml"
    yaml_file.write_text("use_case: translation\ntraffic:\n  qps: 4\n")
    assert load_workload_file(yaml_file) == {"use_case": "translation", "traffic": {"qps": 4}}
    json_file = tmp_path / "w.json"
    json_file.write_text('{"traffic": {"qps": 2}}')
    assert load_workload_file(json_file) == {"traffic": {"qps": 2}}


@pytest.mark.parametrize(
    "text, message",
    [
        ("traffic: [qps: 1\n", "malformed"),
        ("", "is empty"),
        ("- 1\n- 2\n", "must hold a mapping"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(WorkloadFileError, match=message) as err:
        load_workload_file(path)
    assert "\n" not in str(err.value)


def test_missing_file_and_invalid_file_content(tmp_path: Path):
    with pytest.raises(WorkloadFileError, match="cannot read"):
        load_workload_file(tmp_path / "nope.yaml")
    with pytest.raises(WorkloadFileError, match=r"traffic\.qps"):
        build_workload(template=_template(), file_data={"traffic": {"qps": "lots"}}, source="w.yaml")


def test_a_rate_in_an_upper_layer_replaces_the_other_form_below():
    by_users = {"traffic": {"users": 100, "requests_per_user_hour": 36}}
    assert build_workload(template=_template(), file_data=by_users).traffic.avg_qps == pytest.approx(1.0)
    flagged = build_workload(template=_template(), file_data=by_users, overrides={"traffic": {"qps": 5}})
    assert (flagged.traffic.qps, flagged.traffic.users) == (5, None)
    back = build_workload(
        template=_template(),
        file_data={"traffic": {"qps": 5}},
        overrides={"traffic": {"users": 10, "requests_per_user_hour": 360}},
    )
    assert (back.traffic.qps, back.traffic.avg_qps) == (None, pytest.approx(1.0))


def test_a_file_that_is_not_utf8_is_a_one_line_error(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(WorkloadFileError, match="is not UTF-8"):
        load_workload_file(path)
