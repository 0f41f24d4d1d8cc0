"""The queue-depth poller against two real simulator servers: a loaded pool is seen as congested, a stopped one as
unknown, and the policy routes around both."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx
import pytest

from servewise.gateway._metrics import GatewayMetrics
from servewise.gateway._queue import QueueDepthPoller, parse_queue_depth
from servewise.gateway._routing import DefaultPolicy, RequestFacts, RouteInfo, RoutingSettings, RoutingState
from servewise.simulator import SimulatorConfig, serve_in_background, simulator_config

THRESHOLD = 8
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def one_slot_config(tmp_path_factory: pytest.TempPathFactory) -> SimulatorConfig:
    """A replica that runs one sequence at a time in real time: every further request waits in its queue."""
    db = Path(tmp_path_factory.mktemp("gwcatalog")) / "catalog.db"
    return simulator_config(
        model="Llama-3.1-8B", gpu="L4", speed=1.0, max_num_seqs=1, db_url=f"sqlite:///{db}"
    )


def test_parse_sums_every_series_and_ignores_lookalikes() -> None:
    text = (
        "# HELP vllm:num_requests_waiting Waiting.\n# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="m"} 3.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="m"} 4.0\n'
        "# TYPE vllm:num_requests_waiting_by_reason gauge\n"
        'vllm:num_requests_waiting_by_reason{reason="capacity"} 100.0\n'
        'vllm:num_requests_running{engine="0",model_name="m"} 9.0\n'
    )
    assert parse_queue_depth(text) == 7.0
    assert parse_queue_depth("# nothing here\n") is None


async def _until(poller: QueueDepthPoller, pool: str, check: Callable[[float | None], bool]) -> float | None:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        depth = (await poller.poll_once())[pool]
        if check(depth) or time.monotonic() > deadline:
            return depth
        await asyncio.sleep(0.05)


async def _stream(client: httpx.AsyncClient, url: str, model: str) -> None:
    body = {"model": model, "prompt": "hello", "max_tokens": 4000, "stream": True}
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        async for _ in response.aiter_bytes():
            pass


async def _scenario(url_a: str, url_b: str, model: str, stop_b: Callable[[], None]) -> None:
    metrics = GatewayMetrics()
    poller = QueueDepthPoller(
        {"a": f"{url_a}/v1", "b": url_b}, poll_interval_s=0.5, on_update=metrics.set_pool_depth
    )
    policy = DefaultPolicy(RoutingSettings(queue_threshold=THRESHOLD))
    routes = (
        RouteInfo("a", "local", None, 0.05, 0.1),
        RouteInfo("b", "local", None, 0.05, 0.1),
        RouteInfo("api", "api", None, 0.4, 1.6),
    )
    facts = RequestFacts("Llama-3.1-8B", prompt_tokens=100, max_tokens=100)
    await poller.start()
    async with httpx.AsyncClient(timeout=60.0) as client:
        load = [asyncio.create_task(_stream(client, url_a, model)) for _ in range(THRESHOLD + 4)]
        try:
            assert (await poller.poll_once())["b"] == 0.0  # idle pool: known and empty
            depth_a = await _until(poller, "a", lambda d: d is not None and d > THRESHOLD)
            assert depth_a is not None and depth_a > THRESHOLD, f"pool a never queued more than {THRESHOLD}"
            assert poller.depths()["b"] == 0.0
            decision = policy.decide(facts, routes, RoutingState(poller.depths()))
            assert (decision.route, decision.label) == ("b", "local")

            stop_b()
            assert await _until(poller, "b", lambda d: d is None) is None
            assert poller.status()[1].error is not None
            state = RoutingState(poller.depths(), local_share=1.0)
            decision = policy.decide(facts, routes, state)
            assert (decision.route, decision.label) == ("api", "queue_cloud")  # a congested, b down
            assert decision.fallbacks == ("a", "b")  # the unknown pool is the last resort
            rendered = metrics.render_latest().decode()
            assert 'servewise_gateway_pool_up{pool="b"} 0.0' in rendered
            assert 'servewise_gateway_pool_up{pool="a"} 1.0' in rendered
        finally:
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
            await poller.close()


def test_poller_sees_a_loaded_pool_and_a_stopped_one(one_slot_config: SimulatorConfig) -> None:
    with ExitStack() as stack:
        url_a = stack.enter_context(serve_in_background(one_slot_config))
        b_stack = stack.enter_context(ExitStack())
        url_b = b_stack.enter_context(serve_in_background(dataclasses.replace(one_slot_config, speed=50.0)))
        asyncio.run(_scenario(url_a, url_b, one_slot_config.served_model, b_stack.close))


def test_a_silent_pool_goes_stale(one_slot_config: SimulatorConfig) -> None:
    now = [0.0]
    with serve_in_background(one_slot_config) as url:
        poller = QueueDepthPoller({"a": url}, poll_interval_s=1.0, clock=lambda: now[0])
        assert poller.depths() == {"a": None}  # never polled: unknown

        async def poll() -> None:
            await poller.poll_once()
            await poller.close()

        asyncio.run(poll())
    assert poller.depths() == {"a": 0.0}
    now[0] = 6.0
    assert poller.depths() == {"a": 0.0}  # three intervals plus three 1 s timeouts: still fresh
    now[0] = 6.5
    assert poller.depths() == {"a": None}
    assert "stale" in (poller.status()[0].error or "")


class _SlowMetrics(http.server.BaseHTTPRequestHandler):
    """A replica whose ``/metrics`` answers after longer than the poll interval (a busy engine's page)."""

    delay_s = 0.5

    def do_GET(self) -> None:
        time.sleep(self.delay_s)
        body = b'# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{engine="0"} 2.0\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # the poller may have given up first (the case under test): not a server error to print
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_pool() -> Iterator[str]:
    """A real HTTP server whose ``/metrics`` answers after ``_SlowMetrics.delay_s``: its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_slow_answer_within_the_timeout_is_a_depth_not_unknown(slow_pool: str) -> None:
    """The timeout is its own setting, not the interval: with a 0.2 s interval a pool answering in 0.5 s is still
    read (it was 'unknown' when the timeout followed the interval, and routing avoided an idle pool)."""

    async def poll(timeout_s: float) -> tuple[float | None, str | None]:
        poller = QueueDepthPoller({"slow": slow_pool}, poll_interval_s=0.2, poll_timeout_s=timeout_s)
        try:
            await poller.poll_once()
            return poller.depths()["slow"], poller.status()[0].error
        finally:
            await poller.close()

    assert asyncio.run(poll(2.0)) == (2.0, None)
    depth, error = asyncio.run(poll(0.2))  # never read: a time-out leaves it unknown
    assert depth is None and error is not None and "Timeout" in error


def test_a_time_out_keeps_the_last_read_until_it_is_stale(
    slow_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One late answer is not a dead pool: the last good depth stands (up, routable) until three polls' worth of
    time has passed without a new one."""
    now = [0.0]
    updates: list[float | None] = []
    poller = QueueDepthPoller(
        {"slow": slow_pool},
        poll_interval_s=0.2,
        poll_timeout_s=0.3,
        clock=lambda: now[0],
        on_update=lambda _pool, depth: updates.append(depth),
    )

    async def poll() -> None:
        await poller.poll_once()

    async def scenario() -> None:
        monkeypatch.setattr(_SlowMetrics, "delay_s", 0.0)
        await poll()
        monkeypatch.setattr(_SlowMetrics, "delay_s", 1.0)  # now slower than the 0.3 s timeout
        now[0] = 1.0
        await poll()
        await poller.close()

    asyncio.run(scenario())
    assert updates == [2.0, 2.0]  # the time-out did not turn the pool unknown
    assert poller.depths() == {"slow": 2.0} and poller.status()[0].error is None
    now[0] = 1.5  # stale after 3 × (0.2 + 0.3) = 1.5 s since the read at 0: still fresh at exactly 1.5
    assert poller.depths() == {"slow": 2.0}
    now[0] = 1.6
    assert poller.depths() == {"slow": None}
    error = poller.status()[0].error or ""
    assert "stale" in error and "Timeout" in error
