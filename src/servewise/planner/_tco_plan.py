"""Total cost of ownership of a plan's best GPU option: the bridge from a ``Plan`` to ``cost.tco_report``.

Why it takes a plan, not a workload: ``servewise tco`` plans first and the REST API prices a plan document the
client already has; both then price the same option the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from servewise.catalog import ApiPrice, CatalogSnapshot
from servewise.cost import Deployment, OwnedTerms, PricingTerms, TcoReport, allowed_offers, tco_report
from servewise.errors import UsageError
from servewise.types import PricingMode

from ._plan import Plan
from ._rank import require_feasible

__all__ = ["plan_tco"]


def plan_tco(
    plan: Plan,
    snapshot: CatalogSnapshot,
    *,
    apis: Sequence[ApiPrice] = (),
    terms: PricingTerms | None = None,
    owned_terms: OwnedTerms | None = None,
    purchase_usd: float | None = None,
    cached_share: float | None = None,
) -> TcoReport:
    """Price the plan's best GPU option rented (every mode), owned and against ``apis``.

    TCO compares ways to pay for GPUs (owning one needs a GPU purchase price), so it prices the best GPU option
    even when a CPU instance ranks first for a tiny load. ``cached_share`` defaults to the workload's prefix share.
    Raises ``InfeasibleError`` for a plan without options, ``UsageError`` when only CPU options exist."""
    require_feasible(plan)
    option = next((o for o in plan.options if o.candidate.cpu is None), None)
    if option is None:
        raise UsageError(
            "tco prices GPU deployments, and only CPU options meet this workload: compare CPU instances with "
            "`servewise plan`, or relax what rules the GPUs out (budget, SLO, --gpu/--provider constraints)"
        )
    workload = plan.workload
    c = option.candidate
    gpu = next((g for g in snapshot.accelerators if g.name == c.gpu), None)
    if gpu is None:
        raise UsageError(
            f"the plan's GPU {c.gpu!r} is not in this catalog; re-plan against this catalog "
            "(`servewise plan ... -o plan.json`)"
        )
    traffic = workload.traffic
    deployment = Deployment(
        model=c.model,
        gpu=gpu,
        tp=c.tp,
        replicas=option.replicas,
        max_qps_per_replica=option.perf.max_qps_per_replica,
        avg_qps=traffic.avg_qps,
        peak_qps=traffic.peak_qps,
        prompt_tokens=traffic.prompt_tokens.mean,
        output_tokens=traffic.output_tokens.mean,
    )
    offers = allowed_offers(
        snapshot.offers, c.gpu, pricing=PricingMode.on_demand, providers=workload.constraints.providers
    )
    return tco_report(
        deployment,
        offers,
        apis,
        terms=terms or PricingTerms(),
        owned_terms=owned_terms or OwnedTerms(),
        purchase_usd=purchase_usd,
        cached_share=traffic.prefix_share if cached_share is None else cached_share,
    )
