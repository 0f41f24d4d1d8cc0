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
from ._correction import CorrectionParts
from ._params import ANALYTICAL_PARAMS

__all__ = ["FeatureStack", "RowFeatures", "row_features", "sum_of_max_lines_np"]


@dataclass(frozen=True, slots=True)
class RowFeatures:
    """One row, reduced to what its mean TTFT/TPOT depend on (see the module docstring).

    Compute seconds are split by the efficiency that applies to them: ``flops0`` dense GEMMs and the LM head,
    ``expert0`` the routed experts' GEMMs (both at the weights' precision peak), ``attn0``/``attn1`` attention (at
    the 16-bit peak), each the seconds at 100 % of its peak of a record's first step (``*1``: growth per step of a
    decode run)."""

    row: BenchmarkRow
    setup: BenchmarkSetup
    steps: np.ndarray
    flops0: np.ndarray
    """Dense FLOPs / peak per record: seconds at 100 % compute efficiency of the first step."""
    attn0: np.ndarray
    attn1: np.ndarray
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
    fixed_counts: tuple[float, float, float, float, float]
    """Per step: 1 (step overhead), layers, all-reduces, split MoE layers, split MoE layers under attention data
    parallelism (dp > 1)."""
    clients: float = 0.0
    """Concurrent clients of the benchmark (for the per-client frontend overhead on TTFT)."""
    expert0: np.ndarray | None = None
    prefill_layers: np.ndarray | None = None
    """Layers per record whose step carries prompt tokens (0 for decode-only records)."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.setup.gpu.name, self.setup.backend, str(self.setup.precision))


def row_features(setup: BenchmarkSetup, row: BenchmarkRow) -> RowFeatures:
    """Simulate ``row`` once (at the analytical parameters; the schedule does not depend on them)."""
    point = simulate_point(setup, ANALYTICAL_PARAMS, record_steps=True)
    record = point.result.record
    assert record is not None
    unit = step_model_for(setup, ANALYTICAL_PARAMS)
    peak, hbm, peak16 = unit.peak_flops_per_s, unit.peak_bytes_per_s, unit.peak_attn_flops_per_s
    tokens = np.array(record.tokens)
    sampled = np.array(record.sampled)
    growth = np.array(record.growth)
    weights = np.array([unit.weight_bytes_per_step(t) for t in record.tokens])
    bytes0 = (weights + unit.kv_bytes_per_token * (np.array(record.kv_read) + tokens)) / hbm
    result = point.result
    included = result.weight > 0
    with_tpot = included & (np.isfinite(result.tpot_s))
    prefill = (tokens > sampled) & (np.array(record.count) == 1)
    return RowFeatures(
        row=row,
        setup=setup,
        steps=np.array(record.count, dtype=float),
        flops0=(unit.linear_flops_per_token * tokens + unit.lm_head_flops_per_seq * sampled) / peak,
        attn0=unit.attn_flops_per_pair * np.array(record.pairs) / peak16,
        attn1=unit.attn_flops_per_pair * growth / peak16,
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
        fixed_counts=(
            1.0,
            float(unit.layers),
            float(unit.allreduces),
            float(unit.moe_layers_split),
            float(unit.moe_layers_split if setup.dp > 1 else 0),
        ),
        clients=float(setup.clients),
        expert0=unit.expert_flops_per_token * tokens / peak,
        prefill_layers=np.where(prefill, float(unit.layers), 0.0),
    )


def _series(a: np.ndarray, b: np.ndarray, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    total: np.ndarray = count * a + b * (count * first + count * (count - 1) / 2.0)
    return total


def max_line_ranges(
    a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For runs of ``k`` steps whose two costs are lines a0 + a1·i and b0 + b1·i: the step ranges (first, count)
    where line a is the larger and where line b is (``_roofline.sum_of_max_lines``, vectorised). Any cost that is
    linear in i sums over a range in closed form (``_series``), so each component of a line gets its own share."""
    zero = np.zeros_like(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(a1 != b1, (b0 - a0) / (a1 - b1), -1.0)
    inside = (cross > 0) & (cross < k - 1)
    split = np.where(inside, np.floor(np.where(inside, cross, 0.0)) + 1, 0.0)
    a_first = a0 >= b0
    mid = (k - 1) / 2.0
    a_whole = a0 + a1 * mid >= b0 + b1 * mid
    a_start = np.where(inside & ~a_first, split, zero)
    a_count = np.where(inside, np.where(a_first, split, k - split), np.where(a_whole, k, zero))
    b_start = np.where(inside & a_first, split, zero)
    b_count = k - a_count
    return a_start, a_count, b_start, b_count


def sum_of_max_lines_np(
    a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``_roofline.sum_of_max_lines``, split into the part where line a is on top and where b is."""
    a_start, a_count, b_start, b_count = max_line_ranges(a0, a1, b0, b1, k)
    return _series(a0, a1, a_start, a_count), _series(b0, b1, b_start, b_count)


_DEFAULTS = {
    name: float(getattr(ANALYTICAL_PARAMS, name))
    for name in (
        "moe_compute_efficiency",
        "attention_efficiency",
        "prefill_layer_overhead_s",
        "dp_dispatch_s",
    )
}
"""Values of the parameters a table may lack (written before they existed, or not fitted)."""


class FeatureStack:
    """Many rows' records concatenated, for one vectorised evaluation."""

    def __init__(self, rows: Sequence[RowFeatures]) -> None:
        self.rows = rows
        sizes = [len(r.steps) for r in rows]
        self.index = np.repeat(np.arange(len(rows)), sizes)
        cat = np.concatenate
        self.steps = cat([r.steps for r in rows])
        zeros = [np.zeros(len(r.steps)) for r in rows]
        self.parts: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "compute_efficiency": (cat([r.flops0 for r in rows]), np.zeros(sum(sizes))),
            "moe_compute_efficiency": (
                cat([r.expert0 if r.expert0 is not None else z for r, z in zip(rows, zeros, strict=True)]),
                np.zeros(sum(sizes)),
            ),
            "attention_efficiency": (cat([r.attn0 for r in rows]), cat([r.attn1 for r in rows])),
        }
        self.bytes0, self.bytes1 = cat([r.bytes0 for r in rows]), cat([r.bytes1 for r in rows])
        self.comm = cat([r.comm for r in rows])
        self.fixed = np.repeat(np.array([r.fixed_counts for r in rows]), sizes, axis=0)
        self.prefill_layers = cat(
            [
                r.prefill_layers if r.prefill_layers is not None else z
                for r, z in zip(rows, zeros, strict=True)
            ]
        )
        self.prefill_step = self.prefill_layers > 0
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

    def predict_parts(self, p: dict[str, float]) -> CorrectionParts:
        """Per row (s): mean TTFT and TPOT split into the shares of decode-only steps, of steps that carry prompt
        tokens and (TTFT) of the frontend overhead, which a model correction scales differently."""
        total = self._step_durations(p)
        ttft_p, tpot_p = self._per_row(total * self.prefill_step)
        ttft_d, tpot_d = self._per_row(total * ~self.prefill_step)
        return CorrectionParts(ttft_d, ttft_p, self._overhead(p), tpot_d, tpot_p)

    def _step_durations(self, p: dict[str, float]) -> np.ndarray:
        return self._steps(p, ())[3]

    def _overhead(self, p: dict[str, float]) -> np.ndarray:
        total: np.ndarray = (
            p["request_overhead_s"]
            + p["prompt_overhead_s_per_token"] * self.prompt_mean
            + p["client_overhead_s_per_client"] * self.clients
            + p["client_prompt_overhead_s_per_token"] * self.clients * self.prompt_mean
        )
        return total

    def _steps(
        self, p: dict[str, float], names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Step-weighted TTFT and TPOT per row, for each of ``names`` that acts on step time the per-record
        derivative of the summed step durations in log p[name], and the summed durations per record."""
        p = {**_DEFAULTS, **p}
        c0 = np.zeros_like(self.steps)
        c1 = np.zeros_like(self.steps)
        for e, (x0, x1) in self.parts.items():
            c0 = c0 + x0 / p[e]
            c1 = c1 + x1 / p[e]
        e_b = p["bandwidth_efficiency"]
        m0, m1 = self.bytes0 / e_b, self.bytes1 / e_b
        a_start, a_count, b_start, b_count = max_line_ranges(c0, c1, m0, m1, self.steps)
        zero = np.zeros_like(self.steps)
        compute, memory = _series(c0, c1, a_start, a_count), _series(m0, m1, b_start, b_count)
        c_all, m_all = _series(c0, c1, zero, self.steps), _series(m0, m1, zero, self.steps)
        gamma = p["overlap_penalty"]
        lesser = c_all + m_all - compute - memory
        fixed_terms = {
            "step_overhead_s": self.steps * self.fixed[:, 0] * p["step_overhead_s"],
            "layer_overhead_s": self.steps * self.fixed[:, 1] * p["layer_overhead_s"],
            "allreduce_latency_s": self.steps * self.fixed[:, 2] * p["allreduce_latency_s"],
            "moe_dispatch_s": self.steps * self.fixed[:, 3] * p["moe_dispatch_s"],
            "dp_dispatch_s": self.steps * self.fixed[:, 4] * p["dp_dispatch_s"],
            "prefill_layer_overhead_s": self.prefill_layers * p["prefill_layer_overhead_s"],
        }
        comm = self.steps * self.comm / p["allreduce_efficiency"]
        total = compute + memory + gamma * lesser + comm + sum(fixed_terms.values())
        partials: dict[str, np.ndarray] = {}
        for name in names:
            if name in self.parts:
                # d/dlog e of max + γ·min: the part of the component where compute is the max, and all of it
                # in the min's γ·(all − max) share, scale by −1
                x0, x1 = self.parts[name]
                eff = p[name]
                on_top = _series(x0 / eff, x1 / eff, a_start, a_count)
                whole = _series(x0 / eff, x1 / eff, zero, self.steps)
                partials[name] = -((1 - gamma) * on_top + gamma * whole)
            elif name == "bandwidth_efficiency":
                partials[name] = -((1 - gamma) * memory + gamma * m_all)
            elif name == "overlap_penalty":
                partials[name] = gamma * lesser
            elif name == "allreduce_efficiency":
                partials[name] = -comm
            elif name in fixed_terms:
                partials[name] = fixed_terms[name]
        ttft, tpot = self._per_row(total)
        return ttft, tpot, partials, total

    def _per_row(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.rows)
        return (
            np.bincount(self.index, values * self.ttft_w, n) / self.ttft_norm,
            np.bincount(self.index, values * self.tpot_w, n) / self.tpot_norm,
        )

    def predict_with_gradient(
        self, p: dict[str, float], names: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean TTFT and TPOT (s) per row, and their derivatives in log p[name] for each of ``names``."""
        steps, tpot, partials, _ = self._steps(p, names)
        ttft = steps + self._overhead(p)
        n = len(self.rows)
        d_ttft = np.zeros((n, len(names)))
        d_tpot = np.zeros((n, len(names)))
        frontend = {
            "request_overhead_s": np.full(n, p["request_overhead_s"]),
            "prompt_overhead_s_per_token": p["prompt_overhead_s_per_token"] * self.prompt_mean,
            "client_prompt_overhead_s_per_token": p["client_prompt_overhead_s_per_token"]
            * self.clients
            * self.prompt_mean,
            "client_overhead_s_per_client": p["client_overhead_s_per_client"] * self.clients,
        }
        for j, name in enumerate(names):
            if name in frontend:
                d_ttft[:, j] = frontend[name]
            else:
                d_ttft[:, j], d_tpot[:, j] = self._per_row(partials[name])
        return ttft, tpot, d_ttft, d_tpot
