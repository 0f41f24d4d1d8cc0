"""Per-model correction of the step model, learned from the model's measured rows on other systems.

Why: the step model's efficiencies are fitted per (GPU, backend, precision), shared by every model on that
configuration, yet kernels do not run every architecture equally well (a dense 8B prefill, MLA attention, a
256-expert MoE), and the engines' frontends cost more for some models than others (tokenisers, chat templates).
Held-out analysis showed such model-level biases of up to ~2x that no per-GPU parameter can absorb. Measuring a
model on one system tells how the model deviates from the shared fit on another, so the deviation is carried over.

The correction has two factors, each with a physical place in the step model, so that every prediction path
applies it the same way (``build_step_model`` folds it into the coefficients; ``predict``, ``plan``'s capacity
search, the scheduler and the live simulator all read those):

    s  (step-time factor)  every engine step of the model lasts s times the roofline step
    p  (prefill factor)    a step that carries prompt tokens lasts p times that again, and the per-request and
                           per-prompt-token frontend overheads scale by p: the model's prefill path (prefill
                           kernels, tokeniser, chat template) runs p times slower than the shared fit says

so a row's mean TTFT becomes s·(S_d + p·S_p) + p·O and its TPOT s·(T_d + p·T_p), with S_d/S_p the decode-only
and prompt-carrying steps a request waits for before its first token, O the frontend overhead, T_d/T_p the same
steps' shares of TPOT. s = exp(median log(measured / predicted TPOT)); then p solves median log(measured /
predicted TTFT) = 0 at that s (bisection: the median is monotone in p, bounded to [1/20, 20]); refitting s at the
found p (an alternation) predicted held-out TPOT worse, 16.8 % against 16.4 % median APE. Each is then shrunk,
(n · log f + K · log f₀) / (n + K), with K pseudo-rows of a prior f₀, so few rows move it little; the median resists
outlier rows. Factors are fitted per model over all its rows (prior f₀ = 1, no correction) and per (model,
backend), whose prior is the model's factor: a backend with few rows of the model stays near what the model's other
rows say rather than near no correction (held out: TTFT 30.4 → 30.1 %, p90 96.3 → 94.1 %; TPOT 15.36 → 15.40 %,
p90 46.3 → 44.2 %; gpt-oss's 5 TensorRT-LLM H100 rows no longer set that backend's factor for its B200 rows
almost alone). Lookups take (model, backend), else the model's; models without rows get none.
Cross-validation fits these factors only from the training rows, so
a held-out (model, system) group never sees its own measurements.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SHRINK_ROWS_PREFILL",
    "SHRINK_ROWS_STEP",
    "CorrectionParts",
    "ModelCorrection",
    "fit_corrections",
    "fit_one",
    "lookup_correction",
]

SHRINK_ROWS_STEP = 40.0
"""Pseudo-rows of 'no correction' the step-time factor is averaged with (held-out error: 20, 40, 60, 80, 100 and
no factor at all tried; 40–100 tie on TPOT, 20 is worse)."""
SHRINK_ROWS_PREFILL = 20.0
"""The same for the prefill factor (held-out TTFT median: 5 → 31.5 %, 10 → 30.2 %, 20 → 29.6 %, 40 → 31.1 %)."""
_PREFILL_BOUNDS = (1.0 / 20.0, 20.0)


@dataclass(frozen=True, slots=True)
class CorrectionParts:
    """Uncorrected predicted parts of each row's mean TTFT and TPOT (one unit throughout): the decode-only and
    the prompt-carrying steps' shares of TTFT, the frontend overhead, and the two kinds of steps' shares of TPOT."""

    ttft_decode: np.ndarray
    ttft_prefill: np.ndarray
    overhead: np.ndarray
    tpot_decode: np.ndarray
    tpot_prefill: np.ndarray

    def ttft(self, s: np.ndarray | float, p: np.ndarray | float) -> np.ndarray:
        total: np.ndarray = s * (self.ttft_decode + p * self.ttft_prefill) + p * self.overhead
        return total

    def tpot(self, s: np.ndarray | float, p: np.ndarray | float) -> np.ndarray:
        total: np.ndarray = s * (self.tpot_decode + p * self.tpot_prefill)
        return total

    def take(self, ix: np.ndarray) -> CorrectionParts:
        return CorrectionParts(
            self.ttft_decode[ix],
            self.ttft_prefill[ix],
            self.overhead[ix],
            self.tpot_decode[ix],
            self.tpot_prefill[ix],
        )


@dataclass(frozen=True, slots=True)
class ModelCorrection:
    """A model's step-time and prefill factors, and how many rows support them."""

    step_time_factor: float
    prefill_factor: float
    rows: int

    def to_json(self, key: tuple[str, ...]) -> dict[str, Any]:
        return {
            "model": key[0],
            "backend": key[1] if len(key) > 1 else None,
            "rows": self.rows,
            "step_time_factor": float(f"{self.step_time_factor:.6g}"),
            "prefill_factor": float(f"{self.prefill_factor:.6g}"),
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> ModelCorrection:
        return cls(float(item["step_time_factor"]), float(item["prefill_factor"]), int(item["rows"]))


def _shrink(log_factor: float, n: int, shrink_rows: float, prior: float = 1.0) -> float:
    """exp of the log factor averaged with ``shrink_rows`` pseudo-rows of ``prior``."""
    return math.exp((log_factor * n + math.log(prior) * shrink_rows) / (n + shrink_rows))


def _solve_prefill(measured_ttft: np.ndarray, parts: CorrectionParts, s: float) -> float:
    """The p (unshrunk) whose median log(measured / predicted TTFT) is 0 at step factor ``s``, within bounds."""
    low, high = math.log(_PREFILL_BOUNDS[0]), math.log(_PREFILL_BOUNDS[1])

    def median_residual(log_p: float) -> float:
        return float(np.median(np.log(measured_ttft / parts.ttft(s, math.exp(log_p)))))

    if median_residual(low) <= 0.0:
        return _PREFILL_BOUNDS[0]
    if median_residual(high) >= 0.0:
        return _PREFILL_BOUNDS[1]
    for _ in range(40):
        mid = (low + high) / 2.0
        if median_residual(mid) > 0.0:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2.0)


