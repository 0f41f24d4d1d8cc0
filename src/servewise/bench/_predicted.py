"""What a plan option predicts for a measured closed-loop level: ``servewise bench URL --against plan.json``.

Why through the simulator's config: ``servewise.simulator.config_from_plan`` turns a plan option into the replica
``deploy`` would start (its candidate's model, GPU, TP and precision, and the engine settings the plan wrote:
``max_num_seqs``, token budget, KV cache), with the step-model efficiencies ``predict`` and ``simulate`` use. The
prediction is ``servewise.simulator.predicted_point``'s run — ``perf.simulate`` of C closed-loop clients,
``10 × C`` requests — with the lengths drawn from [range_ratio × len, len] as the benchmark drew them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servewise.errors import UsageError
from servewise.planner import load_plan_document
from servewise.simulator import SimulatorConfig, config_from_plan, predicted_point

from ._report import comparison_rows, flat_row
from ._run import LevelResult

__all__ = ["PlanTarget", "against_mismatch", "compare_levels", "plan_target", "predicted_flat"]


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """A plan option, as the replica it would deploy."""

    path: Path
    rank: int
    config: SimulatorConfig

    def describe(self) -> str:
        return f"plan option {self.rank}: {self.config.describe()}"


def against_mismatch(target: PlanTarget, model: str, cards: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the measured endpoint is not the plan option's replica, or None when nothing says so.

    The Servewise simulator's ``/v1/models`` entry says what it simulates (``servewise.simulated``, the same text as
    the option's), so another model, GPU, TP or precision is certain; a real server only names its model, which a
    ``--served-model-name`` may have renamed, so that case is worded as a doubt."""
    card = next((c for c in cards if c.get("id") == model), None)
    config = target.config
    simulator = card.get("servewise") if card is not None else None
    if isinstance(simulator, Mapping) and "simulated" in simulator:
        simulated = str(simulator["simulated"])
        if simulated != config.describe():
            return (
                f"the endpoint simulates {simulated}, not {target.describe()}: the errors compare two different "
                "configurations (start `servewise simulate` with the option's model, GPU, TP and precision)"
            )
        return None
    if model not in (config.served_model, config.model):
        return (
            f"the endpoint serves '{model}' and {target.describe()} deploys '{config.served_model}': unless that is "
            "a --served-model-name alias, the errors compare two different models"
        )
    return None


def plan_target(path: Path, option: int | None, *, db_url: str | None = None) -> PlanTarget:
    """Option of rank ``option`` (default: the plan's chosen one) of the plan document at ``path``."""
    document = load_plan_document(path)
    rank = option
    if rank is None:
        options, chosen = document.get("options"), document.get("chosen")
        if not isinstance(options, list) or not isinstance(chosen, int) or not 0 <= chosen < len(options):
            raise UsageError(f"{path} has no chosen option; name one with --option RANK")
        rank = int(options[chosen].get("rank", chosen + 1))
    return PlanTarget(path, rank, config_from_plan(document, rank, db_url=db_url))


def predicted_flat(
    target: PlanTarget, *, isl: int, osl: int, concurrency: int, range_ratio: float = 1.0, seed: int = 0
) -> dict[str, float | None]:
    """``<metric>_<p50|p90|p95|p99|mean>_ms``, ``output_tokens_per_s`` and ``requests_per_s`` predicted for
    ``concurrency`` clients sending requests of ``isl``/``osl`` tokens (simulated seconds)."""
    config = target.config
    if isl + osl > config.max_model_len:
        raise UsageError(
            f"isl + osl = {isl + osl} exceeds the plan option's max_model_len {config.max_model_len}; the replica "
            "it deploys would refuse these requests"
        )
    point: dict[str, float | None] = dict(
        predicted_point(
            config,
            prompt_tokens=isl,
            output_tokens=osl,
            concurrency=concurrency,
            range_ratio=range_ratio,
            seed=seed,
        )
    )
    point.pop("preemptions", None)
    return point


def compare_levels(
    target: PlanTarget,
    results: Sequence[LevelResult],
    documents: Sequence[Mapping[str, Any]],
    lengths: Mapping[str, Any],
    *,
    seed: int,
) -> list[dict[str, Any]]:
    """For each closed-loop level: the prediction at its concurrency and lengths (nominal ones, or the measured
    means for lengths from a workload), and the predicted/measured/% error rows."""
    out = []
    for result, document in zip(results, documents, strict=True):
        isl = int(lengths.get("isl") or round(document["mean_prompt_tokens"] or 1))
        osl = int(lengths.get("osl") or round(document["mean_output_tokens"] or 1))
        ratio = float(lengths.get("range_ratio") or 1.0)
        concurrency = result.level.concurrency or 1
        predicted = predicted_flat(
            target, isl=isl, osl=osl, concurrency=concurrency, range_ratio=ratio, seed=seed
        )
        out.append(
            {
                "label": result.level.label,
                "predicted_for": target.describe(),
                "isl": isl,
                "osl": osl,
                "range_ratio": ratio,
                "predicted": predicted,
                "rows": comparison_rows(flat_row(document), predicted),
            }
        )
    return out
