"""The error's split into whole-group bias and within-group shape, against hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from servewise.perf._anatomy import error_anatomy


def test_a_group_off_by_one_factor_has_no_within_group_error():
    measured = [100.0, 200.0, 400.0, 10.0, 20.0, 40.0]
    predicted = [150.0, 300.0, 600.0, 10.0, 20.0, 40.0]  # group a: all 1.5x; group b: exact
    anatomy = error_anatomy(measured, predicted, ["a", "a", "a", "b", "b", "b"])
    assert anatomy is not None
    assert anatomy.rows == 6 and anatomy.groups == 2
    assert anatomy.median_ape == pytest.approx(25.0)  # APEs 50, 50, 50, 0, 0, 0
    assert anatomy.group_bias_median_pct == pytest.approx(25.0)  # |1.5 - 1|, |1 - 1| -> median of 50 and 0
    assert anatomy.within_group_median_ape == pytest.approx(0.0, abs=1e-9)


def test_within_group_error_is_measured_from_the_groups_median_ratio():
    # one group, ratios 0.8, 1.0, 1.25: the median ratio is 1.0, so nothing is divided out
    anatomy = error_anatomy([10.0, 10.0, 10.0], [8.0, 10.0, 12.5], [("m", "s")] * 3)
    assert anatomy is not None
    assert anatomy.group_bias_median_pct == pytest.approx(0.0, abs=1e-9)
    assert anatomy.median_ape == pytest.approx(20.0)  # APEs 20, 0, 25
    assert anatomy.within_group_median_ape == pytest.approx(20.0)
    # scaled by 2: the bias is 100 %, the shape error is unchanged
    doubled = error_anatomy([10.0, 10.0, 10.0], [16.0, 20.0, 25.0], [("m", "s")] * 3)
    assert doubled is not None
    assert doubled.group_bias_median_pct == pytest.approx(100.0)
    assert doubled.within_group_median_ape == pytest.approx(20.0)


def test_missing_values_are_left_out_and_nothing_left_is_none():
    anatomy = error_anatomy([10.0, math.nan, 0.0, 10.0], [20.0, 5.0, 5.0, math.inf], ["a", "a", "b", "b"])
    assert anatomy is not None and anatomy.rows == 1 and anatomy.groups == 1
    assert anatomy.median_ape == pytest.approx(100.0)
    assert anatomy.as_dict()["within_group_median_ape"] == 0.0
    assert error_anatomy([math.nan], [1.0], ["a"]) is None
