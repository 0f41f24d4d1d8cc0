"""One tiny SSE server for the whole session (starting uvicorn is the slow part); each test resets its delays and
counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .tiny_server import TinyServer, running_tiny_server


@pytest.fixture(scope="session")
def _tiny_session() -> Iterator[TinyServer]:
    with running_tiny_server() as server:
        yield server


@pytest.fixture
def tiny(_tiny_session: TinyServer) -> TinyServer:
    _tiny_session.state.reset(ttft_s=0.02, itl_s=0.005, tokens_per_chunk=1)
    return _tiny_session
