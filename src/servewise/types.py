"""Shared vocabulary of every room: small enums that travel in contracts and JSON.

Why here and not in one room: ``workload`` names precisions and priorities without knowing about GPUs, ``perf`` and
``cost`` use the same names, and the JSON documents spell them identically.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Precision", "PricingMode", "Priority", "Provenance"]


class Precision(StrEnum):
    """Weight precision of a deployment (activations follow the engine's kernel for that format).

    ``bf16`` in a workload's constraints means "16-bit weights": on GPUs without bf16 (T4, V100) the plan serves
    them as ``fp16``, as vLLM's ``--dtype auto`` does."""

    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int4 = "int4"
    fp4 = "fp4"


class Provenance(StrEnum):
    """Where a prediction comes from, best first: ``measured`` rows, ``calibrated`` fit, ``analytical`` model."""

    measured = "measured"
    calibrated = "calibrated"
    analytical = "analytical"


class PricingMode(StrEnum):
    """How rented GPUs are paid for: list price, spot, or a 1-/3-year commitment (a discount off on-demand; the
    discounts and the spot terms live in ``cost.PricingTerms``)."""

    on_demand = "on-demand"
    spot = "spot"
    reserved_1y = "reserved-1y"
    reserved_3y = "reserved-3y"


class Priority(StrEnum):
    """How the planner ranks options that meet every constraint."""

    cost = "cost"
    latency = "latency"
    balanced = "balanced"
