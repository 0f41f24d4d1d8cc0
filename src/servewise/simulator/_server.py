"""Running the app: in the foreground for ``servewise simulate``, or in a background thread for tests, benchmarks
and ``servewise bench`` (``serve_in_background`` yields the base URL once ``/health`` answers)."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from servewise.errors import ServewiseError

from ._app import create_app
from ._config import SimulatorConfig

__all__ = ["serve", "serve_in_background"]

START_TIMEOUT_S = 20.0


def _server(config: SimulatorConfig, host: str, port: int, log_level: str) -> uvicorn.Server:
    settings = uvicorn.Config(
        create_app(config), host=host, port=port, log_level=log_level, access_log=False, lifespan="on"
    )
    return uvicorn.Server(settings)


def serve(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info"
) -> None:
    """Serve until interrupted (Ctrl-C), owning the process: the objects built at start-up (the imported packages,
    the catalog, the app) are moved out of the garbage collector's reach (``gc.freeze``) — a full collection
    walking them paused the event loop ~190 ms at 1,000 streams, making every token due meanwhile late."""
    gc.collect()
    gc.freeze()
    _server(config, host, port, log_level).run()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_in_background(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Start the simulator in a daemon thread (``port`` 0: a free one), wait until ``/health`` answers, yield its
    base URL (``http://127.0.0.1:PORT``) and stop it, joining the thread, on exit."""
    chosen = port or _free_port(host)
    server = _server(config, host, chosen, "warning")
    thread = threading.Thread(target=server.run, name=f"servewise-simulator-{chosen}", daemon=True)
    thread.start()
    url = f"http://{host}:{chosen}"
    try:
        _wait_healthy(url, thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)


def _wait_healthy(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                raise ServewiseError(f"the simulator at {url} did not start (is the port in use?)")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise ServewiseError(f"the simulator at {url} did not answer /health within {START_TIMEOUT_S:g} s")
