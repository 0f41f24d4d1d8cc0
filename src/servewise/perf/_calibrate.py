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
import functools
import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from servewise.catalog import Accelerator, Alias, BenchmarkRow, ModelSpec
from servewise.types import Provenance

from ._benchpoint import setup_for_row
from ._calfeatures import FeatureStack, RowFeatures, row_features
from ._correction import CorrectionParts, ModelCorrection, fit_corrections, lookup_correction
from ._params import ANALYTICAL_PARAMS, ModelFactors, StepParams

__all__ = [
    "FIT_PARAMETERS",
    "CalibrationTable",
    "RowFeatures",
    "cross_validate",
    "fit_table",
    "load_fitted_table",
    "predict_rows",
    "row_features",
]

FIT_PARAMETERS = (
    "compute_efficiency",
    "moe_compute_efficiency",
    "attention_efficiency",
    "bandwidth_efficiency",
    "step_overhead_s",
    "layer_overhead_s",
    "prefill_layer_overhead_s",
    "allreduce_latency_s",
    "allreduce_efficiency",
    "moe_dispatch_s",
    "request_overhead_s",
    "prompt_overhead_s_per_token",
    "client_overhead_s_per_client",
    "client_prompt_overhead_s_per_token",
    "overlap_penalty",
    "dp_dispatch_s",
)
_EFFICIENCIES = {
    "compute_efficiency",
    "moe_compute_efficiency",
    "attention_efficiency",
    "bandwidth_efficiency",
    "allreduce_efficiency",
    "overlap_penalty",
}
_FLOOR = 1e-7
"""Zero defaults (layer overhead) start the log-space fit from 0.1 µs."""
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
PACKAGED_FIT = "calibration_fit.json"
_LOSS = "soft_l1"
_LOSS_SCALE = 0.1


def _params_dict(params: StepParams) -> dict[str, float]:
    return {name: max(float(getattr(params, name)), _FLOOR) for name in FIT_PARAMETERS}


@dataclass(frozen=True, slots=True)
class FittedLevel:
    key: tuple[str, ...]
    """() global, (backend,), (gpu, backend), (gpu, backend, precision)."""
    params: dict[str, float]
    rows: int
    row_ids: tuple[str, ...] = ()
    fitted: bool = True
    """False when the level had fewer than MIN_ROWS rows and inherits its parent's values."""


@dataclass(frozen=True, slots=True)
class CalibrationTable:
    """Fitted efficiencies per level; ``params_for`` walks from the most specific level to the global one."""

    levels: dict[tuple[str, ...], FittedLevel]
    fitted_on: str
    data_sha256: str
    rows: int
    skipped: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    model_corrections: dict[tuple[str, ...], ModelCorrection] = field(default_factory=dict)
    """Per catalog model (and backend): TTFT/TPOT factors on top of the level's prediction (``_correction``)."""

    def correction_for(self, model: str, backend: str) -> ModelCorrection | None:
        """The model's TTFT/TPOT factors on ``backend`` (catalog model name), or None when none were fitted."""
        return lookup_correction(self.model_corrections, model, backend)

    def level_for(self, gpu: str, backend: str, precision: str) -> FittedLevel:
        for key in ((gpu, backend, precision), (gpu, backend), (backend,), ()):
            level = self.levels.get(key)
            if level is not None and level.fitted:
                return level
        return FittedLevel((), _params_dict(ANALYTICAL_PARAMS), 0, fitted=False)

    def params_for(self, gpu: str, backend: str, precision: str) -> StepParams:
        """Efficiencies for a configuration, with provenance: ``calibrated`` when rows of this GPU shaped them."""
        level = self.level_for(gpu, backend, precision)
        if not level.rows:
            return ANALYTICAL_PARAMS
        same_gpu = len(level.key) >= 2
        where = "/".join(level.key)
        basis = (
            f"fitted on {level.rows} measured rows of {where} ({self.fitted_on})"
            if same_gpu
            else f"efficiencies fitted on {level.rows} measured {where or 'benchmark'} rows of other GPUs "
            f"({self.fitted_on}); datasheet peaks of {gpu}"
        )
        values = dict(level.params)
        return dataclasses.replace(
            ANALYTICAL_PARAMS,
            **values,
            provenance=Provenance.calibrated if same_gpu else Provenance.analytical,
            basis=basis,
            model_corrections=self.factors_for(backend),
        )

    def factors_for(self, backend: str) -> tuple[ModelFactors, ...]:
        """Every corrected model's factors on ``backend`` (its own backend's rows, else all its rows)."""
        out = []
        for model in sorted({key[0] for key in self.model_corrections}):
            correction = self.correction_for(model, backend)
            if correction is None:  # pragma: no cover - every model has a (model,) entry
                continue
            which = f"{backend} rows" if (model, backend) in self.model_corrections else "rows on any backend"
            out.append(
                ModelFactors(
                    model,
                    correction.step_time_factor,
                    correction.prefill_factor,
                    correction.rows,
                    f"{correction.rows} measured {which} of the model, fitted {self.fitted_on}",
                )
            )
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "fitted_on": self.fitted_on,
            "data_sha256": self.data_sha256,
            "rows": self.rows,
            "skipped": self.skipped,
            "parameters": list(FIT_PARAMETERS),
            "notes": list(self.notes),
            "levels": [
                {
                    "key": list(level.key),
                    "fitted": level.fitted,
                    "rows": level.rows,
                    "params": {k: float(f"{v:.6g}") for k, v in level.params.items()},
                    "row_ids": list(level.row_ids),
                }
                for level in sorted(self.levels.values(), key=lambda lv: (len(lv.key), lv.key))
            ],
            "model_corrections": [c.to_json(key) for key, c in sorted(self.model_corrections.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationTable:
        levels = {}
        for item in data["levels"]:
            key = tuple(item["key"])
            levels[key] = FittedLevel(
                key,
                dict(item["params"]),
                int(item["rows"]),
                tuple(item.get("row_ids", ())),
                bool(item["fitted"]),
            )
        corrections: dict[tuple[str, ...], ModelCorrection] = {
            ((item["model"], item["backend"]) if item.get("backend") else (item["model"],)): (
                ModelCorrection.from_json(item)
            )
            for item in data.get("model_corrections", ())
            if "step_time_factor" in item  # tables written before the step/overhead split carry none
        }
        return cls(
            levels,
            str(data["fitted_on"]),
            str(data["data_sha256"]),
            int(data["rows"]),
            int(data.get("skipped", 0)),
            tuple(data.get("notes", ())),
            corrections,
        )


def load_fitted_table(path: Path | None = None) -> CalibrationTable | None:
    """The fit shipped in the package (or at ``path``); None when there is none."""
    if path is None:
        return _packaged_table()
    return CalibrationTable.from_json(json.loads(path.read_text(encoding="utf-8")))


@functools.cache
def _packaged_table() -> CalibrationTable | None:
    """Read once per process: the planner asks for parameters per (GPU, precision) of a full-catalog sweep."""
    resource = resources.files("servewise.perf").joinpath("data", PACKAGED_FIT)
    if not resource.is_file():
        return None
    return CalibrationTable.from_json(json.loads(resource.read_text(encoding="utf-8")))


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
    lower = np.array([math.log(0.02) if n in _EFFICIENCIES else math.log(_FLOOR) for n in names])
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
        parent = levels[parent_key].params if key else _params_dict(ANALYTICAL_PARAMS) | _FIT_START
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
