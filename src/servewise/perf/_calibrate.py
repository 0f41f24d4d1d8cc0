"""Fit the step model's efficiencies to measured benchmark rows, with held-out validation.

Why this shape: a closed-loop benchmark's schedule (which requests share which step) does not depend on how long
the steps take, so each row is simulated once and reduced to its steps' token mix (``StepRecord``). Mean TTFT and
TPOT are then weighted sums of step durations, and a step's duration is, for efficiencies θ,

    t = k·(t_step + L·t_layer + n_ar·α + n_moe·δ + T·c/e_ar) + Σ_i max(F_i / (peak·e_c), B_i / (BW·e_b))

so one evaluation of all 2,600 rows is a few numpy passes, and a least-squares fit takes seconds, not hours.

The fit minimises Σ ρ(log predicted − log measured) over TTFT and TPOT, ρ a soft-L1 loss (a few rows carry
several-second TTFT outliers that a square would let steer every parameter), plus a prior that pulls each level's
parameters toward its parent's: global ← analytical defaults, backend ← global, (GPU, backend) ← backend,
(GPU, backend, precision) ← (GPU, backend). A level with fewer than ``MIN_ROWS`` rows keeps its parent's values —
the family/global fallback. Parameters are fitted in log space, so they stay positive. Last, each model gets a
TTFT and a TPOT factor from its residuals (``_correction``). The evaluation itself lives in ``_calfeatures``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date

import numpy as np
from scipy.optimize import least_squares

from servewise.catalog import Accelerator, Alias, BenchmarkRow, ModelSpec

from ._benchpoint import setup_for_row
from ._calfeatures import FeatureStack, RowFeatures, row_features
from ._caltable import FIT_PARAMETERS, FLOOR, CalibrationTable, FittedLevel, load_fitted_table, params_dict
from ._correction import CorrectionParts, fit_corrections
from ._params import ANALYTICAL_PARAMS

__all__ = [
    "FIT_PARAMETERS",
    "CalibrationTable",
    "FittedLevel",
    "RowFeatures",
    "cross_validate",
    "fit_table",
    "load_fitted_table",
    "predict_rows",
    "row_features",
]

_EFFICIENCIES = {
    "compute_efficiency",
    "moe_compute_efficiency",
    "attention_efficiency",
    "bandwidth_efficiency",
    "allreduce_efficiency",
    "overlap_penalty",
}
_FIT_START = {
    "client_overhead_s_per_client": 1e-4,
    "client_prompt_overhead_s_per_token": 1e-8,
    "prefill_layer_overhead_s": 1e-5,
    "dp_dispatch_s": 1e-5,
}
"""Where the global fit starts (and centres its wide prior) for terms whose analytical default is 0: a log-space
fit cannot leave 0, and 0.1 ms per client (0.01 µs per client and prompt token, 10 µs per layer of an eager
prefill step) is the order the frontend and kernel launches cost (an assumption the fit then moves)."""
_MAX_EFFICIENCY = 1.0
MIN_ROWS = 8
_PRIOR_SIGMA = {0: 2.0, 1: 0.25, 2: 0.1, 3: 0.05}
"""Log-space prior width per level depth: global, backend, (GPU, backend), (GPU, backend, precision). Narrow below
the backend: wider priors (1.0/0.5/0.3) fitted the training rows closer but predicted held-out groups worse."""
_LOSS = "soft_l1"
_LOSS_SCALE = 0.1


def features_for_rows(
    rows: Iterable[BenchmarkRow],
    models: tuple[ModelSpec, ...],
    accelerators: tuple[Accelerator, ...],
    aliases: tuple[Alias, ...],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[RowFeatures], list[tuple[BenchmarkRow, str]]]:
    """Simulate each row once; rows that cannot be simulated come back with the reason."""
    features: list[RowFeatures] = []
    skipped: list[tuple[BenchmarkRow, str]] = []
    for row in rows:
        setup = setup_for_row(row, models, accelerators, aliases)
        if isinstance(setup, str):
            skipped.append((row, setup))
        elif not (row.ttft_ms > 0 and row.tpot_ms > 0):
            skipped.append((row, "measured TTFT/TPOT must be > 0"))
        else:
            features.append(row_features(setup, row))
        if progress is not None:
            progress(1)
    return features, skipped


def _fit_level(
    stack: FeatureStack,
    prior: dict[str, float],
    sigma: float,
    moe: bool,
    moving: bool,
    multi_gpu: bool,
    *,
    data_parallel: bool = False,
) -> dict[str, float]:
    names = [
        n
        for n in FIT_PARAMETERS
        if (moe or n != "moe_compute_efficiency")
        and (moving or n != "moe_dispatch_s")
        and (data_parallel or n != "dp_dispatch_s")
        and (multi_gpu or n not in ("allreduce_latency_s", "allreduce_efficiency"))
    ]
    x0 = np.log([prior[n] for n in names])
    upper = np.array([math.log(_MAX_EFFICIENCY) if n in _EFFICIENCIES else math.log(1.0) for n in names])
    lower = np.array([math.log(0.02) if n in _EFFICIENCIES else math.log(FLOOR) for n in names])
    x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
    log_ttft, log_tpot = np.log(stack.measured_ttft), np.log(stack.measured_tpot)
    prior_x = x0.copy()

    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            p = dict(prior)
            p.update(zip(names, (float(v) for v in np.exp(x)), strict=True))
            ttft, tpot, d_ttft, d_tpot = stack.predict_with_gradient(p, names)
            residual = np.concatenate(
                [np.log(ttft) - log_ttft, np.log(tpot) - log_tpot, (x - prior_x) / sigma]
            )
            jacobian = np.vstack([d_ttft / ttft[:, None], d_tpot / tpot[:, None], np.eye(len(names)) / sigma])
            cache[key] = (residual, jacobian)
        return cache[key]

    solution = least_squares(
        lambda x: evaluate(x)[0],
        x0,
        jac=lambda x: evaluate(x)[1],
        bounds=(lower, upper),
        method="trf",
        loss=_LOSS,
        f_scale=_LOSS_SCALE,
        x_scale=1.0,
        ftol=1e-6,
        xtol=1e-6,
        max_nfev=100,
    )
    fitted = dict(prior)
    fitted.update(zip(names, (float(v) for v in np.exp(solution.x)), strict=True))
    return fitted


def fit_table(
    features: Sequence[RowFeatures],
    *,
    fitted_on: str | None = None,
    data_sha256: str = "",
    skipped: int = 0,
    progress: Callable[[int], None] | None = None,
) -> CalibrationTable:
    """Fit every level that has rows (see the module docstring)."""
    by_key: dict[tuple[str, ...], list[RowFeatures]] = defaultdict(list)
    for f in features:
        gpu, backend, precision = f.key
        keys: tuple[tuple[str, ...], ...] = ((), (backend,), (gpu, backend), (gpu, backend, precision))
        for key in keys:
            by_key[key].append(f)
    levels: dict[tuple[str, ...], FittedLevel] = {}
    for key in sorted(by_key, key=lambda k: (len(k), k)):
        rows = by_key[key]
        parent_key: tuple[str, ...] = ()
        if len(key) == 2:
            parent_key = (key[1],)
        elif len(key) == 3:
            parent_key = key[:2]
        parent = levels[parent_key].params if key else params_dict(ANALYTICAL_PARAMS) | _FIT_START
        ids = tuple(sorted(r.row.source_row_id for r in rows)) if len(key) == 3 else ()
        if len(rows) < MIN_ROWS:
            levels[key] = FittedLevel(key, dict(parent), len(rows), ids, fitted=False)
        else:
            moe = any(r.expert0 is not None and r.expert0.any() for r in rows)
            moving = any(r.fixed_counts[3] > 0 for r in rows)
            multi = any(r.fixed_counts[2] > 0 or r.fixed_counts[3] > 0 for r in rows)
            params = _fit_level(
                FeatureStack(rows),
                parent,
                _PRIOR_SIGMA[len(key)],
                moe,
                moving,
                multi,
                data_parallel=any(r.fixed_counts[4] > 0 for r in rows),
            )
            levels[key] = FittedLevel(key, params, len(rows), ids)
        if progress is not None:
            progress(1)
    table = CalibrationTable(
        levels, fitted_on or date.today().isoformat(), data_sha256, len(features), skipped
    )
    if not features:
        return table
    corrections = fit_corrections(
        [f.setup.model.name for f in features],
        [f.setup.backend for f in features],
        np.array([f.row.ttft_ms for f in features]),
        np.array([f.row.tpot_ms for f in features]),
        _predict_parts(features, table),
    )
    return dataclasses.replace(table, model_corrections=corrections)


def level_count(features: Sequence[RowFeatures]) -> int:
    keys: set[tuple[str, ...]] = set()
    for f in features:
        gpu, backend, precision = f.key
        keys.update({(), (backend,), (gpu, backend), (gpu, backend, precision)})
    return len(keys)


def predict_rows(
    features: Sequence[RowFeatures], table: CalibrationTable | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean TTFT and TPOT (ms) of each row with its level's parameters and its model's correction (analytical
    when ``table`` is None), combined as ``build_step_model`` folds the correction into the step model that
    ``predict``, ``plan`` and the simulator use (``_correction``)."""
    parts = _predict_parts(features, table)
    s = np.ones(len(features))
    p = np.ones(len(features))
    if table is not None:
        for i, f in enumerate(features):
            correction = table.correction_for(f.setup.model.name, f.setup.backend)
            if correction is not None:
                s[i], p[i] = correction.step_time_factor, correction.prefill_factor
    return parts.ttft(s, p), parts.tpot(s, p)


