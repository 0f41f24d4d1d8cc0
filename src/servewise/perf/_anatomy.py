"""Where a prediction error comes from: a scale that is wrong for a whole group, or a shape that is wrong within it.

Why: a median APE alone does not say what would lower it. Held out, a (model, backend, system, precision) group can
be off by one factor on every row (its kernels, its engine version, its benchmark harness run faster or slower than
the fit carried over from other groups say) or right on average but wrong in how latency moves with load and
lengths. The two call for different work: the first for transfer between groups (better priors, more groups
measured), the second for the step model and the scheduler. So the accuracy report splits the error:

    group bias b_g       = median over the group's rows of log(predicted / measured)
    within-group error   = |predicted · exp(−b_g) / measured − 1| · 100, per row

The within-group error is an oracle figure, not a prediction: it divides each group by a bias read off that group's
own measurements. It is the error a predictor would still have if it got every group's scale exactly right, a floor
for any method whose only improvement is the scale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ErrorAnatomy", "error_anatomy"]


@dataclass(frozen=True, slots=True)
class ErrorAnatomy:
    """One metric's error, split (see the module docstring); percentages."""

    rows: int
    groups: int
    median_ape: float
    group_bias_median_pct: float
    """Median over groups of |exp(b_g) − 1| · 100: how far a typical group's scale is off."""
    within_group_median_ape: float
    """Median over rows of the APE left once each row's group bias is divided out (an oracle floor)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "groups": self.groups,
            "median_ape": round(self.median_ape, 2),
            "group_bias_median_pct": round(self.group_bias_median_pct, 2),
            "within_group_median_ape": round(self.within_group_median_ape, 2),
        }


def error_anatomy(
    measured: Sequence[float], predicted: Sequence[float], groups: Sequence[Hashable]
) -> ErrorAnatomy | None:
    """The split of ``predicted`` against ``measured`` by ``groups`` (one key per row); rows where either value is
    missing or not positive are left out, and None comes back when none is left."""
    m = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    keep = np.isfinite(m) & np.isfinite(p) & (m > 0) & (p > 0)
    if not keep.any():
        return None
    log_ratio = np.log(p[keep] / m[keep])
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(g for g, k in zip(groups, keep, strict=True) if k):
        members[key].append(i)
    bias = np.empty_like(log_ratio)
    group_bias = []
    for indices in members.values():
        b = float(np.median(log_ratio[indices]))
        bias[indices] = b
        group_bias.append(abs(np.expm1(b)) * 100.0)
    return ErrorAnatomy(
        rows=int(keep.sum()),
        groups=len(members),
        median_ape=float(np.median(np.abs(np.expm1(log_ratio)))) * 100.0,
        group_bias_median_pct=float(np.median(group_bias)),
        within_group_median_ape=float(np.median(np.abs(np.expm1(log_ratio - bias)))) * 100.0,
    )
