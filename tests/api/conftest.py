"""A real uvicorn server on 127.0.0.1 (a free port, in a thread) serving ``create_app`` over one SQLite catalog
shared by the session (the API only reads it), and one small plan document planned once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from servewise.api import create_app


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a free port until the block ends; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def api_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('api') / 'catalog.db'}"


@pytest.fixture(scope="session")
def base_url(api_db_url: str) -> Iterator[str]:
    with serving(create_app(db_url=api_db_url)) as url:
        yield url


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=60) as client:
        yield client


SMALL_PLAN_REQUEST = {"use_case": "chatbot_conversational", "overrides": {"traffic": {"qps": 5}}, "top": 5}


@pytest.fixture(scope="session")
def plan_doc(base_url: str) -> dict[str, Any]:
    """One small plan (chatbot at 5 req/s), planned once for the session."""
    response = httpx.post(f"{base_url}/api/v1/plan", json=SMALL_PLAN_REQUEST, timeout=60)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document
