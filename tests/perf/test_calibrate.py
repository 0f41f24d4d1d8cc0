"""The fit: recovers known parameters, agrees with the simulator, falls back level by level, round-trips."""

import dataclasses
import json

import numpy as np
import pytest

from servewise.catalog import load_packaged
from servewise.perf import ANALYTICAL_PARAMS
from servewise.perf._benchpoint import setup_for_row, simulate_point
from servewise.perf._calfeatures import FeatureStack
from servewise.perf._calibrate import (
    FIT_PARAMETERS,
    MIN_ROWS,
    CalibrationTable,
    FittedLevel,
    RowFeatures,
    cross_validate,
    features_for_rows,
    fit_table,
    load_fitted_table,
    predict_rows,
)
from servewise.perf._correction import (
    SHRINK_ROWS_PREFILL,
    SHRINK_ROWS_STEP,
    CorrectionParts,
    ModelCorrection,
    fit_corrections,
)
from servewise.perf._params import StepParams
from servewise.types import Provenance


@pytest.fixture(scope="module")
def data():
    return load_packaged()


@pytest.fixture(scope="module")
def small_features(data) -> list[RowFeatures]:
    """A few cheap rows of two groups on one (GPU, backend, precision), plus a second backend."""
    wanted = [
        r
        for r in data.benchmarks
        if r.system == "h200_sxm" and r.concurrency <= 16 and r.isl <= 1024 and r.osl <= 1024
    ]
    features, _ = features_for_rows(wanted[:60], data.models, data.accelerators, data.aliases)
    return features


def _with_measured(features, ttft_ms, tpot_ms):
    out = []
    for f, a, b in zip(features, ttft_ms, tpot_ms, strict=True):
        out.append(dataclasses.replace(f, row=dataclasses.replace(f.row, ttft_ms=float(a), tpot_ms=float(b))))
    return out


def test_feature_prediction_equals_the_simulation_for_any_parameters(data, small_features):
    params = dataclasses.replace(
        ANALYTICAL_PARAMS, compute_efficiency=0.4, bandwidth_efficiency=0.5, overlap_penalty=0.6,
        step_overhead_s=2e-3, request_overhead_s=0.05, prompt_overhead_s_per_token=2e-5,
        client_overhead_s_per_client=1e-3, client_prompt_overhead_s_per_token=1e-7,
        attention_efficiency=0.3, moe_compute_efficiency=0.2, prefill_layer_overhead_s=3e-5,
    )  # fmt: skip
    feature = small_features[0]
    table = CalibrationTable({(): _level((), params)}, "2026-01-01", "", 1)
    ttft, tpot = predict_rows([feature], table)
    simulated = simulate_point(feature.setup, table.params_for(*feature.key))
    assert ttft[0] == pytest.approx(simulated.ttft_ms, rel=1e-6)
    assert tpot[0] == pytest.approx(simulated.tpot_ms, rel=1e-6)


def test_a_model_correction_is_applied_identically_by_the_fit_and_by_the_step_model(small_features):
    # One prediction path: accuracy/calibrate combine the feature parts with the factors; predict, plan and the
    # simulators get them folded into the step model by params_for -> build_step_model. Both must agree.
    feature = small_features[0]
    name = feature.setup.model.name
    base = CalibrationTable({(): _level((), ANALYTICAL_PARAMS)}, "2026-01-01", "", 1)
    corrected = dataclasses.replace(base, model_corrections={(name,): ModelCorrection(1.7, 0.6, 30)})
    ttft, tpot = predict_rows([feature], corrected)
    params = corrected.params_for(*feature.key)
    factors = params.correction_for(name)
    assert factors is not None and "30 measured rows" in factors.basis
    simulated = simulate_point(feature.setup, params)
    assert ttft[0] == pytest.approx(simulated.ttft_ms, rel=1e-6)
    assert tpot[0] == pytest.approx(simulated.tpot_ms, rel=1e-6)
    plain_ttft, plain_tpot = predict_rows([feature], base)
    assert tpot[0] != pytest.approx(plain_tpot[0]) and ttft[0] != pytest.approx(plain_ttft[0])
    assert corrected.params_for(*feature.key).correction_for("another model") is None


def _level(key: tuple[str, ...], params: StepParams) -> FittedLevel:

    return FittedLevel(key, {n: getattr(params, n) for n in FIT_PARAMETERS}, 100)


