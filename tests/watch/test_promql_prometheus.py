"""The PromQL path against a REAL Prometheus (Debian's ``prometheus`` package, installed here when missing, as the
browser tests install chromium): it scrapes two simulated replicas every second while ``servewise.bench`` drives
load and ``watch`` scrapes them directly over the same window; both sources must count the same requests into the
same buckets, and our window percentiles must equal Prometheus's own ``histogram_quantile`` of those buckets.

Skipped, with the reason, only when no Prometheus binary can be had (not root, no apt-get, the install failed);
``SERVEWISE_PROMETHEUS`` points at another binary. With ``SERVEWISE_RECORD_PROMQL=FILE`` the test also records every
HTTP API answer to FILE — how ``data/promql_recording.json`` (the fixture test's input) was made.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from servewise.simulator import SimulatorConfig
from servewise.watch._exposition import histogram_quantile
from servewise.watch._promql import prometheus_observation
from servewise.watch._scrape import scrape_observation
from tests.debian import apt_install

from .scrape_support import OUTPUT_TOKENS, drive_load

DEFAULT_PROMETHEUS = "/usr/bin/prometheus"
START_TIMEOUT_S = 30.0
SCRAPE_INTERVAL_S = 1.0
TTFT = "vllm:time_to_first_token_seconds"


@pytest.fixture(scope="session")
def prometheus_executable() -> str:
    """``SERVEWISE_PROMETHEUS``, else ``prometheus`` on the PATH, else Debian's, installed now when missing."""
    configured = os.environ.get("SERVEWISE_PROMETHEUS")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(
                f"SERVEWISE_PROMETHEUS={configured} does not exist; unset it to use {DEFAULT_PROMETHEUS}"
            )
        return configured
    found = shutil.which("prometheus")
    if found:
        return found
    reason = apt_install("prometheus")
    if reason is not None or not Path(DEFAULT_PROMETHEUS).is_file():
        pytest.skip(
            f"the real-Prometheus test needs {DEFAULT_PROMETHEUS} and it could not be installed: "
            f"{reason or 'apt-get succeeded but installed no ' + DEFAULT_PROMETHEUS}; install the `prometheus` "
            "package or set SERVEWISE_PROMETHEUS (the PromQL parsing is still tested by test_promql_fixture.py)"
        )
    return DEFAULT_PROMETHEUS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _query(base: str, query: str, at_s: float) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": query, "time": f"{at_s:.3f}"}).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.fixture(scope="module")
def prometheus(
    prometheus_executable: str,
    replicas: tuple[list[str], SimulatorConfig],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A Prometheus scraping both replicas every second (own config, TSDB in a temp folder, a free port), up and
    holding both targets; its base URL."""
    urls, _ = replicas
    folder = tmp_path_factory.mktemp("prometheus")
    targets = ", ".join(f'"{url.removeprefix("http://")}"' for url in urls)
    (folder / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S:g}s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: vllm\n    static_configs:\n      - targets: [{targets}]\n"
    )
    port = _free_port()
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            prometheus_executable,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # discovery hands targets to the scrapers after ~5 s
            assert process.poll() is None, (folder / "prometheus.log").read_text()[-2000:]
            assert time.monotonic() < deadline, (
                f"Prometheus did not scrape both replicas in {START_TIMEOUT_S:g} s"
            )
            try:
                up = _query(base, 'count(up{job="vllm"} == 1)', time.time())
                if up and float(up[0]["value"][1]) == 2:
                    break
            except (
                httpx.HTTPError,
                ValueError,
                AssertionError,
            ):  # not listening yet, or still starting (503)
                pass
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class _Recorder(httpx.BaseTransport):
    """Passes requests to the network and keeps each HTTP API answer (for the fixture test's recording)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.answers: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        params = dict(parse_qsl(request.url.query.decode()))
        self.answers.append(
            {
                "path": request.url.path,
                "params": params,
                "status": response.status_code,
                "body": response.json(),
            }
        )
        return response

    def close(self) -> None:
        self.inner.close()


def test_promql_and_direct_scrape_agree_with_the_load_and_prometheus(
    prometheus: str, replicas: tuple[list[str], SimulatorConfig]
) -> None:
    urls, config = replicas
    started = time.time()

    async def window() -> tuple[Any, list[Any]]:
        return await asyncio.gather(
            scrape_observation(urls, window_s=6.0, interval_s=0.5),
            # Prometheus's first sample in the window must come before the load (it scrapes every second)
            drive_load(urls, config.served_model, delay_s=1.5, duration_s=2.0),
        )

    scraped, records = asyncio.run(window())
    time.sleep(2.2 * SCRAPE_INTERVAL_S)  # Prometheus scrapes the final counters
    end_s = float(int(time.time()))
    window_s = float(int(end_s - started) + 2)
    recorder = _Recorder()
    o = prometheus_observation(
        prometheus, window_s=window_s, step_s=2.0, end=datetime.fromtimestamp(end_s, UTC), transport=recorder
    )
    completed = sum(1 for r in records if r.ok)
    assert o.source == "prometheus" and o.endpoints == (prometheus,)
    assert o.replicas == 2 and max(s.replicas for s in o.samples) == 2 and len(o.samples) == int(window_s / 2)
    assert o.model_name == config.served_model and all("no gateway" in w for w in o.warnings)
    # exact deltas between the window's edges: the same counts and buckets as the direct scrape
    assert o.requests == scraped.requests == completed
    assert (
        o.histograms["ttft"] == scraped.histograms["ttft"]
        and o.histograms["e2e"] == scraped.histograms["e2e"]
    )
    assert o.output_tokens_mean == pytest.approx(OUTPUT_TOKENS)
    assert o.prompt_tokens_mean == pytest.approx(scraped.prompt_tokens_mean)
    assert o.ttft_mean_s == pytest.approx(scraped.ttft_mean_s)
    assert any(s.qps > 0 for s in o.samples) and any(s.ttft_p95_s is not None for s in o.samples)
    # our interpolation is Prometheus's: the same buckets give the same quantiles
    w, bucket = f"{int(window_s)}s", f"{TTFT}_bucket"
    start = f"({bucket} offset {w} and last_over_time({bucket}[{w}])) or min_over_time({bucket}[{w}])"
    deltas = f"sum by (le) (last_over_time({bucket}[{w}])) - sum by (le) ({start})"
    theirs = {}
    for q in (0.1, 0.5, 0.9, 0.95, 0.99):
        theirs[q] = float(_query(prometheus, f"histogram_quantile({q}, {deltas})", end_s)[0]["value"][1])
        assert o.ttft_s.get(q, histogram_quantile(q, o.histograms["ttft"])) == pytest.approx(
            theirs[q], rel=1e-9
        )
    destination = os.environ.get("SERVEWISE_RECORD_PROMQL")
    if destination:
        recording = {
            "recorded_with": "tests/watch/test_promql_prometheus.py (SERVEWISE_RECORD_PROMQL)",
            "prometheus_version": subprocess.run(
                [shutil.which("prometheus") or DEFAULT_PROMETHEUS, "--version"],
                capture_output=True,
                text=True,
            ).stdout.splitlines()[0],
            "end_s": end_s,
            "window_s": window_s,
            "step_s": 2.0,
            "served_model": config.served_model,
            "prometheus_ttft_quantiles": {str(q): v for q, v in theirs.items()},
            "answers": recorder.answers,
        }
        Path(destination).write_text(json.dumps(recording, indent=1) + "\n")
