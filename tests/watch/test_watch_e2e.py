"""End to end against two simulated vLLM replicas of a real plan: ``servewise.bench`` drives load on both while
``watch`` scrapes their ``/metrics``; what watch observes must agree with what the load generator measured, and the
CLI's exit code must follow the gates (0 pass, 1 a gate failed, 2 bad input)."""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from servewise.bench import RequestRecord, summarize
from servewise.cli._watch import _default_interval_s, parse_duration
from servewise.errors import UsageError
from servewise.simulator import SimulatorConfig
from servewise.simulator._metrics import REQUEST_BUCKETS_S, TOKEN_BUCKETS_S, TTFT_BUCKETS_S
from servewise.watch._scrape import scrape_observation
from tests.cli_runner import run_cli

from .scrape_support import CONCURRENCY, OUTPUT_TOKENS, drive_load

CliRun = Callable[..., tuple[int, str, str]]


def _bucket_bounds(value_s: float, bounds: tuple[float, ...]) -> tuple[float, float]:
    """The histogram bucket (lower, upper] that holds ``value_s``."""
    i = bisect.bisect_left(bounds, value_s)
    return (bounds[i - 1] if i > 0 else 0.0), (bounds[i] if i < len(bounds) else math.inf)


def _near(observed: float | None, measured_ms: float | None, bounds: tuple[float, ...]) -> bool:
    """``observed`` lies in the buckets around the load generator's value (±10 % for client-side overheads): the
    histogram cannot place a quantile more precisely than its bucket."""
    assert observed is not None and measured_ms is not None
    low, _ = _bucket_bounds(measured_ms / 1000 * 0.9, bounds)
    _, high = _bucket_bounds(measured_ms / 1000 * 1.1, bounds)
    return low <= observed <= high


def test_watch_observes_what_the_load_generator_measured(replicas: tuple[list[str], SimulatorConfig]) -> None:
    urls, config = replicas

    async def window() -> tuple[Any, list[RequestRecord]]:
        observed, records = await asyncio.gather(
            scrape_observation(urls, window_s=5.0, interval_s=0.5),
            drive_load(urls, config.served_model, delay_s=0.3, duration_s=2.5),
        )
        return observed, records

    o, records = asyncio.run(window())
    measured = summarize(records)
    assert measured.failed == 0 and measured.completed >= 6
    assert (o.replicas, o.replicas_mean) == (2, 2.0)
    assert o.requests == measured.completed  # every request started and finished inside the window
    assert o.qps == pytest.approx(measured.completed / o.window_s)
    assert sum(s.qps * s.interval_s for s in o.samples) == pytest.approx(measured.completed, rel=1e-6)
    assert o.output_tokens_mean == pytest.approx(OUTPUT_TOKENS)
    assert o.prompt_tokens_mean == pytest.approx(measured.mean_prompt_tokens)
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms")):
        assert _near(o.ttft_s[q], getattr(measured.ttft, key), TTFT_BUCKETS_S), (
            "ttft",
            q,
            o.ttft_s,
            measured.ttft,
        )
        assert _near(o.e2e_s[q], getattr(measured.e2e, key), REQUEST_BUCKETS_S), (
            "e2e",
            q,
            o.e2e_s,
            measured.e2e,
        )
    # per-token gaps: the median and the mean (the client's tail also holds its own event-loop jitter, which the
    # server-side histogram rightly does not see)
    assert _near(o.itl_s[0.5], measured.itl.p50_ms, TOKEN_BUCKETS_S), (o.itl_s, measured.itl)
    assert measured.itl.mean_ms is not None and o.itl_mean_s is not None
    assert o.itl_mean_s == pytest.approx(measured.itl.mean_ms / 1000, rel=0.3)
    assert o.ttft_mean_s == pytest.approx((measured.ttft.mean_ms or 0) / 1000, rel=0.3)
    assert o.model_name == config.served_model and o.errors == 0 and o.preemptions == 0
    assert o.running_mean is not None and 0 < o.running_mean <= 2 * CONCURRENCY


@pytest.fixture
def cli(
    watch_catalog_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> CliRun:
    """``cli("watch", …)`` → (exit code, stdout, stderr), through the console-script entry point."""
    monkeypatch.setenv("SERVEWISE_DB_URL", watch_catalog_url)

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, *args)

    return run


def _endpoints(urls: list[str]) -> list[str]:
    return [arg for url in urls for arg in ("--endpoint", f"{url}/metrics")]


