"""The simulator answers like a real vLLM server: the same requests to both give JSON of the same shape (every
field, every type; values differ), the same SSE framing and chunk shapes (role chunk, token chunks, the last one
with ``finish_reason``, the usage chunk with ``stream_options.include_usage``, ``[DONE]``), the same length rules,
and the same status, error type and ``param`` for bad input. Each test prints what differs before asserting."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import RealVllm
from .shapes import json_shape, shape_diff, sse_payloads

pytestmark = pytest.mark.realvllm

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
HELLO = [{"role": "user", "content": "Say hello to the simulator."}]
SIMULATOR_ONLY = ("data[].servewise",)
"""Fields the simulator adds on purpose: what it simulates and how it counts tokens (``/v1/models``)."""


def _post(base_url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{base_url}{path}", json=body, timeout=60)


def _request(path: str, model: str, **extra: Any) -> dict[str, Any]:
    """A request of fixed output length: random weights, so vLLM's ``ignore_eos`` (the simulator ignores it)."""
    body: dict[str, Any] = {"model": model, "max_tokens": 4, "ignore_eos": True, "temperature": 0.0, **extra}
    if path == CHAT:
        body["messages"] = HELLO
    else:
        body["prompt"] = "Say hello to the simulator."
    return body


def _differences(real: Any, simulated: Any, *, allowed_extra: tuple[str, ...] = ()) -> list[str]:
    problems = shape_diff(json_shape(real), json_shape(simulated), allowed_extra=allowed_extra)
    for problem in problems:
        print(f"real vLLM vs simulator: {problem}")
    return problems


def test_health_and_model_list(real_vllm: RealVllm, simulated_twin: str) -> None:
    for url in (real_vllm.base_url, simulated_twin):
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    real = httpx.get(f"{real_vllm.base_url}/v1/models", timeout=10).json()
    simulated = httpx.get(f"{simulated_twin}/v1/models", timeout=10).json()
    assert _differences(real, simulated, allowed_extra=SIMULATOR_ONLY) == []
    assert [m["id"] for m in real["data"]] == [m["id"] for m in simulated["data"]] == [real_vllm.model]
    assert (
        real["data"][0]["max_model_len"] == simulated["data"][0]["max_model_len"] == real_vllm.max_model_len
    )


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_whole_answers_have_the_same_shape(real_vllm: RealVllm, simulated_twin: str, path: str) -> None:
    answers = [
        _post(url, path, _request(path, real_vllm.model)) for url in (real_vllm.base_url, simulated_twin)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.headers["content-type"] == "application/json" for a in answers)
    real, simulated = (a.json() for a in answers)
    assert _differences(real, simulated) == []
    for answer in (real, simulated):
        assert answer["usage"]["completion_tokens"] == 4
        assert answer["choices"][0]["finish_reason"] == "length"


def _chunk_kinds(payloads: list[str]) -> dict[str, list[Any]]:
    """The stream's chunks by role: ``role`` (chat's opening delta), ``token``, ``last`` (with the finish reason),
    ``usage`` (no choices); raises if they come in another order."""
    kinds: dict[str, list[Any]] = {"role": [], "token": [], "last": [], "usage": []}
    order: list[str] = []
    for payload in payloads[:-1]:
        chunk = json.loads(payload)
        choices = chunk["choices"]
        if not choices:
            kind = "usage"
        elif choices[0].get("finish_reason") is not None:
            kind = "last"
        elif "role" in choices[0].get("delta", {}):
            kind = "role"
        else:
            kind = "token"
        kinds[kind].append(chunk)
        if not order or order[-1] != kind:
            order.append(kind)
    assert order in (
        ["role", "token", "last", "usage"], ["role", "token", "last"], ["token", "last", "usage"], ["token", "last"],
        ["role", "last", "usage"], ["role", "last"], ["last", "usage"], ["last"],
    ), f"chunks out of order: {order}"  # fmt: skip
    return kinds


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
def test_streams_have_the_same_framing_and_chunks(
    real_vllm: RealVllm, simulated_twin: str, path: str, include_usage: bool
) -> None:
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    body = _request(path, real_vllm.model, **extra)
    answers = [_post(url, path, body) for url in (real_vllm.base_url, simulated_twin)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.headers["content-type"].startswith("text/event-stream") for a in answers)
    real, simulated = (_chunk_kinds(sse_payloads(a.text)) for a in answers)
    problems = []
    for kind in ("role", "token", "last", "usage"):
        assert bool(real[kind]) == bool(simulated[kind]) or kind == "token", f"{kind} chunk on one side only"
        shapes = [json_shape(chunk) for chunk in real[kind] + simulated[kind]]
        for shape in shapes[1:]:
            for problem in shape_diff(shapes[0], shape, path=kind):
                print(f"real vLLM vs simulator: {problem}")
                problems.append(problem)
    assert problems == []
    assert len(real["role"]) == len(simulated["role"]) == (1 if path == CHAT else 0)
    assert len(real["last"]) == len(simulated["last"]) == 1
    for side in (real, simulated):
        if include_usage:
            assert len(side["usage"]) == 1 and side["usage"][0]["usage"]["completion_tokens"] == 4
        else:
            assert not side["usage"]
            assert all("usage" not in chunk for chunks in side.values() for chunk in chunks)


