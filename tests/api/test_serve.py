"""``servewise serve`` as a user runs it: a real process answering the API and the web UI, and one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from servewise.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_api_docs_and_pages(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SERVEWISE_DB_URL": f"sqlite:///{tmp_path / 'catalog.db'}"}
    command = [
        str(Path(sys.executable).with_name("servewise")),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/v1/catalog/health", timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1].decode()
                assert time.monotonic() < deadline, "servewise serve did not answer within 60 s"
                time.sleep(0.1)
        assert health.status_code == 200
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Servewise API"
        assert httpx.get(f"{base}/").status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_serve_bad_db_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--db-url", "nosuchdriver://x/y"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err