def _predict_parts(features: Sequence[RowFeatures], table: CalibrationTable | None) -> CorrectionParts:
    """Uncorrected parts of each row's mean TTFT and TPOT (ms) with each row's level parameters."""
    n = len(features)
    arrays = [np.empty(n) for _ in range(5)]
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        groups[f.key].append(i)
    for key, indices in groups.items():
        params = table.params_for(*key) if table else ANALYTICAL_PARAMS
        stack = FeatureStack([features[i] for i in indices])
        parts = stack.predict_parts({n: getattr(params, n) for n in FIT_PARAMETERS})
        values = (
            parts.ttft_decode,
            parts.ttft_prefill,
            parts.overhead,
            parts.tpot_decode,
            parts.tpot_prefill,
        )
        for array, value in zip(arrays, values, strict=True):
            array[indices] = value * 1000.0
    return CorrectionParts(*arrays)


def group_of(row: BenchmarkRow) -> tuple[str, str]:
    """Cross-validation group: one model on one system (all backends and precisions of it)."""
    return (row.model, row.system)


def cross_validate(
    features: Sequence[RowFeatures], *, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-group-out predictions: each (model, system) group predicted by a fit on all other groups.

    Strict: rows of the same catalog model on the same system under another checkpoint name (an NVFP4 re-export)
    are left out of the fit as well, so neither the levels nor the model correction see the held-out pairing."""
    ttft = np.full(len(features), np.nan)
    tpot = np.full(len(features), np.nan)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        groups[group_of(f.row)].append(i)
    for indices in groups.values():
        held = set(indices)
        pair = (features[indices[0]].setup.model.name, features[indices[0]].row.system)
        train = [
            f for i, f in enumerate(features) if i not in held and (f.setup.model.name, f.row.system) != pair
        ]
        table = fit_table(train)
        t1, t2 = predict_rows([features[i] for i in indices], table)
        ttft[indices], tpot[indices] = t1, t2
        if progress is not None:
            progress(1)
    return ttft, tpot


def data_fingerprint(rows: Iterable[BenchmarkRow]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row.source_row_id}|{row.ttft_ms!r}|{row.tpot_ms!r}\n".encode())
    return digest.hexdigest()