def test_lengths_follow_the_same_rules(real_vllm: RealVllm, simulated_twin: str) -> None:
    """Token-id prompts count exactly on both; ``max_tokens`` beyond the room left is cut to it (``length``);
    ``/v1/completions`` without ``max_tokens`` stops after 16 tokens."""
    room = 24
    prompt = [5] * (real_vllm.max_model_len - room)
    for url in (real_vllm.base_url, simulated_twin):
        cut = _post(url, COMPLETIONS, {"model": real_vllm.model, "prompt": prompt, "max_tokens": 100,
                                       "ignore_eos": True})  # fmt: skip
        assert cut.status_code == 200, cut.text
        usage = cut.json()["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (len(prompt), room), url
        assert cut.json()["choices"][0]["finish_reason"] == "length"
        default = _post(url, COMPLETIONS, {"model": real_vllm.model, "prompt": [5] * 10, "ignore_eos": True})
        assert default.json()["usage"]["completion_tokens"] == 16, url


def _bad_requests(model: str, max_model_len: int) -> list[tuple[str, str, object]]:
    hi = [{"role": "user", "content": "hi"}]
    return [
        ("chat without messages", CHAT, {"model": model}),
        ("chat with no message", CHAT, {"model": model, "messages": []}),
        ("chat to an unknown model", CHAT, {"model": "no-such-model", "messages": hi}),
        ("chat with max_tokens 0", CHAT, {"model": model, "messages": hi, "max_tokens": 0}),
        ("chat with max_tokens -1", CHAT, {"model": model, "messages": hi, "max_tokens": -1}),
        ("chat with a text max_tokens", CHAT, {"model": model, "messages": hi, "max_tokens": "many"}),
        ("chat with max_tokens > max_model_len", CHAT,
         {"model": model, "messages": hi, "max_tokens": max_model_len + 1}),
        ("chat with temperature 3", CHAT, {"model": model, "messages": hi, "temperature": 3}),
        ("completion without prompt", COMPLETIONS, {"model": model}),
        ("completion to an unknown model", COMPLETIONS, {"model": "no-such-model", "prompt": "hi"}),
        ("completion of a prompt > max_model_len", COMPLETIONS,
         {"model": model, "prompt": [5] * (max_model_len + 1)}),
        ("completion with no room for one token", COMPLETIONS, {"model": model, "prompt": [5] * max_model_len}),
        ("streamed completion with temperature 5", COMPLETIONS,
         {"model": model, "prompt": "hi", "temperature": 5, "stream": True}),
    ]  # fmt: skip


def test_bad_requests_get_the_same_errors(real_vllm: RealVllm, simulated_twin: str) -> None:
    """Status, body shape, error ``type`` and ``param`` agree for every case (messages may be worded apart)."""
    problems = []
    for name, path, body in _bad_requests(real_vllm.model, real_vllm.max_model_len):
        real, simulated = (_post(url, path, body) for url in (real_vllm.base_url, simulated_twin))
        print(f"{name}: real {real.status_code} {real.text[:160]!r}; simulator {simulated.status_code} "
              f"{simulated.text[:160]!r}")  # fmt: skip
        if real.status_code != simulated.status_code:
            problems.append(f"{name}: status {real.status_code} vs {simulated.status_code}")
            continue
        assert real.status_code >= 400, f"{name}: the real server accepted it"
        shapes = shape_diff(json_shape(real.json()), json_shape(simulated.json()))
        problems += [f"{name}: {problem}" for problem in shapes]
        for field in ("type", "param", "code"):
            if real.json()["error"][field] != simulated.json()["error"][field]:
                problems.append(f"{name}: error.{field} {real.json()['error'][field]!r} vs "
                                f"{simulated.json()['error'][field]!r}")  # fmt: skip
    broken = [
        httpx.post(
            f"{url}{CHAT}", content=b"{not json", headers={"content-type": "application/json"}, timeout=10
        )
        for url in (real_vllm.base_url, simulated_twin)
    ]
    if [b.status_code for b in broken] != [400, 400] or broken[0].json()["error"]["type"] != broken[1].json()[
        "error"
    ]["type"]:
        problems.append(f"malformed JSON: {broken[0].text[:120]!r} vs {broken[1].text[:120]!r}")
    nowhere = [httpx.get(f"{url}/v1/nothing", timeout=10) for url in (real_vllm.base_url, simulated_twin)]
    if [(n.status_code, n.json()) for n in nowhere] != [(404, {"detail": "Not Found"})] * 2:
        problems.append(f"unknown route: {nowhere[0].text!r} vs {nowhere[1].text!r}")
    for problem in problems:
        print(f"real vLLM vs simulator: {problem}")
    assert problems == []
