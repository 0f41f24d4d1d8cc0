"""The streamed-request client against a real tiny SSE server: what it sends, what it times, how it fails."""

from __future__ import annotations

import asyncio

import pytest

from servewise.bench import Endpoint, OpenAIStreamClient, RequestShape, list_models, synthetic_prompt
from servewise.bench._prompts import prompt_for_chat
from servewise.errors import UsageError
from servewise.simulator._tokens import CHAT_TOKENS_PER_MESSAGE, text_tokens

from .tiny_server import MODEL, TinyServer, free_port


def _send(url: str, shape: RequestShape, **options) -> object:
    async def go():
        async with OpenAIStreamClient(url, model=options.pop("model", MODEL), **options) as client:
            return await client.send(shape, 7)

    return asyncio.run(go())


def test_completions_stream_is_timed_chunk_by_chunk(tiny: TinyServer):
    record = _send(tiny.url, RequestShape(40, 6))
    assert record.ok and record.error is None
    assert len(record.token_times_s) == 6
    assert record.output_tokens == 6 and record.prompt_tokens == 40
    # No token can arrive before the server sends it (token k at ttft + k × itl after the request at the earliest):
    # lower bounds that hold on any machine. Gaps between arrivals have no lower bound — a delayed read delivers
    # two chunks at once.
    for k, arrived_s in enumerate(record.token_times_s):
        assert arrived_s - record.start_s >= tiny.state.ttft_s + k * tiny.state.itl_s * 0.9
    assert list(record.token_times_s) == sorted(record.token_times_s)
    assert record.end_s == record.token_times_s[-1]


def test_the_request_asks_for_usage_and_the_exact_output_length(tiny: TinyServer):
    _send(tiny.url, RequestShape(40, 6))
    body = tiny.state.bodies[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 6 and body["ignore_eos"] is True and body["min_tokens"] == 6
    assert body["model"] == MODEL and text_tokens(body["prompt"]) == 40
    _send(tiny.url, RequestShape(40, 6), ignore_eos=False)
    assert "ignore_eos" not in tiny.state.bodies[-1] and "min_tokens" not in tiny.state.bodies[-1]


def test_chat_role_chunk_is_not_the_first_token(tiny: TinyServer):
    record = _send(tiny.url, RequestShape(40, 3), endpoint=Endpoint.chat)
    assert len(record.token_times_s) == 3
    # The role-only chunk arrives at once; TTFT waits for the first content.
    assert record.token_times_s[0] - record.start_s >= tiny.state.ttft_s
    message = tiny.state.bodies[-1]["messages"][0]
    assert text_tokens(message["content"]) + CHAT_TOKENS_PER_MESSAGE == 40


def test_several_tokens_per_chunk_are_counted_from_usage(tiny: TinyServer):
    tiny.state.tokens_per_chunk = 3
    record = _send(tiny.url, RequestShape(40, 7))
    assert len(record.token_times_s) == 3  # 3 + 3 + 1 tokens
    assert record.output_token_count == 7


def test_server_errors_become_records_not_exceptions(tiny: TinyServer):
    record = _send(tiny.url, RequestShape(40, 3), model="broken")
    assert not record.ok and record.error.startswith("HTTP 500") and "engine died" in record.error
    refused = _send(f"http://127.0.0.1:{free_port()}", RequestShape(40, 3))
    assert not refused.ok and "ConnectError" in refused.error


def test_list_models_and_an_unreachable_endpoint(tiny: TinyServer):
    assert asyncio.run(list_models(tiny.url)) == [MODEL, "other"]
    with pytest.raises(UsageError, match=r"cannot reach .* --model"):
        asyncio.run(list_models(f"http://127.0.0.1:{free_port()}"))


@pytest.mark.parametrize("tokens", [1, 7, 128, 1000])
def test_synthetic_prompts_have_the_estimated_length_and_differ_by_index(tokens: int):
    first, second = synthetic_prompt(tokens, 0), synthetic_prompt(tokens, 1)
    assert text_tokens(first) == tokens == text_tokens(second)
    assert first != second or tokens == 1
    assert synthetic_prompt(tokens, 0) == first  # reproducible
    assert text_tokens(prompt_for_chat(tokens + CHAT_TOKENS_PER_MESSAGE, 3)) == tokens
