"""Owned hardware: what a GPU you bought costs per hour it exists, whether it serves or idles.

    amortisation_per_gpu_hour = purchase_usd / (amortize_months × 730)
    power_per_gpu_hour        = tdp_w / 1000 × utilization × pue × usd_per_kwh
    overhead_per_gpu_hour     = ops_overhead × amortisation_per_gpu_hour
    usd_per_gpu_hour          = the sum;   usd_per_month = gpus × usd_per_gpu_hour × 730

``utilization`` is the average power draw as a share of TDP; ``pue`` (power usage effectiveness) scales IT power to
facility power; ``ops_overhead`` stands for the host server around the GPUs (CPUs, RAM, chassis, NICs), the network,
rack space and the people who run it, as a share of the GPU amortisation. Owned GPUs are counted one by one
(replicas × tp), not in whole servers: the host share of the overhead covers the server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewise.catalog import Accelerator
from servewise.errors import UsageError

from ._rental import HOURS_PER_MONTH, LineItem

__all__ = ["OWNED_SOURCES", "OwnedCost", "OwnedTerms", "owned_cost"]

OWNED_SOURCES = {
    "amortize_months": "assumption: 36 months straight-line (a common depreciation period for servers)",
    "utilization": "assumption: average draw 70% of TDP while serving",
    "pue": (
        "Uptime Institute industry average PUE 1.58 (2023), "
        "https://intelligence.uptimeinstitute.com/resource/large-data-centers-are-mostly-more-efficient-analysis-confirms"
    ),
    "usd_per_kwh": (
        "assumption: $0.12/kWh, about the median US state average retail price (EIA Electricity Monthly Update, "
        "median state 11.2-11.9 cents/kWh in 2024 releases), https://www.eia.gov/electricity/monthly/update/end-use.php"
    ),
    "ops_overhead": (
        "assumption: +40% of the GPU amortisation for host server, network, rack space and operations"
    ),
}
"""Where each default of ``OwnedTerms`` comes from, printed next to it."""


@dataclass(frozen=True, slots=True)
class OwnedTerms:
    amortize_months: float = 36.0
    utilization: float = 0.70
    pue: float = 1.58
    usd_per_kwh: float = 0.12
    ops_overhead: float = 0.40

    def __post_init__(self) -> None:
        positive = (("--amortize-months", self.amortize_months), ("--pue", self.pue))
        for flag, value in positive:
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"{flag} must be > 0 (got {value:g})")
        if self.pue < 1:
            raise UsageError(f"--pue must be ≥ 1: facility power includes the IT power (got {self.pue:g})")
        if not 0 < self.utilization <= 1:
            raise UsageError(f"--utilization must be in (0, 1], a share of TDP (got {self.utilization:g})")
        for flag, value in (("--usd-per-kwh", self.usd_per_kwh), ("--ops-overhead", self.ops_overhead)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{flag} must be ≥ 0 (got {value:g})")


@dataclass(frozen=True, slots=True)
class OwnedCost:
    """Owned GPUs for a deployment; ``price_source`` says where the purchase price comes from (GUESS or a flag)."""

    gpu: str
    gpus: int
    purchase_usd_per_gpu: float
    price_is_guess: bool
    price_source: str
    usd_per_gpu_hour: float
    usd_per_hour: float
    usd_per_month: float
    capex_usd: float
    line_items: tuple[LineItem, ...]


def owned_cost(
    gpu: Accelerator, gpus: int, terms: OwnedTerms, *, purchase_usd: float | None = None
) -> OwnedCost | None:
    """The hourly and monthly cost of owning ``gpus`` of ``gpu``; None when no purchase price or TDP is known.

    ``purchase_usd`` overrides the catalog's ``list_price_usd``, which is always a rough guess."""
    if purchase_usd is not None and not (math.isfinite(purchase_usd) and purchase_usd > 0):
        raise UsageError(f"--purchase-price-usd must be > 0 (got {purchase_usd:g})")
    price = purchase_usd if purchase_usd is not None else gpu.list_price_usd
    if price is None or gpu.tdp_w is None:
        return None
    guess = purchase_usd is None
    source = (
        f"GUESS: catalog list_price_usd of {gpu.name} (a rough street price; source {gpu.source})"
        if guess
        else "--purchase-price-usd"
    )
    amortisation = price / (terms.amortize_months * HOURS_PER_MONTH)
    power = gpu.tdp_w / 1000.0 * terms.utilization * terms.pue * terms.usd_per_kwh
    overhead = terms.ops_overhead * amortisation
    per_gpu = amortisation + power + overhead
    items = (
        LineItem(
            "purchase amortisation",
            gpus * amortisation,
            f"{gpus} x ${price:,.0f} / ({terms.amortize_months:g} months x 730 h); price {source}",
        ),
        LineItem(
            "power",
            gpus * power,
            f"{gpus} x {gpu.tdp_w:g} W TDP x {terms.utilization:g} utilisation x PUE {terms.pue:g} "
            f"x ${terms.usd_per_kwh:g}/kWh",
        ),
        LineItem(
            "host, network, ops",
            gpus * overhead,
            f"{terms.ops_overhead:.0%} of the amortisation ({OWNED_SOURCES['ops_overhead']})",
        ),
    )
    return OwnedCost(
        gpu=gpu.name,
        gpus=gpus,
        purchase_usd_per_gpu=price,
        price_is_guess=guess,
        price_source=source,
        usd_per_gpu_hour=per_gpu,
        usd_per_hour=gpus * per_gpu,
        usd_per_month=gpus * per_gpu * HOURS_PER_MONTH,
        capex_usd=gpus * price,
        line_items=items,
    )
