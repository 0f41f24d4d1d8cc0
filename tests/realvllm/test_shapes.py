"""The comparison helpers the conformance tests rest on, on small hand-made inputs (no server needed): a helper
that never reports a difference would make every conformance test pass."""

from __future__ import annotations

import pytest

from .shapes import Family, family_diff, json_shape, metric_families, shape_diff, sse_payloads


def test_json_shape_keeps_keys_and_types_not_values() -> None:
    value = {
        "id": "x",
        "n": 3,
        "p": 0.5,
        "ok": True,
        "none": None,
        "items": [{"a": 1}, {"a": 2}],
        "empty": [],
    }
    assert json_shape(value) == {
        "id": "str", "n": "int", "p": "float", "ok": "bool", "none": "null", "items": [{"a": "int"}], "empty": []
    }  # fmt: skip
    assert json_shape({"items": [{"a": 1}, {"a": "1"}]}) == {"items": [{"a": "int"}, {"a": "str"}]}


def test_shape_diff_names_missing_extra_and_retyped_fields() -> None:
    real = json_shape({"a": 1, "b": {"c": None, "d": [{"e": "x"}]}, "f": "s"})
    simulated = json_shape({"a": "1", "b": {"d": [{"e": "y", "g": 0}]}, "f": "t", "h": {}})
    assert shape_diff(real, simulated) == [
        "type a: int vs str",
        "missing b.c (null)",
        "extra b.d[].g (int)",
        "extra h (object)",
    ]
    assert shape_diff(real, simulated, allowed_extra=("h", "b.d[].g")) == [
        "type a: int vs str",
        "missing b.c (null)",
    ]
    assert shape_diff(real, json_shape({"a": 2, "b": {"c": None, "d": [{"e": "z"}]}, "f": ""})) == []
    assert shape_diff(json_shape({"l": [1]}), json_shape({"l": []})) == ["array l: one side is empty"]


def test_sse_payloads_checks_the_framing() -> None:
    good = 'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    assert sse_payloads(good) == ['{"a":1}', '{"a":2}', "[DONE]"]
    for bad, fault in (
        ('data: {"a":1}\n\n', "does not end with data: \\[DONE\\]"),
        ('data: {"a":1}\ndata: [DONE]\n\n', "spans several lines"),
        ("event: x\n\ndata: [DONE]\n\n", "not a 'data: ' line"),
        ("data: [DONE]\n\ndata: [DONE]\n\n", "before the end"),
        ('data: {"a":1}\n\ndata: [DONE]\n', "blank line"),
    ):
        with pytest.raises(AssertionError, match=fault):
            sse_payloads(bad)


_EXPOSITION = """# HELP x_total Things.
# TYPE x_total counter
x_total{engine="0",model_name="m",reason="a"} 1.0
x_total{engine="0",model_name="m",reason="b"} 2.0
# HELP h_seconds Latency.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1",model_name="m"} 1.0
h_seconds_bucket{le="+Inf",model_name="m"} 2.0
h_seconds_count{model_name="m"} 2.0
h_seconds_sum{model_name="m"} 0.3
"""


def test_metric_families_and_their_diff() -> None:
    families = metric_families(_EXPOSITION)
    assert families == {
        "x": Family("counter", frozenset({"engine", "model_name", "reason"})),
        "h_seconds": Family("histogram", frozenset({"model_name"}), ("0.1", "+Inf")),
    }
    claimed = {
        "x": Family("gauge", frozenset({"engine", "model_name"})),
        "h_seconds": Family("histogram", frozenset({"model_name"}), ("0.2", "+Inf")),
        "new": Family("gauge", frozenset()),
        "own:thing": Family("gauge", frozenset()),
    }
    assert family_diff(families, claimed, skip_prefix="own:") == [
        "h_seconds: buckets ['0.2', '+Inf'], reference ['0.1', '+Inf']",
        "new: not exposed by the reference server",
        "x: type gauge, reference counter",
        "x: labels ['engine', 'model_name'], reference ['engine', 'model_name', 'reason']",
    ]
    assert family_diff(families, families, skip_prefix="own:") == []