def test_fit_recovers_parameters_that_generated_the_measurements(small_features):
    truth = dataclasses.replace(ANALYTICAL_PARAMS, compute_efficiency=0.35, bandwidth_efficiency=0.55)
    table = CalibrationTable({(): _level((), truth)}, "2026-01-01", "", 1)
    ttft, tpot = predict_rows(small_features, table)
    fitted = fit_table(_with_measured(small_features, ttft, tpot))
    params = fitted.levels[()].params
    again = predict_rows(_with_measured(small_features, ttft, tpot), fitted)
    # the measurements are reproduced and the bandwidth efficiency (decode-bound rows) is found again
    assert np.median(np.abs(again[1] / tpot - 1)) < 0.02
    assert params["bandwidth_efficiency"] == pytest.approx(0.55, rel=0.1)
    assert params["bandwidth_efficiency"] != pytest.approx(ANALYTICAL_PARAMS.bandwidth_efficiency, rel=0.1)


def test_levels_with_few_rows_inherit_their_parent_and_lookups_fall_back(small_features):
    table = fit_table(small_features)
    leaf_keys = [k for k in table.levels if len(k) == 3]
    assert leaf_keys
    for key in leaf_keys:
        level = table.levels[key]
        assert level.fitted == (level.rows >= MIN_ROWS)
        if not level.fitted:
            assert level.params == table.levels[key[:2]].params
    gpu, backend, precision = small_features[0].key
    assert table.params_for(gpu, backend, precision).provenance is Provenance.calibrated
    other = table.params_for("L4", backend, precision)
    assert (
        other.provenance is Provenance.analytical and f"measured {backend} rows of other GPUs" in other.basis
    )
    anywhere = table.params_for(gpu, "unknown-backend", "fp8")  # this GPU's rows exist, on another engine
    assert anywhere.compute_efficiency == pytest.approx(table.levels[()].params["compute_efficiency"])
    assert anywhere.provenance is Provenance.analytical
    assert f"rows of any GPU and engine, none of {gpu} on unknown-backend" in anywhere.basis
    assert "other GPUs" not in anywhere.basis


def test_table_round_trips_through_json(small_features):
    table = fit_table(small_features, fitted_on="2026-11-25", data_sha256="abc")
    again = CalibrationTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again.fitted_on == "2026-11-25" and again.rows == table.rows
    for key, level in table.levels.items():
        assert again.levels[key].row_ids == level.row_ids
        for name, value in level.params.items():
            assert again.levels[key].params[name] == pytest.approx(value, rel=1e-5)


def _parts(n: int, **values: float) -> CorrectionParts:
    names = ("ttft_decode", "ttft_prefill", "overhead", "tpot_decode", "tpot_prefill")
    return CorrectionParts(*(np.full(n, float(values.get(k, 0.0))) for k in names))


def test_model_correction_is_the_shrunk_median_ratio_and_falls_back_to_the_model():
    # Predicted TTFT is all frontend overhead (1) and TPOT all decode steps (1). 20 rows of M on vllm measured
    # 2x both, 20 on sglang 1x. (M,): the medians sit halfway (ln 2 / 2), shrunk toward 1: s by 40 / (40 + 40)
    # -> 2^(1/4), p by 40 / (40 + 20) -> 2^(1/3). (M, backend) shrinks toward (M,): on vllm s = exp((20 ln 2 +
    # 40 ln 2 / 4) / 60) = 2^(1/2), p = exp((20 ln 2 + 20 ln 2 / 3) / 40) = 2^(2/3); on sglang, measured 1x,
    # s = exp(40 (ln 2 / 4) / 60) = 2^(1/6) and p = exp(20 (ln 2 / 3) / 40) = 2^(1/6).
    assert (SHRINK_ROWS_PREFILL, SHRINK_ROWS_STEP) == (20.0, 40.0)
    measured = np.array([2.0] * 20 + [1.0] * 20)
    parts = _parts(40, overhead=1.0, tpot_decode=1.0)
    fitted = fit_corrections(["M"] * 40, ["vllm"] * 20 + ["sglang"] * 20, measured, measured, parts)
    assert fitted[("M",)].step_time_factor == pytest.approx(2 ** (1 / 4))
    assert fitted[("M",)].prefill_factor == pytest.approx(2 ** (1 / 3), rel=1e-6)
    assert fitted[("M", "vllm")].step_time_factor == pytest.approx(2 ** (1 / 2))
    assert fitted[("M", "vllm")].prefill_factor == pytest.approx(2 ** (2 / 3), rel=1e-6)
    assert fitted[("M", "sglang")].step_time_factor == pytest.approx(2 ** (1 / 6))
    assert fitted[("M", "sglang")].prefill_factor == pytest.approx(2 ** (1 / 6), rel=1e-6)
    table = CalibrationTable({}, "2026-01-01", "", 0, model_corrections=fitted)
    assert table.correction_for("M", "trtllm") == fitted[("M",)]  # no trtllm rows: the model's own factor
    assert table.correction_for("Other", "vllm") is None


