"""``servewise bench`` against a real vLLM server: closed loop and open loop, each a few seconds.

What must agree with the server's own accounting (``/metrics`` scraped before and after the run; the deltas
cover exactly the bench's requests, warm-up off):

* token counts, exactly: every request asks for ``OSL`` tokens with ``ignore_eos`` (random weights), the bench
  reports the server's ``usage`` (not its chunk count, which drops when chunks merge), so its mean output
  length is ``OSL`` and the requests × ``OSL`` equals the delta of ``vllm:generation_tokens_total``; prompt tokens
  agree with ``vllm:prompt_tokens_total`` to the JSON's rounding of the mean (0.1 token per request);
* latencies, within stated tolerances (docs/real-vllm.md has the measurements they come from). The server's
  means are histogram ``_sum`` / ``_count`` deltas:

  - TTFT and E2E: the client sees what the engine's histograms cannot (HTTP, tokenization, detokenization,
    the SSE write, and the API server waiting for a CPU core: +5–15 ms on a quiet machine, up to +45 ms with
    other jobs on both cores), so ``server − 1 ms ≤ bench ≤ server × 1.3 + 50 ms`` for TTFT and
    ``server × 1.1 + 50 ms`` for E2E (the last token is delayed less than the first: the API server catches up);
  - ITL (``vllm:inter_token_latency_seconds``, one sample per token after the first) and TPOT
    (``vllm:request_time_per_output_token_seconds``, one per request) within ±15 % (measured: ≤ 4 % at 64
    output tokens; a late first token shortens the client's decode span by its delay / 63 per token).

A run outside the latency tolerances is measured once more, and the test fails only when the second run is outside
them too: a bench that measures wrongly does so every time, a stall of the shared machine seldom twice in a row
(docs/real-vllm.md has the CI run that showed one).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewise.cli import main

from .conftest import RealVllm, wait_idle

pytestmark = pytest.mark.realvllm

ISL, OSL = 64, 64
DURATION_S = 3.0
SLACK_S, TTFT_RATIO, E2E_RATIO = 0.050, 1.3, 1.1
PER_TOKEN_TOLERANCE = 0.15
SERVER_HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "tpot": "vllm:request_time_per_output_token_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
}


def _totals(base_url: str) -> dict[str, float]:
    """Every counter and histogram ``_sum``/``_count`` of the server, summed over label sets."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name.endswith(("_total", "_sum", "_count")):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


def _bench(real_vllm: RealVllm, capsys: pytest.CaptureFixture[str], *load: str) -> dict[str, object]:
    """Run ``servewise bench`` in-process; its JSON level document."""
    capsys.readouterr()
    args = ["bench", real_vllm.base_url, *load, "--isl", str(ISL), "--osl", str(OSL), "--range-ratio", "1",
            "--duration", str(DURATION_S), "--warmup", "0", "--model", real_vllm.model, "--format", "json"]  # fmt: skip
    try:
        main(args)
    except SystemExit as done:
        assert not done.code, f"servewise bench exited {done.code}: {capsys.readouterr().err[-2000:]}"
    document = json.loads(capsys.readouterr().out)
    level: dict[str, object] = document["levels"][0]
    return level


