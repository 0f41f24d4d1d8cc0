"""``servewise simulate``: bad input is one line and exit 2; the real command serves the OpenAI API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from servewise.errors import UsageError
from servewise.simulator import config_from_plan

from .conftest import CliResult


def test_needs_a_configuration(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    code, _, err = cli("simulate")
    assert code == 2 and "--model and --gpu" in err and "Traceback" not in err
    code, _, err = cli("simulate", "--model", "Llama-3.1-8B", "--gpu", "NoSuchGPU")
    assert code == 2 and "unknown gpu" in err
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    code, _, err = cli("simulate", "--plan", str(bad))
    assert code == 2 and "is not JSON" in err
    code, _, err = cli("simulate", "--plan", str(bad), "--model", "Llama-3.1-8B")
    assert code == 2 and "not both" in err
    code, _, err = cli("simulate", "--plan", str(tmp_path / "missing.json"))
    assert code == 2 and "does not exist" in err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_command_serves_and_the_openai_sdk_streams(catalog_url: str) -> None:
    port = _free_port()
    command = [sys.executable, "-c", "from servewise.cli import main; main()", "simulate", "--model",
               "Llama-3.1-8B", "--gpu", "L4", "--port", str(port), "--speed", "20"]  # fmt: skip
    env = {**os.environ, "SERVEWISE_DB_URL": catalog_url}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        stream = client.chat.completions.create(
            model="Llama-3.1-8B", messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True
        )
        assert len([c for c in stream if c.choices and c.choices[0].delta.content]) == 4
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert b"simulating Llama-3.1-8B bf16 on 1xL4" in err


def test_a_plan_option_is_simulated_as_written(
    cli: Callable[..., CliResult], tmp_path: Path, catalog_url: str
) -> None:
    plan = tmp_path / "plan.json"
    code, _, err = cli("plan", "-u", "chatbot_conversational", "--qps", "20", "-o", str(plan))
    assert code == 0, err
    document = json.loads(plan.read_text())
    option = document["options"][0]
    config = config_from_plan(document, 1, db_url=catalog_url)
    engine = option["candidate"]["engine"]
    assert config.model == option["candidate"]["model"] and config.gpu == option["candidate"]["gpu"]
    assert config.engine.max_num_seqs == engine["max_num_seqs"]
    assert config.engine.max_num_batched_tokens == engine["max_num_batched_tokens"]
    assert (
        config.engine.kv_blocks
        == option["perf"]["memory"]["kv_capacity_tokens"] // engine["block_size_tokens"]
    )
    assert config.max_model_len == option["perf"]["memory"]["max_model_len"]
    assert config.output_tokens.mean == document["workload"]["traffic"]["output_tokens"]["mean"]
    last = len(document["options"])
    with pytest.raises(UsageError, match=f"rank {last + 1}; pick --option 1 to {last}"):
        config_from_plan(document, last + 1, db_url=catalog_url)
    with pytest.raises(UsageError, match="no options"):
        config_from_plan({"options": []}, 1, db_url=catalog_url)