def test_the_prefill_factor_scales_prompt_steps_on_top_of_the_step_factor():
    # TTFT = s (S_d + p S_p) + p O and TPOT = s (T_d + p T_p): with TPOT all decode measured 1.5x and TTFT all
    # prefill steps measured 3x, s -> 1.5 and p -> 2 before shrinking toward 1 (200 rows: shrink factors 200/240,
    # 200/220); the model's factors over all backends are those of its one backend's rows
    parts = _parts(200, ttft_prefill=1.0, tpot_decode=1.0)
    fitted = fit_corrections(["M"] * 200, ["vllm"] * 200, np.full(200, 3.0), np.full(200, 1.5), parts)
    correction = fitted[("M",)]
    assert correction.step_time_factor == pytest.approx(1.5 ** (200 / 240))
    assert correction.prefill_factor == pytest.approx(
        2.0 ** (200 / 220), rel=1e-6
    )  # solved at the unshrunk s
    assert parts.ttft(1.5, 2.0)[0] == pytest.approx(3.0) and parts.tpot(1.5, 2.0)[0] == pytest.approx(1.5)


def test_extreme_measurements_bound_the_prefill_factor():
    parts = _parts(10, overhead=1.0, tpot_decode=1.0)
    fitted = fit_corrections(["M"] * 10, ["vllm"] * 10, np.full(10, 1e4), np.ones(10), parts)
    assert fitted[("M",)].prefill_factor == pytest.approx(20.0 ** (10 / 30))


def test_predictions_carry_the_models_correction_and_it_round_trips(small_features):
    table = fit_table(small_features)
    name, backend = small_features[0].setup.model.name, small_features[0].setup.backend
    plain = dataclasses.replace(table, model_corrections={})
    doubled = dataclasses.replace(table, model_corrections={(name, backend): ModelCorrection(2.0, 1.0, 10)})
    base_ttft, base_tpot = predict_rows(small_features[:1], plain)
    ttft, tpot = predict_rows(small_features[:1], doubled)
    assert tpot[0] == pytest.approx(2.0 * base_tpot[0])  # every step twice as long; overheads unchanged
    assert base_ttft[0] < ttft[0] < 2.0 * base_ttft[0]
    again = CalibrationTable.from_json(json.loads(json.dumps(doubled.to_json())))
    assert again.model_corrections == doubled.model_corrections
    assert table.model_corrections  # fit_table learns them from the rows it fits


def test_tables_written_before_the_step_prefill_split_load_without_corrections(small_features):
    document = fit_table(small_features).to_json()
    document["model_corrections"] = [
        {"model": "M", "backend": None, "rows": 9, "ttft_factor": 2.0, "tpot_factor": 1.0}
    ]
    assert CalibrationTable.from_json(document).model_corrections == {}


def test_cross_validation_never_sees_the_held_out_group(small_features):
    groups = {(f.row.model, f.row.system) for f in small_features}
    assert len(groups) >= 2
    held_ttft, held_tpot = cross_validate(small_features)
    assert np.all(np.isfinite(held_ttft)) and np.all(np.isfinite(held_tpot))
    in_ttft, _ = predict_rows(small_features, fit_table(small_features))
    assert not np.allclose(held_ttft, in_ttft)


def test_packaged_fit_matches_the_packaged_rows_and_names_them(data):
    table = load_fitted_table()
    assert table is not None
    from servewise.perf._calibrate import data_fingerprint

    assert table.data_sha256 == data_fingerprint(
        data.benchmarks
    )  # refresh with scripts/refresh_calibration.py
    used = {i for level in table.levels.values() if len(level.key) == 3 for i in level.row_ids}
    assert len(used) == table.rows
    assert table.rows + table.skipped == len(data.benchmarks)


def test_rows_that_cannot_be_simulated_are_skipped_with_a_reason(data):
    row = next(r for r in data.benchmarks if r.system == "h100_sxm")
    unknown = dataclasses.replace(row, model="acme/NoSuchModel-7B")
    features, skipped = features_for_rows([unknown], data.models, data.accelerators, data.aliases)
    assert features == [] and "unknown model" in skipped[0][1]
    assert isinstance(
        setup_for_row(
            dataclasses.replace(row, system="tpu_v9"), data.models, data.accelerators, data.aliases
        ),
        str,
    )


