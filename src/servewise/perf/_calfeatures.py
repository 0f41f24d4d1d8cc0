"""Benchmark rows reduced to their steps' token mix, and the vectorised evaluation of mean TTFT/TPOT over them.

Why apart from the fit: this is the calibration's physics (how a schedule of steps turns parameters into the two
measured means, with the analytic derivatives the fit needs), while ``_calibrate`` is its statistics (levels,
priors, loss, cross-validation). See ``_calibrate``'s docstring for the step-time formula both rest on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from servewise.catalog import BenchmarkRow

from ._benchpoint import BenchmarkSetup, simulate_point, step_model_for
from ._params import ANALYTICAL_PARAMS

__all__ = ["FeatureStack", "RowFeatures", "row_features", "sum_of_max_lines_np"]


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
    clients: float = 0.0
    """Concurrent clients of the benchmark (for the per-client frontend overhead on TTFT)."""

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
        clients=float(setup.clients),
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


class FeatureStack:
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
        self.clients = np.array([r.clients for r in rows])
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
        ttft = (
            ttft
            + p["request_overhead_s"]
            + p["prompt_overhead_s_per_token"] * self.prompt_mean
            + p["client_overhead_s_per_client"] * self.clients
            + p["client_prompt_overhead_s_per_token"] * self.clients * self.prompt_mean
        )
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
            if name == "client_prompt_overhead_s_per_token":
                d_ttft[:, j] = p[name] * self.clients * self.prompt_mean
                continue
            if name == "client_overhead_s_per_client":
                d_ttft[:, j] = p[name] * self.clients
                continue
            d_ttft[:, j], d_tpot[:, j] = per_row(partials[name])
        return ttft, tpot, d_ttft, d_tpot
