"""The calibration table: fitted step-model efficiencies per level, the per-model corrections, and the packaged fit.

Why apart from the fit: this is what ``predict``, ``plan`` and the simulator read at run time (``params_for`` walks
from the most specific level to the global one, and no run re-fits), while ``_calibrate`` is how a table is made.
The table's JSON is the packaged ``data/calibration_fit.json`` and what ``servewise calibrate -o`` writes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from servewise.types import Provenance

from ._correction import ModelCorrection, lookup_correction
from ._params import ANALYTICAL_PARAMS, ModelFactors, StepParams

__all__ = [
    "FIT_PARAMETERS",
    "FLOOR",
    "PACKAGED_FIT",
    "CalibrationTable",
    "FittedLevel",
    "load_fitted_table",
    "params_dict",
]

FIT_PARAMETERS = (
    "compute_efficiency",
    "moe_compute_efficiency",
    "attention_efficiency",
    "bandwidth_efficiency",
    "step_overhead_s",
    "layer_overhead_s",
    "prefill_layer_overhead_s",
    "allreduce_latency_s",
    "allreduce_efficiency",
    "moe_dispatch_s",
    "request_overhead_s",
    "prompt_overhead_s_per_token",
    "client_overhead_s_per_client",
    "client_prompt_overhead_s_per_token",
    "overlap_penalty",
    "dp_dispatch_s",
)

FLOOR = 1e-7
"""Zero defaults (layer overhead) start the log-space fit from 0.1 µs."""

PACKAGED_FIT = "calibration_fit.json"


def params_dict(params: StepParams) -> dict[str, float]:
    return {name: max(float(getattr(params, name)), FLOOR) for name in FIT_PARAMETERS}


@dataclass(frozen=True, slots=True)
class FittedLevel:
    key: tuple[str, ...]
    """() global, (backend,), (gpu, backend), (gpu, backend, precision)."""
    params: dict[str, float]
    rows: int
    row_ids: tuple[str, ...] = ()
    fitted: bool = True
    """False when the level had fewer than MIN_ROWS rows and inherits its parent's values."""


@dataclass(frozen=True, slots=True)
class CalibrationTable:
    """Fitted efficiencies per level; ``params_for`` walks from the most specific level to the global one."""

    levels: dict[tuple[str, ...], FittedLevel]
    fitted_on: str
    data_sha256: str
    rows: int
    skipped: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    model_corrections: dict[tuple[str, ...], ModelCorrection] = field(default_factory=dict)
    """Per catalog model (and backend): TTFT/TPOT factors on top of the level's prediction (``_correction``)."""

    def correction_for(self, model: str, backend: str) -> ModelCorrection | None:
        """The model's TTFT/TPOT factors on ``backend`` (catalog model name), or None when none were fitted."""
        return lookup_correction(self.model_corrections, model, backend)

    def level_for(self, gpu: str, backend: str, precision: str) -> FittedLevel:
        for key in ((gpu, backend, precision), (gpu, backend), (backend,), ()):
            level = self.levels.get(key)
            if level is not None and level.fitted:
                return level
        return FittedLevel((), params_dict(ANALYTICAL_PARAMS), 0, fitted=False)

    def params_for(self, gpu: str, backend: str, precision: str) -> StepParams:
        """Efficiencies for a configuration, with provenance: ``calibrated`` when rows of this GPU shaped them."""
        level = self.level_for(gpu, backend, precision)
        if not level.rows:
            return ANALYTICAL_PARAMS
        same_gpu = len(level.key) >= 2
        where = "/".join(level.key)
        if same_gpu:
            basis = f"fitted on {level.rows} measured rows of {where} ({self.fitted_on})"
        elif level.key:  # (backend,): this backend's rows, none of them on this GPU
            basis = (
                f"efficiencies fitted on {level.rows} measured {where} rows of other GPUs ({self.fitted_on}); "
                f"datasheet peaks of {gpu}"
            )
        else:  # (): every row, of any GPU and engine (this GPU's may be among them, on another engine)
            basis = (
                f"efficiencies fitted on {level.rows} measured rows of any GPU and engine, none of {gpu} on "
                f"{backend} ({self.fitted_on}); datasheet peaks of {gpu}"
            )
        values = dict(level.params)
        return dataclasses.replace(
            ANALYTICAL_PARAMS,
            **values,
            provenance=Provenance.calibrated if same_gpu else Provenance.analytical,
            basis=basis,
            model_corrections=self.factors_for(backend),
        )

    def factors_for(self, backend: str) -> tuple[ModelFactors, ...]:
        """Every corrected model's factors on ``backend`` (its own backend's rows, else all its rows)."""
        out = []
        for model in sorted({key[0] for key in self.model_corrections}):
            correction = self.correction_for(model, backend)
            if correction is None:  # pragma: no cover - every model has a (model,) entry
                continue
            which = f"{backend} rows" if (model, backend) in self.model_corrections else "rows on any backend"
            out.append(
                ModelFactors(
                    model,
                    correction.step_time_factor,
                    correction.prefill_factor,
                    correction.rows,
                    f"{correction.rows} measured {which} of the model, fitted {self.fitted_on}",
                )
            )
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "fitted_on": self.fitted_on,
            "data_sha256": self.data_sha256,
            "rows": self.rows,
            "skipped": self.skipped,
            "parameters": list(FIT_PARAMETERS),
            "notes": list(self.notes),
            "levels": [
                {
                    "key": list(level.key),
                    "fitted": level.fitted,
                    "rows": level.rows,
                    "params": {k: float(f"{v:.6g}") for k, v in level.params.items()},
                    "row_ids": list(level.row_ids),
                }
                for level in sorted(self.levels.values(), key=lambda lv: (len(lv.key), lv.key))
            ],
            "model_corrections": [c.to_json(key) for key, c in sorted(self.model_corrections.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationTable:
        levels = {}
        for item in data["levels"]:
            key = tuple(item["key"])
            levels[key] = FittedLevel(
                key,
                dict(item["params"]),
                int(item["rows"]),
                tuple(item.get("row_ids", ())),
                bool(item["fitted"]),
            )
        corrections: dict[tuple[str, ...], ModelCorrection] = {
            ((item["model"], item["backend"]) if item.get("backend") else (item["model"],)): (
                ModelCorrection.from_json(item)
            )
            for item in data.get("model_corrections", ())
            if "step_time_factor" in item  # tables written before the step/overhead split carry none
        }
        return cls(
            levels,
            str(data["fitted_on"]),
            str(data["data_sha256"]),
            int(data["rows"]),
            int(data.get("skipped", 0)),
            tuple(data.get("notes", ())),
            corrections,
        )


def load_fitted_table(path: Path | None = None) -> CalibrationTable | None:
    """The fit shipped in the package (or at ``path``); None when there is none."""
    if path is None:
        return _packaged_table()
    return CalibrationTable.from_json(json.loads(path.read_text(encoding="utf-8")))


@functools.cache
def _packaged_table() -> CalibrationTable | None:
    """Read once per process: the planner asks for parameters per (GPU, precision) of a full-catalog sweep."""
    resource = resources.files("servewise.perf").joinpath("data", PACKAGED_FIT)
    if not resource.is_file():
        return None
    return CalibrationTable.from_json(json.loads(resource.read_text(encoding="utf-8")))