def test_cross_validation_also_hides_the_same_model_on_the_same_system_under_another_name(
    small_features, monkeypatch
):
    import servewise.perf._calibrate as calibrate

    first = small_features[0]
    renamed = [
        dataclasses.replace(f, row=dataclasses.replace(f.row, model="vendor/re-export"))
        if i % 2 and (f.setup.model.name, f.row.system) == (first.setup.model.name, first.row.system)
        else f
        for i, f in enumerate(small_features)
    ]
    seen: list[list[RowFeatures]] = []
    real_fit = calibrate.fit_table
    monkeypatch.setattr(
        calibrate, "fit_table", lambda train, **kw: seen.append(list(train)) or real_fit(train)
    )
    cross_validate(renamed)
    pair = (first.setup.model.name, first.row.system)
    held_out_folds = [
        train for train in seen if all((f.setup.model.name, f.row.system) != pair for f in train)
    ]
    # both names of that model on that system are held out together: two folds fit without any of its rows
    assert len(held_out_folds) >= 2


@pytest.fixture(scope="module")
def parallel_features(data) -> list[RowFeatures]:
    """One low-concurrency row with tensor parallelism only and one with attention data parallelism (a MoE whose
    experts are split over the ranks): the dp-dependent dispatch term acts on the second only."""

    def first(check) -> object:
        return next(r for r in data.benchmarks if check(r) and r.concurrency <= 16)

    tensor = first(lambda r: r.system == "h200_sxm" and r.tp == 8 and r.attention_dp <= 1)
    ranks = first(lambda r: r.attention_dp > 1 and r.moe_ep > 1)
    features, skipped = features_for_rows([tensor, ranks], data.models, data.accelerators, data.aliases)
    assert not skipped and [f.fixed_counts[4] > 0 for f in features] == [False, True]
    return features


def test_the_data_parallel_dispatch_term_matches_the_simulation_and_acts_where_it_should(parallel_features):
    base = dataclasses.replace(ANALYTICAL_PARAMS, overlap_penalty=0.5)
    table = CalibrationTable(
        {(): _level((), dataclasses.replace(base, dp_dispatch_s=2e-4))}, "2026-01-01", "", 1
    )
    for feature in parallel_features:  # the fit's closed form and the step model agree with the term on
        ttft, tpot = predict_rows([feature], table)
        simulated = simulate_point(feature.setup, table.params_for(*feature.key))
        assert ttft[0] == pytest.approx(simulated.ttft_ms, rel=1e-6)
        assert tpot[0] == pytest.approx(simulated.tpot_ms, rel=1e-6)

    def predicted(params: StepParams) -> np.ndarray:
        ttft, tpot = predict_rows(parallel_features, CalibrationTable({(): _level((), params)}, "d", "", 1))
        return np.stack([ttft, tpot])

    plain = predicted(base)
    waiting_ranks = predicted(dataclasses.replace(base, dp_dispatch_s=2e-4))
    assert waiting_ranks[:, 0] == pytest.approx(plain[:, 0])  # no attention DP: untouched
    assert waiting_ranks[1, 1] > plain[1, 1]  # every step of the DP row waits at each MoE layer


def test_the_fits_derivatives_are_the_finite_differences(parallel_features):
    stack = FeatureStack(parallel_features)
    names = ("dp_dispatch_s", "moe_dispatch_s", "compute_efficiency", "bandwidth_efficiency")
    p = {n: float(getattr(ANALYTICAL_PARAMS, n)) for n in FIT_PARAMETERS}
    p.update(dp_dispatch_s=1e-4, overlap_penalty=0.4)
    _, _, d_ttft, d_tpot = stack.predict_with_gradient(p, names)
    for j, name in enumerate(names):
        step = 1e-6
        up, down = dict(p), dict(p)
        up[name], down[name] = p[name] * np.exp(step), p[name] * np.exp(-step)
        (t_up, p_up), (t_down, p_down) = stack.predict(up), stack.predict(down)
        np.testing.assert_allclose(d_ttft[:, j], (t_up - t_down) / (2 * step), rtol=1e-4, atol=1e-12)
        np.testing.assert_allclose(d_tpot[:, j], (p_up - p_down) / (2 * step), rtol=1e-4, atol=1e-12)
