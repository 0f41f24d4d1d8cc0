"""LLM-as-judge evaluation cost: what scoring production outputs with a judge model costs per month, stage by stage.

Notation (all per month): N evals produced, s the sampling rate (share of evals judged at all), h the judgement-cache
hit rate, r / c / e the shares of the remaining evals settled by rules (free), the cheap judge and the expensive judge
(r + c + e = 1), I and O the judge's input and output tokens per call, p the share of input tokens billed at the
cached-input price (a shared rubric prefix), P_in / P_cached / P_out the judge's prices in USD per 1M tokens.

    cost of one call     C = (I × ((1 − p) × P_in + p × P_cached) + O × P_out) / 10⁶
    evals that reach a judge  J = N × s × (1 − h)
    route cascade:       cheap calls = J × c,        expensive calls = J × e
    escalate cascade:    cheap calls = J × (c + e),  expensive calls = J × e
    usd_per_month = cheap calls × C_cheap + expensive calls × C_expensive

Two caches, deliberately kept apart because they save different things:

* the **judgement cache** (h): an eval whose (input, output, rubric) was judged before reuses the stored verdict, so
  no judge call happens and it costs nothing;
* **prompt caching** (p): the provider bills cached input tokens at its cached-input price. Where the catalog has no
  cached price for the judge, cached tokens are billed at the full input price — no discount is assumed, and the
  result says so.

``escalate`` (the default) is a cascade in the usual sense: the cheap judge sees every eval the rules did not settle
and hands the ones it is unsure of to the expensive judge, so an escalated eval pays for both calls. ``route`` is a
router that sends each eval to exactly one judge. The savings waterfall applies sampling, then the judgement cache,
then the cascade, then prompt caching, starting from "every eval, expensive judge, no cache"; the order changes how
the saving is attributed between steps, never the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from servewise.errors import UsageError

__all__ = [
    "CascadeMode",
    "EvalCost",
    "EvalCostInputs",
    "JudgePrice",
    "SavingStep",
    "StageCost",
    "eval_cost",
]

TOKENS_PER_PRICE_UNIT = 1e6
"""Prices are quoted in USD per 1M tokens."""


class CascadeMode(StrEnum):
    escalate = "escalate"
    route = "route"


@dataclass(frozen=True, slots=True)
class JudgePrice:
    """A judge model's token prices (USD per 1M tokens) and where they come from."""

    name: str
    input_usd_per_1m: float
    output_usd_per_1m: float
    cached_input_usd_per_1m: float | None
    source: str
    as_of: date | None = None

    def call_usd(self, input_tokens: float, output_tokens: float, prompt_cache_share: float = 0.0) -> float:
        """Dollars for one call; cached input falls back to the full input price when none is known."""
        cached = (
            self.input_usd_per_1m if self.cached_input_usd_per_1m is None else self.cached_input_usd_per_1m
        )
        input_usd = input_tokens * (
            (1 - prompt_cache_share) * self.input_usd_per_1m + prompt_cache_share * cached
        )
        return (input_usd + output_tokens * self.output_usd_per_1m) / TOKENS_PER_PRICE_UNIT


@dataclass(frozen=True, slots=True)
class EvalCostInputs:
    """Everything the cost depends on; rates and shares are fractions in [0, 1]."""

    evals_per_month: float
    input_tokens: float
    """Judge prompt per call: rubric + the output under review (+ its input), tokens."""
    output_tokens: float
    """Judge verdict per call, tokens."""
    judge: JudgePrice
    """The expensive (or only) judge."""
    cheap_judge: JudgePrice | None = None
    sampling_rate: float = 1.0
    rules_share: float = 0.0
    cheap_share: float = 0.0
    cascade: CascadeMode = CascadeMode.escalate
    judgement_cache_hit_rate: float = 0.0
    prompt_cache_share: float = 0.0

    @property
    def expensive_share(self) -> float:
        return max(0.0, 1.0 - self.rules_share - self.cheap_share)


@dataclass(frozen=True, slots=True)
class StageCost:
    """One stage of the pipeline: evals it settles, judge calls it makes, what they cost."""

    stage: str
    judge: str | None
    evals_per_month: float
    calls_per_month: float
    usd_per_call: float
    usd_per_month: float


@dataclass(frozen=True, slots=True)
class SavingStep:
    step: str
    usd_per_month_before: float
    usd_per_month_after: float

    @property
    def saved_usd_per_month(self) -> float:
        return self.usd_per_month_before - self.usd_per_month_after

    @property
    def saved_pct(self) -> float:
        before = self.usd_per_month_before
        return 0.0 if before <= 0 else 100.0 * self.saved_usd_per_month / before


@dataclass(frozen=True, slots=True)
class EvalCost:
    inputs: EvalCostInputs
    stages: tuple[StageCost, ...]
    """not sampled, judgement cache, rules, cheap judge (when configured), expensive judge."""
    waterfall: tuple[SavingStep, ...]
    """sampling, judgement cache, cascade, prompt caching — from ``baseline_usd_per_month`` to the total."""
    baseline_usd_per_month: float
    """Every eval judged by the expensive judge, no cache of any kind."""
    usd_per_month: float
    usd_per_eval: float
    """Over every eval produced, judged or not."""
    usd_per_judged_eval: float
    """Over the evals sampled for judging (cache hits and rules included)."""
    assumptions: tuple[str, ...]


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise UsageError(f"{name}: must be a fraction between 0 and 1 (got {value:g}); e.g. 0.1 for 10 %")


