"""Per-model correction of predicted TTFT and TPOT, learned from the model's measured rows on other systems.

Why: the step model's efficiencies are fitted per (GPU, backend, precision), shared by every model on that
configuration, yet kernels do not run every architecture equally well (a dense 8B prefill, MLA attention, a
256-expert MoE), and the engines' frontends cost more for some models than others. Held-out analysis showed such
model-level biases of up to ~2x on TTFT (Llama-3.1-70B) that no per-GPU parameter can absorb. Measuring a model on
one system tells how the model deviates from the shared fit on another, so the deviation is carried over as one
multiplicative factor for TTFT and one for TPOT.

The factor is exp(median r · n / (n + K)) with r = log(measured / predicted) over the model's n rows on the backend
(over all its rows when the backend has none): the median resists the outlier rows, and K pseudo-rows shrink the
factor toward 1 when few rows support it (K = 20 for TTFT, 40 for TPOT, whose model biases are smaller and
carry over between systems less well). Models without rows get none. Cross-validation fits these factors only
from the training rows, so a held-out (model, system) group never sees its own measurements.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SHRINK_ROWS_TPOT", "SHRINK_ROWS_TTFT", "ModelCorrection", "fit_corrections", "lookup_correction"]

SHRINK_ROWS_TTFT = 20.0
"""Pseudo-rows of 'no correction' the TTFT factor is averaged with (held-out error chose it: 5, 10, 20, 50 tried)."""
SHRINK_ROWS_TPOT = 40.0
"""The same for TPOT (20, 40, 60 tried; 40 cut the held-out TPOT p90 from 61 % to 57 % at an equal median)."""


@dataclass(frozen=True, slots=True)
class ModelCorrection:
    """Multiplicative factors on a model's predicted mean TTFT and TPOT, and how many rows support them."""

    ttft_factor: float
    tpot_factor: float
    rows: int

    def to_json(self, key: tuple[str, ...]) -> dict[str, Any]:
        return {
            "model": key[0],
            "backend": key[1] if len(key) > 1 else None,
            "rows": self.rows,
            "ttft_factor": float(f"{self.ttft_factor:.6g}"),
            "tpot_factor": float(f"{self.tpot_factor:.6g}"),
        }


def _shrunk_factor(log_ratios: np.ndarray, shrink_rows: float) -> float:
    n = len(log_ratios)
    return math.exp(float(np.median(log_ratios)) * n / (n + shrink_rows))


def fit_corrections(
    models: Sequence[str],
    backends: Sequence[str],
    ttft_log_ratio: np.ndarray,
    tpot_log_ratio: np.ndarray,
) -> dict[tuple[str, ...], ModelCorrection]:
    """Factors per (model,) and (model, backend) from each row's log(measured / predicted)."""
    rows: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, (model, backend) in enumerate(zip(models, backends, strict=True)):
        rows[(model,)].append(i)
        rows[(model, backend)].append(i)
    return {
        key: ModelCorrection(
            _shrunk_factor(ttft_log_ratio[indices], SHRINK_ROWS_TTFT),
            _shrunk_factor(tpot_log_ratio[indices], SHRINK_ROWS_TPOT),
            len(indices),
        )
        for key, indices in sorted(rows.items())
    }


def lookup_correction(
    corrections: dict[tuple[str, ...], ModelCorrection], model: str, backend: str
) -> ModelCorrection | None:
    """The (model, backend) factors, else the model's over all backends, else None (no rows of the model)."""
    return corrections.get((model, backend)) or corrections.get((model,))