def test_the_command_passes_under_load_and_writes_json_and_html(
    cli: CliRun, replicas: tuple[list[str], SimulatorConfig], watch_plan_file: Path, tmp_path: Path
) -> None:
    urls, config = replicas
    load = threading.Thread(
        target=lambda: asyncio.run(drive_load(urls, config.served_model, delay_s=0.2, duration_s=1.8)),
        daemon=True,
    )
    load.start()
    report, html = tmp_path / "watch.json", tmp_path / "watch.html"
    code, out, err = cli(
        "watch", "--plan", str(watch_plan_file), *_endpoints(urls), "--window", "3s", "--interval", "0.5s",
        "-o", str(report), "--html", str(html),
    )  # fmt: skip
    load.join()
    assert code == 0, err
    for section in ("SLO compliance", "Gates", "Efficiency", "Right-sizing", "Drift"):
        assert section in out
    assert "PASS" in out and "PASS" in err
    document = json.loads(report.read_text())
    assert document["passed"] is True and document["observation"]["replicas"] == 2
    assert document["observation"]["requests"] > 0 and document["efficiency"]["score"] >= 0
    assert document["recommendations"], "the observed load should let the planner suggest a change"
    assert html.read_text().lstrip().lower().startswith("<!doctype html")


def test_a_failing_gate_exits_1(
    cli: CliRun, replicas: tuple[list[str], SimulatorConfig], watch_plan_file: Path, tmp_path: Path
) -> None:
    urls, _ = replicas
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        "gates:\n  three_replicas: {metric: replicas, min: 3, description: at least 3 replicas up}\n"
    )
    code, out, err = cli(
        "watch", "--plan", str(watch_plan_file), *_endpoints(urls), "--window", "1s", "--interval", "0.5s",
        "--gates", str(gates), "--format", "json",
    )  # fmt: skip
    assert code == 1
    document = json.loads(out)  # stdout is the document alone
    gate = next(g for g in document["gates"] if g["name"] == "three_replicas")
    assert document["passed"] is False and gate["passed"] is False and gate["observed"] == 2
    assert "FAIL: gate(s) three_replicas failed" in err
    code, out, _ = cli(
        "watch", "--plan", str(watch_plan_file), *_endpoints(urls), "--window", "1s", "--interval", "0.5s",
        "--gates", str(gates), "--format", "markdown",
    )  # fmt: skip
    assert code == 1 and "**Gates**" in out and "| three_replicas | ✗ FAIL |" in out


def test_bad_input_is_one_line_and_exit_2(
    cli: CliRun, replicas: tuple[list[str], SimulatorConfig], watch_plan_file: Path, tmp_path: Path
) -> None:
    urls, _ = replicas
    plan = str(watch_plan_file)
    bad_gates = tmp_path / "gates.yaml"
    bad_gates.write_text("gates: [unclosed")
    cases = [
        (["--plan", str(tmp_path / "missing.json"), *_endpoints(urls)], "does not exist"),
        (["--plan", plan, "--option", "99", *_endpoints(urls)], "no option of rank 99"),
        (["--plan", plan, "--endpoint", "http://127.0.0.1:9/metrics", "--window", "1s", "--interval", "1s"],
         "none of the 1 endpoint(s) answered"),
        (["--plan", plan, *_endpoints(urls), "--gates", str(bad_gates)], "is not valid YAML"),
        (["--plan", plan, *_endpoints(urls), "--window", "0s"], "--window must be longer than 0"),
        (["--plan", plan, *_endpoints(urls), "--window", "soon"], "is not a duration"),
        (["--plan", plan, *_endpoints(urls), "--interval", "10s", "--window", "5s"], "longer than --window"),
        (["--plan", plan], "give one metrics source"),
        (["--plan", plan, *_endpoints(urls), "--prometheus", "http://127.0.0.1:9"], "give one metrics source"),
        (["--plan", plan, "--prometheus", "http://127.0.0.1:9", "--gateway", urls[0]], "--gateway-selector"),
        (["--plan", plan, *_endpoints(urls), "--selector", 'job="x"'], "apply to --prometheus only"),
        (["--plan", plan, *_endpoints(urls), "-o", str(tmp_path / "no" / "such" / "dir.json")], "does not exist"),
    ]  # fmt: skip
    for args, message in cases:
        code, out, err = cli("watch", *args)
        assert code == 2 and out == "", (args, out, err)
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err


def test_durations_and_default_intervals() -> None:
    assert [parse_duration(t, "--window") for t in ("60s", "5m", "1h", "500ms", "2.5")] == [
        60,
        300,
        3600,
        0.5,
        2.5,
    ]
    with pytest.raises(UsageError, match="--window must be longer than 0"):
        parse_duration("0", "--window")
    assert _default_interval_s(60.0, None) == 5.0 and _default_interval_s(2.0, None) == 2.0
    # PromQL: rate() needs two scrapes per step: at least 30 s, 1/60 of a long window, never past the window
    assert _default_interval_s(600.0, "http://p:9090") == 30.0
    assert _default_interval_s(3600.0, "http://p:9090") == 60.0
    assert _default_interval_s(10.0, "http://p:9090") == 10.0