def fit_one(
    measured_ttft: np.ndarray,
    measured_tpot: np.ndarray,
    parts: CorrectionParts,
    prior: ModelCorrection | None = None,
) -> ModelCorrection:
    """One model's factors from its rows (the module docstring's alternation), shrunk toward ``prior`` (the
    model's factors over all backends, for a (model, backend) fit) or toward no correction."""
    n = len(measured_ttft)
    s = math.exp(float(np.median(np.log(measured_tpot / parts.tpot(1.0, 1.0)))))
    p = _solve_prefill(measured_ttft, parts, s)
    prior_s, prior_p = (prior.step_time_factor, prior.prefill_factor) if prior else (1.0, 1.0)
    return ModelCorrection(
        _shrink(math.log(s), n, SHRINK_ROWS_STEP, prior_s),
        _shrink(math.log(p), n, SHRINK_ROWS_PREFILL, prior_p),
        n,
    )


def fit_corrections(
    models: Sequence[str],
    backends: Sequence[str],
    measured_ttft: np.ndarray,
    measured_tpot: np.ndarray,
    parts: CorrectionParts,
) -> dict[tuple[str, ...], ModelCorrection]:
    """Factors per (model,) and (model, backend) from the rows' measurements and uncorrected predicted parts."""
    rows: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, (model, backend) in enumerate(zip(models, backends, strict=True)):
        rows[(model,)].append(i)
        rows[(model, backend)].append(i)
    out: dict[tuple[str, ...], ModelCorrection] = {}
    for key, indices in sorted(rows.items(), key=lambda item: (len(item[0]), item[0])):  # (model,) first
        ix = np.array(indices)
        prior = out.get(key[:1]) if len(key) > 1 else None
        out[key] = fit_one(measured_ttft[ix], measured_tpot[ix], parts.take(ix), prior)
    return out


def lookup_correction(
    corrections: dict[tuple[str, ...], ModelCorrection], model: str, backend: str
) -> ModelCorrection | None:
    """The (model, backend) factors, else the model's over all backends, else None (no rows of the model)."""
    return corrections.get((model, backend)) or corrections.get((model,))
