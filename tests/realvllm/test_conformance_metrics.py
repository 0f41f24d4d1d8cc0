"""The simulator's ``/metrics`` claims only what a real vLLM server exposes: every family it has (except its own
``servewise:`` ones) exists on the real server with the same name, type, label names and histogram buckets, and
both label their series ``engine="0"`` and ``model_name=<served model>``. The test prints the whole diff — what
the simulator gets wrong, and (for information) the real families it does not simulate."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import RealVllm
from .shapes import family_diff, metric_families

pytestmark = pytest.mark.realvllm

OWN_PREFIX = "servewise:"
REMOVED = ("vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds")
"""Names vLLM dropped; the simulator exposes them only with ``legacy_metrics``."""


def _scrape(base_url: str) -> str:
    return httpx.get(f"{base_url}/metrics", timeout=10).text


def test_the_simulator_exposes_the_real_servers_families(real_vllm: RealVllm, simulated_twin: str) -> None:
    body = {"model": real_vllm.model, "prompt": [5] * 8, "max_tokens": 3, "ignore_eos": True}
    for url in (real_vllm.base_url, simulated_twin):  # one finished request, so every series has been touched
        assert httpx.post(f"{url}/v1/completions", json=body, timeout=60).status_code == 200
    real = metric_families(_scrape(real_vllm.base_url))
    simulated = metric_families(_scrape(simulated_twin))
    problems = family_diff(real, simulated, skip_prefix=OWN_PREFIX)
    for problem in problems:
        print(f"simulator vs real vLLM: {problem}")
    not_simulated = sorted(
        name
        for name in real
        if name.startswith("vllm:") and name not in simulated and not name.endswith("_created")
    )
    print(
        f"real vLLM families the simulator does not expose ({len(not_simulated)}): {', '.join(not_simulated)}"
    )
    assert problems == []
    assert not set(REMOVED) & set(real), "vLLM exposes a removed name again: update REMOVED and the simulator"
    assert not set(REMOVED) & set(simulated)
    claimed = [name for name in simulated if name.startswith("vllm:") and not name.endswith("_created")]
    assert (
        len(claimed) >= 20
    )  # what the simulator claims is a real set, not an empty one that trivially passes


def test_series_carry_the_same_engine_and_model_labels(real_vllm: RealVllm, simulated_twin: str) -> None:
    """Label *values* too: a scraper that selects ``model_name="tiny-llama", engine="0"`` finds the same families
    on both (``vllm:admission_rejections_total`` has no ``engine`` label on either)."""

    def label_values(text: str) -> dict[str, set[tuple[str | None, str | None]]]:
        return {
            family.name: {
                (sample.labels.get("engine"), sample.labels.get("model_name")) for sample in family.samples
            }
            for family in text_string_to_metric_families(text)
            if family.name.startswith("vllm:")
        }

    real = label_values(_scrape(real_vllm.base_url))
    simulated = label_values(_scrape(simulated_twin))
    differing = {
        name: (real.get(name), pairs) for name, pairs in simulated.items() if real.get(name) != pairs
    }
    for name, (found, claimed) in differing.items():
        print(f"{name}: real (engine, model_name) {found}, simulator {claimed}")
    assert differing == {}
    assert set().union(*simulated.values()) == {("0", real_vllm.model), (None, real_vllm.model)}
