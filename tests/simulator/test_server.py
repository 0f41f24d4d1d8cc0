"""The simulator as clients see it: the official ``openai`` SDK (streaming and not), ``/metrics`` parsed by
``prometheus_client``'s own parser, the scheduler's behaviours under load, and OpenAI-format errors — against a
real uvicorn server on a free port."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewise.perf import SimEngine
from servewise.simulator import SimulatorConfig, serve_in_background

from .conftest import variant


def _metrics(url: str) -> dict[str, float]:
    """Sample name → value of the replica's series (one label set per name)."""
    text = httpx.get(f"{url}/metrics").text
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_chat_non_streaming_and_streaming_with_usage(l4_config: SimulatorConfig) -> None:
    with serve_in_background(l4_config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == [l4_config.served_model]
        reply = client.chat.completions.create(
            model=l4_config.served_model,
            messages=[{"role": "user", "content": "x" * 400}],
            max_tokens=7,
            temperature=0.7,
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 7
        assert reply.usage.prompt_tokens == 100 + 4  # 400 characters / 4 + one chat message
        assert reply.choices[0].finish_reason == "length"
        assert len(reply.choices[0].message.content.split()) == 7  # type: ignore[union-attr]

        chunks = list(
            client.chat.completions.create(
                model=l4_config.model,  # the catalog name is accepted too
                messages=[{"role": "user", "content": "hello"}],
                max_tokens=5,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        content = [c.choices[0].delta.content for c in chunks if c.choices]
        assert len(content) == 5 and all(content)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 5


def test_completions_stop_and_default_length(l4_config: SimulatorConfig) -> None:
    with serve_in_background(l4_config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stopped = client.completions.create(
            model=l4_config.served_model, prompt=[1] * 30, max_tokens=20, stop="dolor"
        )
        assert stopped.choices[0].finish_reason == "stop"
        assert stopped.choices[0].text == " lorem ipsum "
        assert stopped.usage is not None and stopped.usage.prompt_tokens == 30
        assert stopped.usage.completion_tokens == 3
        streamed = client.completions.create(
            model=l4_config.served_model, prompt="hi", max_tokens=3, stream=True
        )
        assert "".join(c.choices[0].text for c in streamed) == " lorem ipsum dolor"
        free = client.completions.create(
            model=l4_config.served_model, prompt="hi"
        )  # length drawn: 256 (fixed)
        assert free.usage is not None and free.usage.completion_tokens == 256
        assert free.choices[0].finish_reason == "stop"


def test_metrics_have_vllm_names_labels_and_counts(l4_config: SimulatorConfig) -> None:
    with serve_in_background(l4_config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        for _ in range(3):
            client.completions.create(model=l4_config.served_model, prompt=[7] * 40, max_tokens=4)
        text = httpx.get(f"{url}/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in (
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "vllm:time_to_first_token_seconds",
            "vllm:inter_token_latency_seconds",
            "vllm:time_per_output_token_seconds",
            "vllm:e2e_request_latency_seconds",
            "vllm:prompt_tokens",
            "vllm:generation_tokens",
            "vllm:num_preemptions",
        ):
            assert name in families, name
            assert all(s.labels.get("model_name") == l4_config.served_model for s in families[name].samples)
        values = _metrics(url)
        assert values["vllm:prompt_tokens_total"] == 120
        assert values["vllm:generation_tokens_total"] == 12
        assert values["vllm:time_to_first_token_seconds_count"] == 3
        assert values["vllm:inter_token_latency_seconds_count"] == 9
        assert values["vllm:e2e_request_latency_seconds_count"] == 3
        assert values["vllm:num_requests_running"] == 0
        buckets = [
            s.labels["le"] for s in families["vllm:time_to_first_token_seconds"].samples if "le" in s.labels
        ]
        assert buckets[:3] == ["0.001", "0.005", "0.01"] and buckets[-2:] == ["2560.0", "+Inf"]


async def _ttfts(url: str, model: str, n: int, max_tokens: int) -> list[float]:
    """Send ``n`` streaming requests at once; seconds to each one's first token, in the order they were sent."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

    async def one(start: float) -> float:
        stream = await client.completions.create(
            model=model, prompt=[1] * 64, max_tokens=max_tokens, stream=True
        )
        first = None
        async for _ in stream:
            first = first or time.perf_counter() - start
        assert first is not None
        return first

    async with client:
        start = time.perf_counter()
        return list(await asyncio.gather(*(one(start) for _ in range(n))))


def _poll_running(url: str, stop: list[bool], seen: list[float]) -> None:
    with httpx.Client() as client:
        while not stop:
            text = client.get(f"{url}/metrics").text
            for family in text_string_to_metric_families(text):
                if family.name == "vllm:num_requests_running":
                    seen.append(family.samples[0].value)


def test_a_saturated_replica_queues_later_requests(l4_config: SimulatorConfig) -> None:
    """8 sequence slots, 32 requests at once: the first 8 run, the rest wait their turn (larger TTFT) and the
    running count never exceeds max_num_seqs."""
    import threading

    config = variant(l4_config, engine=SimEngine(8, 2048, 1750), speed=5.0)
    with serve_in_background(config) as url:
        stop: list[bool] = []
        seen: list[float] = []
        poller = threading.Thread(target=_poll_running, args=(url, stop, seen))
        poller.start()
        try:
            ttfts = asyncio.run(_ttfts(url, config.served_model, 32, 6))
        finally:
            stop.append(True)
            poller.join()
        ordered = sorted(ttfts)
        for wave in (1, 2, 3):  # four waves of 8: nobody in a wave starts before the one ahead of it has
            assert min(ordered[8 * wave :]) > max(ordered[: 8 * wave]), f"wave {wave} overlaps the one before"
        assert seen and max(seen) <= 8
        assert 8 in seen
        assert _metrics(url)["vllm:request_success_total"] == 32


def test_a_tiny_kv_cache_preempts_and_queues(l4_config: SimulatorConfig) -> None:
    """40 blocks of 16 tokens: 6 requests of 64 + 60 tokens cannot all grow; the last running one is preempted
    (vllm:num_preemptions) and every request still completes."""
    config = variant(l4_config, engine=SimEngine(16, 2048, 40), speed=50.0)
    with serve_in_background(config) as url:
        asyncio.run(_ttfts(url, config.served_model, 6, 60))
        values = _metrics(url)
        assert values["vllm:num_preemptions_total"] > 0
        assert values["vllm:e2e_request_latency_seconds_count"] == 6
        assert values["vllm:kv_cache_usage_perc"] == 0.0


def test_errors_use_the_openai_format(l4_config: SimulatorConfig) -> None:
    with serve_in_background(l4_config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            client.completions.create(model="no-such-model", prompt="hi", max_tokens=2)
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as too_long:
            client.completions.create(model=l4_config.served_model, prompt=[1] * 10, max_tokens=10**6)
        assert too_long.value.code == "context_length_exceeded"
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model=l4_config.served_model, prompt="hi", max_tokens=2, n=2)
        for body in ({"model": l4_config.served_model}, {"messages": "nope"}, {"model": 3, "messages": []}):
            response = httpx.post(f"{url}/v1/chat/completions", json=body)
            assert response.status_code == 400
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"]
        broken = httpx.post(
            f"{url}/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and "error" in broken.json()


def test_a_full_queue_answers_429(l4_config: SimulatorConfig) -> None:
    config = variant(l4_config, engine=SimEngine(1, 2048, 1750), max_waiting=2, speed=1.0)
    with serve_in_background(config) as url:

        async def burst() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"model": config.served_model, "prompt": [1] * 8, "max_tokens": 3}
                responses = await asyncio.gather(
                    *(client.post(f"{url}/v1/completions", json=body) for _ in range(8))
                )
                return [r.status_code for r in responses]

        codes = asyncio.run(burst())
        assert codes.count(429) >= 1 and codes.count(200) >= 3
        assert set(codes) <= {200, 429}


def test_health_and_models_label_the_estimates(l4_config: SimulatorConfig) -> None:
    import threading

    before = threading.active_count()
    with serve_in_background(l4_config) as url:
        assert threading.active_count() > before
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.get(f"{url}/v1/models")
        card = response.json()["data"][0]["servewise"]
        assert card["token_count"].startswith("estimate")
        assert card["response_text"] == "synthetic"
        assert response.headers["x-servewise-token-count"].startswith("estimate")
    assert threading.active_count() == before  # the server thread was joined
