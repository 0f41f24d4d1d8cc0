"""Split a prompt-length distribution at a threshold: the share of requests on each side and each side's lengths.

Why: a mixed plan sends prompts up to ``t`` tokens to a bulk pool and the rest elsewhere, so it needs P(X ≤ t) and
the conditional (truncated) distribution of each side to size each pool. With ``Y`` the uncapped length and
``X = min(Y, c)`` the length capped at ``max_tokens = c`` (c = ∞ without a cap):

    F_X(t) = F_Y(t) for t < c, 1 for t ≥ c
    lognormal:   σ² = ln(1 + cv²), μ = ln(mean) − σ²/2,  F_Y(t) = Φ((ln t − μ) / σ)
                 M_k(t) = E[Y^k; Y ≤ t] = exp(kμ + k²σ²/2) · Φ((ln t − μ − kσ²) / σ)
    exponential: F_Y(t) = 1 − e^(−t/m),  M_1(t) = m − (t + m)·e^(−t/m),  M_2(t) = 2m² − (t² + 2mt + 2m²)·e^(−t/m)
    fixed:       F_Y(t) = 1 if mean ≤ t else 0,  M_k(t) = mean^k · F_Y(t)
    capped:      E[X^k; X ≤ t] = M_k(t) for t < c;  E[X^k] = M_k(c) + c^k · (1 − F_Y(c))

Each side's conditional mean is E[X; side] / P(side) and its cv comes from the second moment the same way. A side is
then described to the planner as a lognormal with that mean and cv (moment matching; the bulk side capped at ``t``):
an approximation, printed as an assumption, because ``LengthDistribution`` has no truncated kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from servewise.workload import LengthDistribution

__all__ = [
    "LengthSplit",
    "length_cdf",
    "partial_moment",
    "side_length",
    "split_lengths",
    "threshold_for_share",
]

_MAX_CV = 10.0
"""``LengthDistribution`` accepts cv ≤ 10."""
_MIN_CV = 1e-6
"""Below this a side is a constant length (``kind: fixed``)."""


def _lognormal(dist: LengthDistribution) -> tuple[float, float]:
    sigma = math.sqrt(math.log1p(dist.cv**2))
    return math.log(dist.mean) - sigma**2 / 2, sigma


def _uncapped_cdf(dist: LengthDistribution, t: float) -> float:
    if t <= 0:
        return 0.0
    if dist.kind == "fixed":
        return 1.0 if dist.mean <= t else 0.0
    if dist.kind == "exponential":
        return -math.expm1(-t / dist.mean)
    mu, sigma = _lognormal(dist)
    return NormalDist().cdf((math.log(t) - mu) / sigma)


def _uncapped_partial(dist: LengthDistribution, t: float, k: int) -> float:
    """M_k(t) = E[Y^k; Y ≤ t] of the uncapped length, for k = 1 or 2."""
    if t <= 0:
        return 0.0
    if dist.kind == "fixed":
        return dist.mean**k * _uncapped_cdf(dist, t)
    if dist.kind == "exponential":
        m = dist.mean
        decay = 0.0 if math.isinf(t) else math.exp(-t / m)
        if k == 1:
            return m - (0.0 if math.isinf(t) else (t + m) * decay)
        return 2 * m * m - (0.0 if math.isinf(t) else (t * t + 2 * m * t + 2 * m * m) * decay)
    mu, sigma = _lognormal(dist)
    total = math.exp(k * mu + k * k * sigma * sigma / 2)
    if math.isinf(t):
        return total
    return total * NormalDist().cdf((math.log(t) - mu - k * sigma * sigma) / sigma)


def length_cdf(dist: LengthDistribution, t: float) -> float:
    """P(length ≤ t) for the capped length."""
    cap = dist.max_tokens
    if cap is not None and t >= cap:
        return 1.0
    return _uncapped_cdf(dist, t)


def partial_moment(dist: LengthDistribution, t: float, k: int) -> float:
    """E[X^k; X ≤ t] for the capped length X = min(Y, max_tokens); ``t = inf`` gives E[X^k]."""
    cap = dist.max_tokens
    if cap is None or t < cap:
        return _uncapped_partial(dist, t, k)
    return _uncapped_partial(dist, cap, k) + float(cap) ** k * (1.0 - _uncapped_cdf(dist, cap))


def threshold_for_share(dist: LengthDistribution, share: float) -> int:
    """The smallest whole number of tokens t with P(X ≤ t) ≥ ``share`` (rounded up, so at least that share stays
    below); ``share = 1`` gives the longest prompt (the cap), or the p99.99 length without a cap."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if share == 1:
        return math.ceil(dist.max_tokens if dist.max_tokens is not None else dist.quantile(0.9999))
    return max(1, math.ceil(dist.quantile(share)))


@dataclass(frozen=True, slots=True)
class LengthSplit:
    """One distribution cut at ``threshold_tokens``: below means ≤ threshold."""

    threshold_tokens: int
    share_below: float
    mean_below_tokens: float
    cv_below: float
    mean_above_tokens: float
    cv_above: float

    @property
    def share_above(self) -> float:
        return 1.0 - self.share_below


def _side(first: float, second: float, share: float) -> tuple[float, float]:
    if share <= 0:
        return 0.0, 0.0
    mean = first / share
    if mean <= 0:
        return 0.0, 0.0
    variance = max(second / share - mean * mean, 0.0)
    return mean, math.sqrt(variance) / mean


def split_lengths(dist: LengthDistribution, threshold_tokens: int) -> LengthSplit:
    """Share, mean and cv of each side of ``threshold_tokens``."""
    if threshold_tokens <= 0:
        raise ValueError(f"threshold must be > 0 tokens, got {threshold_tokens}")
    below = length_cdf(dist, threshold_tokens)
    first_below = partial_moment(dist, threshold_tokens, 1)
    second_below = partial_moment(dist, threshold_tokens, 2)
    first_above = partial_moment(dist, math.inf, 1) - first_below
    second_above = partial_moment(dist, math.inf, 2) - second_below
    mean_below, cv_below = _side(first_below, second_below, below)
    mean_above, cv_above = _side(first_above, second_above, 1.0 - below)
    return LengthSplit(threshold_tokens, below, mean_below, cv_below, mean_above, cv_above)


def side_length(mean_tokens: float, cv: float, max_tokens: int | None) -> LengthDistribution:
    """A side of a split as the planner's length type: lognormal with the side's mean and cv (fixed when cv ≈ 0),
    capped at ``max_tokens``."""
    cap = None if max_tokens is None else max(max_tokens, math.ceil(mean_tokens))
    if cv < _MIN_CV:
        return LengthDistribution(mean=mean_tokens, kind="fixed", max_tokens=cap)
    return LengthDistribution(mean=mean_tokens, kind="lognormal", cv=min(cv, _MAX_CV), max_tokens=cap)
