"""Fit the step model's efficiencies to measured benchmark rows, with held-out validation.

Why this shape: a closed-loop benchmark's schedule (which requests share which step) does not depend on how long
the steps take, so each row is simulated once and reduced to its steps' token mix (``StepRecord``). Mean TTFT and
TPOT are then weighted sums of step durations, and a step's duration is, for efficiencies θ,

    t = k·(t_step + L·t_layer + n_ar·α + n_moe·δ + T·c/e_ar) + Σ_i max(F_i / (peak·e_c), B_i / (BW·e_b))

so one evaluation of all 2,600 rows is a few numpy passes, and a least-squares fit takes seconds, not hours.

The fit minimises Σ (log predicted − log measured)² over TTFT and TPOT, plus a prior that pulls each level's
parameters toward its parent's: global ← analytical defaults, backend ← global, (GPU, backend) ← backend,
(GPU, backend, precision) ← (GPU, backend). A level with fewer than ``MIN_ROWS`` rows keeps its parent's values —
the family/global fallback. Parameters are fitted in log space, so they stay positive.
"""

from __future__ import annotations

import dataclasses
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

from ._benchpoint import BenchmarkSetup, setup_for_row, simulate_point, step_model_for
from ._params import ANALYTICAL_PARAMS, StepParams

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
    "bandwidth_efficiency",
    "step_overhead_s",
    "layer_overhead_s",
    "allreduce_latency_s",
    "allreduce_efficiency",
    "moe_dispatch_s",
    "request_overhead_s",
    "prompt_overhead_s_per_token",
    "overlap_penalty",
)
_EFFICIENCIES = {"compute_efficiency", "bandwidth_efficiency", "allreduce_efficiency", "overlap_penalty"}
_FLOOR = 1e-7
"""Zero defaults (layer overhead) start the log-space fit from 0.1 µs."""
_MAX_EFFICIENCY = 1.0
MIN_ROWS = 8
_PRIOR_SIGMA = {0: 2.0, 1: 1.0, 2: 0.5, 3: 0.3}
"""Log-space prior width per level depth: global, backend, (GPU, backend), (GPU, backend, precision)."""
PACKAGED_FIT = "calibration_fit.json"


