"""Shared gateway fixtures (owned by G1): the simulator as the upstream, a gateway served by uvicorn in a thread or
as a ``servewise gateway --config`` subprocess, tenants with keys and budgets, and ledger/counter read-outs.

Prices in these tests are round on purpose: the pool costs $3.60/hour at a planned 1 token/s, i.e. $1,000 per 1M
tokens = 1,000 µ$ per token, so a request's cost in µ$ is 1,000 × its tokens.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import openai
import pytest
import uvicorn
import yaml
from sqlalchemy import Engine, Table, func, select

from servewise.gateway import GatewayConfig, create_key
from servewise.gateway._tables import SpendRowRecord
from servewise.simulator import serve_in_background, simulator_config
from tests.gateway.budget_support import engine_at, redis_url_or_skip

if TYPE_CHECKING:
    from servewise.gateway import GatewayServices

MODEL = "Llama-3.1-8B"
MICRO_USD_PER_TOKEN = 1000
SPEND = cast(Table, SpendRowRecord.__table__)
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One simulated Llama-3.1-8B on an L4, 200× faster than real time, for the whole session."""
    db = f"sqlite:///{tmp_path_factory.mktemp('sim-catalog') / 'catalog.db'}"
    config = simulator_config(model=MODEL, gpu="L4", speed=200.0, db_url=db)
    with serve_in_background(config) as url:
        yield url


@pytest.fixture(scope="session")
def slow_simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same replica at real speed (tens of ms per token): a client can hang up mid-stream."""
    db = f"sqlite:///{tmp_path_factory.mktemp('slow-sim-catalog') / 'catalog.db'}"
    config = simulator_config(model=MODEL, gpu="L4", speed=1.0, db_url=db)
    with serve_in_background(config) as url:
        yield url


def config_document(
    upstream_url: str,
    *,
    database_url: str,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A one-pool gateway config (plus ``extra`` top-level keys) as the YAML file would hold it."""
    document: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "timezone": "UTC",
        "pools": [
            {"name": "local", "url": upstream_url, "models": [MODEL], "usd_per_hour": 3.6, "tokens_per_s": 1}
        ],
        "routing": {"poll_interval_s": 0.5},
        "cache": {"exact": False},
    }
    if redis_prefix is not None:
        document["redis_prefix"] = redis_prefix
    document.update(extra)
    return document


@dataclass
class RunningGateway:
    """A gateway answering on ``url``; ``engine`` reads its database."""

    url: str
    engine: Engine
    services: GatewayServices | None = None
    clients: list[openai.OpenAI] = field(default_factory=list)

    def client(self, key: str, **kwargs: Any) -> openai.OpenAI:
        """An SDK client (no SDK retries, so a 429 reaches the test); closed when the gateway stops."""
        made = openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kwargs)
        self.clients.append(made)
        return made

    def close_clients(self) -> None:
        for made in self.clients:
            made.close()

    def new_key(self, org: str = "acme", team: str | None = "search", **kwargs: Any) -> str:
        return create_key(
            self.engine, org=org, team=team, name=f"test-{uuid.uuid4().hex[:6]}", **kwargs
        ).plaintext

    def set_budget(self, **kwargs: Any) -> None:
        """A budget through the running gateway's own store (so its definition cache sees it at once)."""
        assert self.services is not None
        store = self.services.store
        defaults: dict[str, Any] = {"window": "monthly", "soft_micro_usd": None, "timezone": "UTC"}
        self.run(store.set_budget(**{**defaults, **kwargs}))

    def run(self, coroutine: Any, timeout_s: float = 10.0) -> Any:
        """Run a coroutine on the gateway's own event loop (its stores live there) and return the result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def usage(self) -> list[Any]:
        """Every budget's current window as the gateway's store counts it."""
        assert self.services is not None
        store = self.services.store

        async def read() -> list[Any]:
            return list(await store.usage(await store.list_budgets(), datetime.now(UTC)))

        return cast(list[Any], self.run(read()))

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return cast(asyncio.AbstractEventLoop, self._loop)

    def ledger(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(select(SPEND).order_by(SPEND.c.id))]

    def ledger_total_micro_usd(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.coalesce(func.sum(SPEND.c.micro_usd), 0))).scalar_one())

    def wait_for_rows(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The ledger once it holds ``count`` rows (the writer flushes every 200 ms), failing after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        rows = self.ledger()
        while len(rows) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            rows = self.ledger()
        assert len(rows) >= count, f"ledger has {len(rows)} rows, expected {count}"
        return rows


def _wait_healthy(url: str, alive: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError(f"the gateway at {url} stopped during start-up")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"the gateway at {url} did not answer /health within {START_TIMEOUT_S:g} s")


class _Server(uvicorn.Server):
    """Remembers its event loop so tests can run coroutines on the gateway's own loop."""

    loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)


def serve_gateway(config: GatewayConfig, policy: Any = None) -> Iterator[RunningGateway]:
    """Serve ``config`` in a thread until the generator is closed (ledger flushed on the way out)."""
    from servewise.gateway import build_services, create_gateway_app, open_gateway_engine

    services = build_services(config, policy=policy)
    port = free_port()
    server = _Server(
        uvicorn.Config(
            create_gateway_app(config, services=services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    engine = open_gateway_engine(config.database_url)
    try:
        _wait_healthy(url, thread.is_alive)
        gateway = RunningGateway(url, engine, services)
        gateway._loop = server.loop  # type: ignore[attr-defined]
        try:
            yield gateway
        finally:
            gateway.close_clients()
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        engine.dispose()


@pytest.fixture
def gateway(simulator_url: str, sqlite_url: str) -> Iterator[RunningGateway]:
    """A gateway on the SQL budget store (SQLite) with the simulator as its one local pool."""
    config = GatewayConfig.model_validate(config_document(simulator_url, database_url=sqlite_url))
    yield from serve_gateway(config)


@pytest.fixture
def redis_prefix() -> str:
    return f"swtest:{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated engine on this test's SQLite file (budget, ledger and alert tests)."""
    yield from engine_at(sqlite_url)


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    yield from engine_at(postgres_url)


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = redis_url_or_skip()
    yield url


def clean_redis(url: str, prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class GatewayProcess:
    """A ``servewise gateway --config`` subprocess; ``kill()`` is ``kill -9``."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_gateway_process(
    config_path: Path, *, port: int | None = None, env: dict[str, str] | None = None
) -> GatewayProcess:
    """``servewise gateway --config PATH --port PORT`` in a new process, once ``/health`` answers."""
    chosen = port or free_port()
    log_path = config_path.with_name(f"gateway-{chosen}-{uuid.uuid4().hex[:4]}.log")
    command = [
        sys.executable,
        "-c",
        "from servewise.cli import main; main()",
        "gateway",
        "--config",
        str(config_path),
        "--port",
        str(chosen),
        "--log-level",
        "debug",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{chosen}"
    try:
        _wait_healthy(url, lambda: process.poll() is None)
    except RuntimeError as err:
        process.kill()
        raise RuntimeError(f"{err}; log:\n{log_path.read_text(errors='replace')[-3000:]}") from None
    return GatewayProcess(url, process, log_path)


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def now_utc() -> datetime:
    return datetime.now(UTC)
