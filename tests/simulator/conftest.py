"""A catalog-backed simulator config shared by the simulator tests (built once: reading the catalog is the slow
part), and small variants of it (tiny KV cache, few sequence slots) for the scheduler behaviours."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from servewise.perf import SimEngine
from servewise.simulator import SimulatorConfig, simulator_config


@pytest.fixture(scope="session")
def l4_config(tmp_path_factory: pytest.TempPathFactory) -> SimulatorConfig:
    db = Path(tmp_path_factory.mktemp("simcatalog")) / "catalog.db"
    return simulator_config(model="Llama-3.1-8B", gpu="L4", speed=20.0, db_url=f"sqlite:///{db}")


def variant(
    config: SimulatorConfig, *, engine: SimEngine | None = None, **changes: object
) -> SimulatorConfig:
    """``config`` with another engine (and ``max_model_len`` kept within its KV cache) or other fields."""
    if engine is not None:
        changes["engine"] = engine
        changes.setdefault("max_model_len", min(config.max_model_len, engine.kv_blocks * engine.block_size))
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]