def _measure(
    real_vllm: RealVllm, capsys: pytest.CaptureFixture[str], load: tuple[str, str]
) -> dict[str, float]:
    """One bench run; checks the exact token accounting and returns the latency means (ms), ``bench_*`` and
    ``server_*``."""
    wait_idle(real_vllm.base_url)
    before = _totals(real_vllm.base_url)
    level = _bench(real_vllm, capsys, *load)
    completed = int(str(level["completed"]))
    assert level["failed"] == 0 and completed >= 4, level
    deadline = time.monotonic() + 10  # the last requests' stats reach /metrics as they finish
    while True:
        delta = _delta(before, _totals(real_vllm.base_url))
        if delta["vllm:e2e_request_latency_seconds_count"] >= completed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delta["vllm:e2e_request_latency_seconds_count"] == completed

    assert level["mean_output_tokens"] == OSL
    assert delta["vllm:generation_tokens_total"] == completed * OSL
    prompt_tokens = completed * float(str(level["mean_prompt_tokens"]))
    assert abs(delta["vllm:prompt_tokens_total"] - prompt_tokens) <= 0.05 * completed + 0.5

    latency = level["latency_ms"]
    assert isinstance(latency, dict)
    means = {
        f"server_{key}": 1000 * delta[f"{name}_sum"] / delta[f"{name}_count"]
        for key, name in SERVER_HISTOGRAMS.items()
    }
    means |= {f"bench_{key}": float(latency[key]["mean"]) for key in SERVER_HISTOGRAMS}
    with capsys.disabled():
        pairs = ", ".join(
            f"{k} {means['bench_' + k]:.1f} vs {means['server_' + k]:.1f}" for k in SERVER_HISTOGRAMS
        )
        print(f"\n{load[0]} {load[1]}: {completed} requests of {ISL}->{OSL} (prompt {prompt_tokens / completed:.0f}"
              f" real tokens); mean ms bench vs server: {pairs}")  # fmt: skip
    return means


def latency_disagreements(means: dict[str, float]) -> list[str]:
    """The latency tolerances of the module docstring that ``means`` (ms) break, one line each."""
    broken = []
    for key, ratio in (("ttft", TTFT_RATIO), ("e2e", E2E_RATIO)):
        bench_ms, server_ms = means[f"bench_{key}"], means[f"server_{key}"]
        low_ms, high_ms = server_ms - 1, server_ms * ratio + 1000 * SLACK_S
        if not low_ms <= bench_ms <= high_ms:
            broken.append(f"{key}: bench {bench_ms:.1f} ms outside [{low_ms:.1f}, {high_ms:.1f}]")
    for key in ("itl", "tpot"):
        bench_ms, server_ms = means[f"bench_{key}"], means[f"server_{key}"]
        if abs(bench_ms - server_ms) > PER_TOKEN_TOLERANCE * server_ms:
            broken.append(f"{key}: bench {bench_ms:.1f} ms vs the server's {server_ms:.1f} ms "
                          f"(more than {PER_TOKEN_TOLERANCE:.0%} apart)")  # fmt: skip
    return broken


@pytest.mark.parametrize("load", [("--concurrency", "4"), ("--rate", "5")], ids=["closed-loop", "open-loop"])
def test_bench_agrees_with_the_servers_own_histograms(
    real_vllm: RealVllm, capsys: pytest.CaptureFixture[str], load: tuple[str, str]
) -> None:
    broken = latency_disagreements(_measure(real_vllm, capsys, load))
    if broken:  # a stall of the shared machine, or the bench: a second run tells them apart
        with capsys.disabled():
            print("first run outside the tolerances, measuring again: " + "; ".join(broken))
        broken = latency_disagreements(_measure(real_vllm, capsys, load))
    assert not broken, "; ".join(broken)


@pytest.mark.parametrize(
    ("means", "broken"),
    [
        ({"ttft": (205.0, 200.0), "e2e": (900.0, 890.0), "itl": (11.0, 10.5), "tpot": (11.0, 10.5)}, []),
        (
            {"ttft": (784.2, 442.7), "e2e": (1438.9, 1424.5), "itl": (10.4, 15.6), "tpot": (10.4, 15.6)},
            ["ttft", "itl", "tpot"],
        ),
        (
            {"ttft": (150.0, 200.0), "e2e": (900.0, 890.0), "itl": (11.0, 10.5), "tpot": (11.0, 10.5)},
            ["ttft"],
        ),
        (
            {"ttft": (205.0, 200.0), "e2e": (1100.0, 890.0), "itl": (14.0, 10.5), "tpot": (11.0, 10.5)},
            ["e2e", "itl"],
        ),
    ],
    ids=["agrees", "late-first-token", "too-early", "slow-tail"],
)
def test_the_tolerances_name_what_they_break(
    means: dict[str, tuple[float, float]], broken: list[str]
) -> None:
    flat = {
        f"{side}_{key}": pair[i] for key, pair in means.items() for i, side in enumerate(("bench", "server"))
    }
    assert [line.split(":")[0] for line in latency_disagreements(flat)] == broken