@dataclass(frozen=True, slots=True)
class RowFeatures:
    """One row, reduced to what its mean TTFT/TPOT depend on (see the module docstring)."""

    row: BenchmarkRow
    setup: BenchmarkSetup
    steps: np.ndarray
    flops0: np.ndarray
    """F_0/peak per record: seconds at 100 % compute efficiency of the first step."""
    flops1: np.ndarray
    bytes0: np.ndarray
    bytes1: np.ndarray
    comm: np.ndarray
    """T · c: collective seconds per step at 100 % link efficiency."""
    ttft_weight: np.ndarray
    tpot_weight: np.ndarray
    ttft_norm: float
    tpot_norm: float
    prompt_mean: float
    """Weighted mean prompt tokens of the requests in the means (for the per-token frontend overhead)."""
    fixed_counts: tuple[float, float, float, float]
    """Per step: 1 (step overhead), layers, all-reduces, split MoE layers."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.setup.gpu.name, self.setup.backend, str(self.setup.precision))


def row_features(setup: BenchmarkSetup, row: BenchmarkRow) -> RowFeatures:
    """Simulate ``row`` once (at the analytical parameters; the schedule does not depend on them)."""
    point = simulate_point(setup, ANALYTICAL_PARAMS, record_steps=True)
    record = point.result.record
    assert record is not None
    unit = step_model_for(setup, ANALYTICAL_PARAMS)
    peak, hbm = unit.peak_flops_per_s, unit.peak_bytes_per_s
    tokens = np.array(record.tokens)
    growth = np.array(record.growth)
    weights = np.array([unit.weight_bytes_per_step(t) for t in record.tokens])
    flops0 = (
        (unit.linear_flops_per_token * tokens + unit.lm_head_flops_per_seq * np.array(record.sampled))
        + unit.attn_flops_per_pair * np.array(record.pairs)
    ) / peak
    bytes0 = (weights + unit.kv_bytes_per_token * (np.array(record.kv_read) + tokens)) / hbm
    result = point.result
    included = result.weight > 0
    with_tpot = included & (np.isfinite(result.tpot_s))
    return RowFeatures(
        row=row,
        setup=setup,
        steps=np.array(record.count, dtype=float),
        flops0=flops0,
        flops1=unit.attn_flops_per_pair * growth / peak,
        bytes0=bytes0,
        bytes1=unit.kv_bytes_per_token * growth / hbm,
        comm=tokens * unit.comm_s_per_token_at_full_link,
        ttft_weight=np.array(record.ttft_weight),
        tpot_weight=np.array(record.tpot_weight),
        ttft_norm=float(result.weight[included].sum()),
        prompt_mean=float(
            np.average(
                [r.prompt_tokens for r in setup.workload.requests], weights=np.maximum(result.weight, 1e-12)
            )
        ),
        tpot_norm=float(result.weight[with_tpot].sum()),
        fixed_counts=(1.0, float(unit.layers), float(unit.allreduces), float(unit.moe_layers_split)),
    )


def _series(a: np.ndarray, b: np.ndarray, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    total: np.ndarray = count * a + b * (count * first + count * (count - 1) / 2.0)
    return total


def sum_of_max_lines_np(
    a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``_roofline.sum_of_max_lines``, split into the part where line a is on top and where b is (so
    the sum is their total and each part's derivative in its line's scale is the part itself)."""
    zero = np.zeros_like(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(a1 != b1, (b0 - a0) / (a1 - b1), -1.0)
    inside = (cross > 0) & (cross < k - 1)
    split = np.where(inside, np.floor(np.where(inside, cross, 0.0)) + 1, 0.0)
    a_first = a0 >= b0
    mid = (k - 1) / 2.0
    a_whole = a0 + a1 * mid >= b0 + b1 * mid
    a_head, b_head = _series(a0, a1, zero, split), _series(b0, b1, zero, split)
    a_tail, b_tail = _series(a0, a1, split, k - split), _series(b0, b1, split, k - split)
    a_part = np.where(
        inside, np.where(a_first, a_head, a_tail), np.where(a_whole, _series(a0, a1, zero, k), 0.0)
    )
    b_part = np.where(
        inside, np.where(a_first, b_tail, b_head), np.where(a_whole, 0.0, _series(b0, b1, zero, k))
    )
    return a_part, b_part


class _Stack:
    """Many rows' records concatenated, for one vectorised evaluation."""

    def __init__(self, rows: Sequence[RowFeatures]) -> None:
        self.rows = rows
        sizes = [len(r.steps) for r in rows]
        self.index = np.repeat(np.arange(len(rows)), sizes)
        cat = np.concatenate
        self.steps = cat([r.steps for r in rows])
        self.flops0, self.flops1 = cat([r.flops0 for r in rows]), cat([r.flops1 for r in rows])
        self.bytes0, self.bytes1 = cat([r.bytes0 for r in rows]), cat([r.bytes1 for r in rows])
        self.comm = cat([r.comm for r in rows])
        self.fixed = np.repeat(np.array([r.fixed_counts for r in rows]), sizes, axis=0)
        self.ttft_w, self.tpot_w = cat([r.ttft_weight for r in rows]), cat([r.tpot_weight for r in rows])
        self.ttft_norm = np.array([max(r.ttft_norm, 1e-12) for r in rows])
        self.tpot_norm = np.array([max(r.tpot_norm, 1e-12) for r in rows])
        self.prompt_mean = np.array([r.prompt_mean for r in rows])
        self.measured_ttft = np.array([r.row.ttft_ms / 1000.0 for r in rows])
        self.measured_tpot = np.array([r.row.tpot_ms / 1000.0 for r in rows])

    def predict(self, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Mean TTFT and TPOT (s) of every row at parameters ``p``."""
        ttft, tpot, _, _ = self.predict_with_gradient(p, ())
        return ttft, tpot

    def predict_with_gradient(
        self, p: dict[str, float], names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean TTFT and TPOT (s) per row, and their derivatives in log p[name] for each of ``names``."""
        e_c, e_b, e_ar = p["compute_efficiency"], p["bandwidth_efficiency"], p["allreduce_efficiency"]
        compute, memory = sum_of_max_lines_np(
            self.flops0 / e_c, self.flops1 / e_c, self.bytes0 / e_b, self.bytes1 / e_b, self.steps
        )
        fixed_terms = {
            "step_overhead_s": self.steps * self.fixed[:, 0] * p["step_overhead_s"],
            "layer_overhead_s": self.steps * self.fixed[:, 1] * p["layer_overhead_s"],
            "allreduce_latency_s": self.steps * self.fixed[:, 2] * p["allreduce_latency_s"],
            "moe_dispatch_s": self.steps * self.fixed[:, 3] * p["moe_dispatch_s"],
        }
        comm = self.steps * self.comm / e_ar
        gamma = p["overlap_penalty"]
        c_all = _series(self.flops0 / e_c, self.flops1 / e_c, np.zeros_like(self.steps), self.steps)
        m_all = _series(self.bytes0 / e_b, self.bytes1 / e_b, np.zeros_like(self.steps), self.steps)
        lesser = c_all + m_all - compute - memory
        total = compute + memory + gamma * lesser + comm + sum(fixed_terms.values())
        n = len(self.rows)

        def per_row(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (
                np.bincount(self.index, values * self.ttft_w, n) / self.ttft_norm,
                np.bincount(self.index, values * self.tpot_w, n) / self.tpot_norm,
            )

        ttft, tpot = per_row(total)
        ttft = ttft + p["request_overhead_s"] + p["prompt_overhead_s_per_token"] * self.prompt_mean
        d_ttft = np.zeros((n, len(names)))
        d_tpot = np.zeros((n, len(names)))
        partials = {
            # d/dlog e of max + γ·min: the max part scales by −1, and min = all − max scales by −1 as well
            "compute_efficiency": -((1 - gamma) * compute + gamma * c_all),
            "bandwidth_efficiency": -((1 - gamma) * memory + gamma * m_all),
            "overlap_penalty": gamma * lesser,
            "allreduce_efficiency": -comm,
            **fixed_terms,
        }
        for j, name in enumerate(names):
            if name == "request_overhead_s":
                d_ttft[:, j] = p["request_overhead_s"]
                continue
            if name == "prompt_overhead_s_per_token":
                d_ttft[:, j] = p[name] * self.prompt_mean
                continue
            d_ttft[:, j], d_tpot[:, j] = per_row(partials[name])
        return ttft, tpot, d_ttft, d_tpot


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
        )

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
        return cls(
            levels,
            str(data["fitted_on"]),
            str(data["data_sha256"]),
            int(data["rows"]),
            int(data.get("skipped", 0)),
            tuple(data.get("notes", ())),
        )


def load_fitted_table(path: Path | None = None) -> CalibrationTable | None:
    """The fit shipped in the package (or at ``path``); None when there is none."""
    if path is None:
        resource = resources.files("servewise.perf").joinpath("data", PACKAGED_FIT)
        if not resource.is_file():
            return None
        text = resource.read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return CalibrationTable.from_json(json.loads(text))


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
    stack: _Stack, prior: dict[str, float], sigma: float, moe: bool, multi_gpu: bool
) -> dict[str, float]:
    names = [
        n
        for n in FIT_PARAMETERS
        if (moe or n != "moe_dispatch_s")
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
        parent = levels[parent_key].params if key else _params_dict(ANALYTICAL_PARAMS)
        ids = tuple(sorted(r.row.source_row_id for r in rows)) if len(key) == 3 else ()
        if len(rows) < MIN_ROWS:
            levels[key] = FittedLevel(key, dict(parent), len(rows), ids, fitted=False)
        else:
            moe = any(r.fixed_counts[3] > 0 for r in rows)
            multi = any(r.fixed_counts[2] > 0 or r.fixed_counts[3] > 0 for r in rows)
            params = _fit_level(_Stack(rows), parent, _PRIOR_SIGMA[len(key)], moe, multi)
            levels[key] = FittedLevel(key, params, len(rows), ids)
        if progress is not None:
            progress(1)
    return CalibrationTable(
        levels,
        fitted_on or date.today().isoformat(),
        data_sha256,
        len(features),
        skipped,
    )


def level_count(features: Sequence[RowFeatures]) -> int:
    keys: set[tuple[str, ...]] = set()
    for f in features:
        gpu, backend, precision = f.key
        keys.update({(), (backend,), (gpu, backend), (gpu, backend, precision)})
    return len(keys)


def predict_rows(
    features: Sequence[RowFeatures], table: CalibrationTable | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean TTFT and TPOT (ms) of each row with its level's parameters (analytical when ``table`` is None)."""
    ttft = np.empty(len(features))
    tpot = np.empty(len(features))
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        groups[f.key].append(i)
    for key, indices in groups.items():
        params = table.params_for(*key) if table else ANALYTICAL_PARAMS
        stack = _Stack([features[i] for i in indices])
        t1, t2 = stack.predict(_params_dict(params) | {n: getattr(params, n) for n in FIT_PARAMETERS})
        ttft[indices] = t1 * 1000.0
        tpot[indices] = t2 * 1000.0
    return ttft, tpot


def group_of(row: BenchmarkRow) -> tuple[str, str]:
    """Cross-validation group: one model on one system (all backends and precisions of it)."""
    return (row.model, row.system)


def cross_validate(
    features: Sequence[RowFeatures], *, progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-group-out predictions: each (model, system) group predicted by a fit on all other groups."""
    ttft = np.full(len(features), np.nan)
    tpot = np.full(len(features), np.nan)
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        groups[group_of(f.row)].append(i)
    for indices in groups.values():
        held = set(indices)
        train = [f for i, f in enumerate(features) if i not in held]
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
