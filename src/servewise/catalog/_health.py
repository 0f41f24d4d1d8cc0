"""Catalog health: what is stale, undated, incomplete or unresolvable, computed from plain records.

Why grouped findings: 60 undated API prices are one fact about one source ("litellm gives no date"), not 60
lines; likewise unresolved benchmark names are reported once per name with their row count. ``error`` means
the planner cannot use the entry at all; ``warning`` means it can, with a caveat.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ._aliases import resolve_gpu, resolve_model
from ._records import Accelerator, Alias, ApiPrice, CatalogSnapshot, CloudOffer

__all__ = ["STALE_AFTER_DAYS", "Finding", "HealthReport", "check_health"]

STALE_AFTER_DAYS = 90
"""A price older than this is flagged (DESIGN.md: the catalog warns when a price is older than 90 days)."""

Severity = Literal["warning", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: ``kind`` is a stable machine word (``stale_price``, ``undated_price`` …)."""

    severity: Severity
    kind: str
    subject: str
    message: str


@dataclass(frozen=True, slots=True)
class HealthReport:
    """All findings, errors first; ``today`` is the date prices were aged against."""

    today: date
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """No findings at all."""
        return not self.findings


def _price_findings(label: str, prices: Iterable[CloudOffer | ApiPrice], today: date) -> list[Finding]:
    undated: dict[str, int] = defaultdict(int)
    stale: dict[str, list[date]] = defaultdict(list)
    for price in prices:
        if price.as_of is None:
            undated[price.provider] += 1
        elif (today - price.as_of).days > STALE_AFTER_DAYS:
            stale[price.provider].append(price.as_of)
    findings = [
        Finding(
            "warning",
            "undated_price",
            f"{label}/{provider}",
            f"{count} {label} row(s) from {provider} have no as_of date; their age is unknown (see source)",
        )
        for provider, count in sorted(undated.items())
    ]
    for provider, dates in sorted(stale.items()):
        oldest = min(dates)
        findings.append(
            Finding(
                "warning",
                "stale_price",
                f"{label}/{provider}",
                f"{len(dates)} {label} row(s) from {provider} are older than {STALE_AFTER_DAYS} days "
                f"(oldest as_of {oldest.isoformat()}, {(today - oldest).days} days); refresh them",
            )
        )
    return findings


def _accelerator_findings(accelerators: Sequence[Accelerator]) -> list[Finding]:
    findings = []
    for gpu in accelerators:
        missing = [name for name in ("memory_gb", "memory_bw_gbps") if not getattr(gpu, name)]
        if gpu.fp16_tflops is None and gpu.bf16_tflops is None:
            missing.append("fp16_tflops/bf16_tflops")
        if missing:
            findings.append(
                Finding(
                    "error",
                    "accelerator_missing_specs",
                    gpu.name,
                    f"accelerator {gpu.name} lacks {', '.join(missing)}; the planner cannot size it",
                )
            )
    return findings


def check_health(
    snapshot: CatalogSnapshot,
    aliases: Sequence[Alias],
    benchmark_names: Mapping[tuple[str, str], int],
    *,
    today: date,
) -> HealthReport:
    """Findings for ``snapshot``; ``benchmark_names``: (model, system) as benchmarks spell them → rows."""
    findings: list[Finding] = []
    findings += _price_findings("offers", snapshot.offers, today)
    findings += _price_findings("api-prices", snapshot.api_prices, today)
    findings += _accelerator_findings(snapshot.accelerators)
    for spec in snapshot.models:
        missing = [n for n in ("head_dim", "intermediate_size") if getattr(spec, n) is None]
        if missing:
            findings.append(
                Finding(
                    "warning",
                    "model_missing_specs",
                    spec.name,
                    f"model {spec.name} lacks {', '.join(missing)}"
                    + (" (MLA: expected, KV size comes from the latent)" if spec.is_mla else ""),
                )
            )
        if "sliding" in spec.attention and not spec.sliding_share:
            findings.append(
                Finding(
                    "warning",
                    "model_missing_window",
                    spec.name,
                    f"model {spec.name} has {spec.attention!r} attention but no sliding_window_tokens/"
                    "sliding_layers; its long-context KV reads and memory are over-estimated (every layer "
                    "counted as global)",
                )
            )
    known_gpus = {gpu.name for gpu in snapshot.accelerators}
    orphan_offers: dict[str, list[str]] = defaultdict(list)
    for offer in snapshot.offers:
        if offer.gpu is not None and resolve_gpu(offer.gpu, snapshot.accelerators, aliases) not in known_gpus:
            orphan_offers[offer.gpu].append(f"{offer.provider}/{offer.instance_type}")
    for gpu, offers in sorted(orphan_offers.items()):
        findings.append(
            Finding(
                "warning",
                "offer_unknown_gpu",
                gpu,
                f"{len(offers)} offer(s) use GPU {gpu!r}, which is not an accelerator in the catalog "
                f"({', '.join(offers[:3])}{' …' if len(offers) > 3 else ''}); add it or an alias",
            )
        )
    known_models = {spec.name for spec in snapshot.models}
    for alias in aliases:
        targets = known_gpus if alias.kind == "gpu" else known_models
        if alias.target not in targets:
            findings.append(
                Finding(
                    "warning",
                    "alias_unknown_target",
                    alias.alias,
                    f"{alias.kind} alias {alias.alias!r} points at {alias.target!r}, which is not in the catalog",
                )
            )
    unresolved_models: dict[str, int] = defaultdict(int)
    unresolved_systems: dict[str, int] = defaultdict(int)
    for (model, system), count in benchmark_names.items():
        if resolve_model(model, snapshot.models, aliases) is None:
            unresolved_models[model] += count
        if resolve_gpu(system, snapshot.accelerators, aliases) is None:
            unresolved_systems[system] += count
    for name, count in sorted(unresolved_models.items()):
        findings.append(
            Finding(
                "warning",
                "benchmark_unknown_model",
                name,
                f"{count} benchmark row(s) name model {name!r}, which resolves to no catalog model; "
                "add a model alias",
            )
        )
    for name, count in sorted(unresolved_systems.items()):
        findings.append(
            Finding(
                "warning",
                "benchmark_unknown_system",
                name,
                f"{count} benchmark row(s) name system {name!r}, which resolves to no accelerator; "
                "add a gpu alias",
            )
        )
    findings.sort(key=lambda f: (f.severity != "error", f.kind, f.subject))
    return HealthReport(today=today, findings=tuple(findings))