def _check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise UsageError(f"{name}: must be a finite number ≥ 0 (got {value:g})")


def _validate(inputs: EvalCostInputs) -> None:
    for name in ("evals_per_month", "input_tokens", "output_tokens"):
        _check_non_negative(name, getattr(inputs, name))
    for judge in (inputs.judge, inputs.cheap_judge):
        if judge is None:
            continue
        for field in ("input_usd_per_1m", "output_usd_per_1m", "cached_input_usd_per_1m"):
            value = getattr(judge, field)
            if value is not None:
                _check_non_negative(f"{field} of {judge.name}", value)
    for name in (
        "sampling_rate",
        "rules_share",
        "cheap_share",
        "judgement_cache_hit_rate",
        "prompt_cache_share",
    ):
        _check_fraction(name, getattr(inputs, name))
    if inputs.rules_share + inputs.cheap_share > 1.0 + 1e-9:
        raise UsageError(
            f"rules_share + cheap_share: must not exceed 1 (got {inputs.rules_share:g} + {inputs.cheap_share:g}); "
            "the expensive judge settles the rest"
        )
    if inputs.cheap_share > 0 and inputs.cheap_judge is None:
        raise UsageError("cheap_share: a cheap-judge share needs a cheap judge; name one or give its prices")


def _calls_per_judged_eval(inputs: EvalCostInputs) -> tuple[float, float]:
    """(cheap calls, expensive calls) per eval that reaches the judges."""
    expensive = inputs.expensive_share
    if inputs.cheap_judge is None:
        return 0.0, expensive
    if inputs.cascade is CascadeMode.escalate:
        return inputs.cheap_share + expensive, expensive
    return inputs.cheap_share, expensive


def eval_cost(inputs: EvalCostInputs) -> EvalCost:
    """Monthly cost of judging ``inputs.evals_per_month`` evals, per stage, with the savings of each lever."""
    _validate(inputs)
    n, tokens_in, tokens_out = inputs.evals_per_month, inputs.input_tokens, inputs.output_tokens
    judged = n * inputs.sampling_rate
    reaching = judged * (1 - inputs.judgement_cache_hit_rate)
    p = inputs.prompt_cache_share
    expensive_call = inputs.judge.call_usd(tokens_in, tokens_out, p)
    cheap = inputs.cheap_judge
    cheap_call = cheap.call_usd(tokens_in, tokens_out, p) if cheap is not None else 0.0
    cheap_calls, expensive_calls = (reaching * k for k in _calls_per_judged_eval(inputs))

    stages = [
        StageCost("not sampled", None, n - judged, 0.0, 0.0, 0.0),
        StageCost("judgement cache", None, judged - reaching, 0.0, 0.0, 0.0),
        StageCost("rules", None, reaching * inputs.rules_share, 0.0, 0.0, 0.0),
    ]
    if cheap is not None:
        stages.append(
            StageCost(
                "cheap judge",
                cheap.name,
                reaching * inputs.cheap_share,
                cheap_calls,
                cheap_call,
                cheap_calls * cheap_call,
            )
        )
    stages.append(
        StageCost(
            "expensive judge",
            inputs.judge.name,
            reaching * inputs.expensive_share,
            expensive_calls,
            expensive_call,
            expensive_calls * expensive_call,
        )
    )
    total = sum(s.usd_per_month for s in stages)

    full_expensive = inputs.judge.call_usd(tokens_in, tokens_out)
    full_cheap = cheap.call_usd(tokens_in, tokens_out) if cheap is not None else 0.0
    baseline = n * full_expensive
    after_sampling = judged * full_expensive
    after_cache = reaching * full_expensive
    after_cascade = cheap_calls * full_cheap + expensive_calls * full_expensive
    waterfall = (
        SavingStep("sampling", baseline, after_sampling),
        SavingStep("judgement cache", after_sampling, after_cache),
        SavingStep("cascade", after_cache, after_cascade),
        SavingStep("prompt caching", after_cascade, total),
    )
    return EvalCost(
        inputs=inputs,
        stages=tuple(stages),
        waterfall=waterfall,
        baseline_usd_per_month=baseline,
        usd_per_month=total,
        usd_per_eval=total / n if n > 0 else 0.0,
        usd_per_judged_eval=total / judged if judged > 0 else 0.0,
        assumptions=tuple(_assumptions(inputs)),
    )


def _assumptions(inputs: EvalCostInputs) -> list[str]:
    notes = [
        "every judge call sends the same input/output token counts, whichever judge makes it",
        "rule-based checks and judgement-cache hits cost nothing (their compute is not counted)",
    ]
    if inputs.cheap_judge is not None:
        notes.append(
            "escalate cascade: escalated evals pay for the cheap and the expensive call"
            if inputs.cascade is CascadeMode.escalate
            else "route cascade: each eval is sent to exactly one judge (the router is free)"
        )
    if inputs.prompt_cache_share > 0:
        for judge in (inputs.judge, inputs.cheap_judge):
            if judge is not None and judge.cached_input_usd_per_1m is None:
                notes.append(
                    f"{judge.name}: no cached-input price known, cached tokens billed at the input price"
                )
    return notes
