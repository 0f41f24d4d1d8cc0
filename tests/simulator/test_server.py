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
    """Sample name → value of the replica's series, summed over label sets (``request_success_total`` has one per
    ``finished_reason``); histogram buckets are left out."""
    text = httpx.get(f"{url}/metrics").text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "le" not in sample.labels:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


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
        assert content[0] == "" and chunks[0].choices[0].delta.role == "assistant"  # vLLM's role chunk
        assert len(content) == 1 + 5 and all(content[1:])
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
        assert stopped.choices[0].model_extra == {"stop_reason": "dolor", "token_ids": None,
                                                  "prompt_logprobs": None, "prompt_token_ids": None,
                                                  "routed_experts": None}  # fmt: skip
        assert stopped.choices[0].text == " lorem ipsum "
        assert stopped.usage is not None and stopped.usage.prompt_tokens == 30
        assert stopped.usage.completion_tokens == 3
        streamed = client.completions.create(
            model=l4_config.served_model, prompt="hi", max_tokens=3, stream=True
        )
        assert "".join(c.choices[0].text for c in streamed) == " lorem ipsum dolor"
        free = client.completions.create(model=l4_config.served_model, prompt="hi")  # vLLM's default: 16
        assert free.usage is not None and free.usage.completion_tokens == 16
        assert free.choices[0].finish_reason == "length"
        chat = client.chat.completions.create(
            model=l4_config.served_model, messages=[{"role": "user", "content": "hi"}]
        )  # chat has no default limit: the drawn natural length, 256 (fixed)
        assert chat.usage is not None and chat.usage.completion_tokens == 256
        assert chat.choices[0].finish_reason == "stop"


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
            "vllm:num_requests_waiting_by_reason",
            "vllm:kv_cache_usage_perc",
            "vllm:time_to_first_token_seconds",
            "vllm:inter_token_latency_seconds",
            "vllm:request_time_per_output_token_seconds",
            "vllm:e2e_request_latency_seconds",
            "vllm:request_queue_time_seconds",
            "vllm:request_prefill_time_seconds",
            "vllm:request_decode_time_seconds",
            "vllm:request_inference_time_seconds",
            "vllm:request_prompt_tokens",
            "vllm:request_generation_tokens",
            "vllm:iteration_tokens_total",
            "vllm:request_num_preemptions",
            "vllm:prompt_tokens",
            "vllm:generation_tokens",
            "vllm:num_preemptions",
            "vllm:request_success",
        ):
            assert name in families, name
            assert all(s.labels.get("model_name") == l4_config.served_model for s in families[name].samples)
            assert all(s.labels.get("engine") == "0" for s in families[name].samples)
        for legacy in ("vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"):
            assert legacy not in families  # removed from vLLM; only behind legacy_metrics
        reasons = {s.labels["finished_reason"]: s.value for s in families["vllm:request_success"].samples
                   if s.name == "vllm:request_success_total"}  # fmt: skip
        assert reasons == {"stop": 0, "length": 3, "abort": 0, "error": 0, "repetition": 0}
        values = _metrics(url)
        assert values["vllm:prompt_tokens_total"] == 120
        assert values["vllm:generation_tokens_total"] == 12
        assert values["vllm:time_to_first_token_seconds_count"] == 3
        assert values["vllm:inter_token_latency_seconds_count"] == 9
        assert values["vllm:e2e_request_latency_seconds_count"] == 3
        assert values["vllm:request_generation_tokens_sum"] == 12
        assert values["vllm:request_prompt_tokens_sum"] == 120
        assert values["vllm:num_requests_running"] == 0
        # Phases add up as vLLM defines them: queue + inference = e2e minus the frontend overhead, and
        # inference = prefill + decode; TPOT per request = decode / (4 - 1).
        assert values["vllm:request_inference_time_seconds_sum"] == pytest.approx(
            values["vllm:request_prefill_time_seconds_sum"] + values["vllm:request_decode_time_seconds_sum"]
        )
        assert values["vllm:request_time_per_output_token_seconds_sum"] == pytest.approx(
            values["vllm:request_decode_time_seconds_sum"] / 3
        )
        assert values["vllm:iteration_tokens_total_sum"] == 120 + 12
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

    # speed 2 and 16 tokens: each wave runs ~0.6 s, long enough for the /metrics poller to see it on a busy machine
    # (at speed 5 and 6 tokens a wave took ~0.1 s, and in one CI run the poller saw none)
    config = variant(l4_config, engine=SimEngine(8, 2048, 1750), speed=2.0)
    with serve_in_background(config) as url:
        stop: list[bool] = []
        seen: list[float] = []
        poller = threading.Thread(target=_poll_running, args=(url, stop, seen))
        poller.start()
        try:
            ttfts = asyncio.run(_ttfts(url, config.served_model, 32, 16))
        finally:
            stop.append(True)
            poller.join()
        ordered = sorted(ttfts)
        for wave in (1, 2, 3):  # four waves of 8: nobody in a wave starts before the one ahead of it has
            assert min(ordered[8 * wave :]) > max(ordered[: 8 * wave]), f"wave {wave} overlaps the one before"
        assert seen and max(seen) <= 8
        assert 8 in seen
        values = _metrics(url)
        assert values["vllm:request_success_total"] == 32
        assert values["vllm:request_queue_time_seconds_count"] == 32
        assert values["vllm:request_queue_time_seconds_sum"] > 0  # three waves waited


def test_a_tiny_kv_cache_preempts_and_queues(l4_config: SimulatorConfig) -> None:
    """40 blocks of 16 tokens: 6 requests of 64 + 60 tokens cannot all grow; the last running one is preempted
    (vllm:num_preemptions) and every request still completes."""
    config = variant(l4_config, engine=SimEngine(16, 2048, 40), speed=50.0)
    with serve_in_background(config) as url:
        asyncio.run(_ttfts(url, config.served_model, 6, 60))
        values = _metrics(url)
        assert values["vllm:num_preemptions_total"] > 0
        assert values["vllm:request_num_preemptions_sum"] == values["vllm:num_preemptions_total"]
        assert values["vllm:e2e_request_latency_seconds_count"] == 6
        assert values["vllm:kv_cache_usage_perc"] == 0.0


def test_errors_use_vllms_format(l4_config: SimulatorConfig) -> None:
    """vLLM's error bodies: ``code`` is the HTTP status, ``type`` the error class (``Bad Request`` for a body
    that does not validate), ``param`` the offending field (tests/realvllm compares them with a real server)."""
    config = variant(l4_config, max_model_len=100)
    with serve_in_background(config) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            client.completions.create(model="no-such-model", prompt="hi", max_tokens=2)
        assert str(missing.value.code) == "404" and "no-such-model" in missing.value.message
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model=config.served_model, prompt="hi", max_tokens=2, n=2)

        def error(path: str, body: object) -> tuple[int, dict[str, object]]:
            response = httpx.post(f"{url}{path}", json=body)
            found = response.json()["error"]
            assert set(found) == {"message", "type", "param", "code"} and found["message"]
            assert found["code"] == response.status_code
            return response.status_code, found

        chat, completions, model = "/v1/chat/completions", "/v1/completions", config.served_model
        hi = [{"role": "user", "content": "hi"}]
        invalid: list[tuple[str, object, str]] = [
            (chat, {"model": model}, "body.messages"),
            (chat, {"messages": "nope"}, "body.messages"),
            (chat, {"model": model, "messages": hi, "max_tokens": "many"}, "body.max_tokens"),
        ]
        for path, body, param in invalid:
            assert error(path, body)[1] | {"message": ""} == {
                "message": "", "type": "Bad Request", "param": param, "code": 400
            }  # fmt: skip
        refused: list[tuple[str, object, str | None]] = [
            (chat, {"model": model, "messages": []}, None),
            (chat, {"model": model, "messages": hi, "max_tokens": 0}, "max_tokens"),
            (chat, {"model": model, "messages": hi, "max_tokens": 101}, "max_tokens"),
            (chat, {"model": model, "messages": hi, "temperature": 3}, "temperature"),
            (completions, {"model": model}, "prompt"),
            (completions, {"model": model, "prompt": [1] * 101, "max_tokens": 1}, "input_tokens"),
            (completions, {"model": model, "prompt": [1] * 100}, "max_tokens"),  # no room left for one token
        ]
        for path, body, wanted in refused:
            status, found = error(path, body)
            assert (status, found["type"], found["param"]) == (400, "BadRequestError", wanted), body
        # A max_tokens that does not fit after the prompt is cut to the room left, as vLLM does.
        cut = client.completions.create(model=model, prompt=[1] * 90, max_tokens=50)
        assert cut.usage is not None and cut.usage.completion_tokens == 10
        assert cut.choices[0].finish_reason == "length"
        assert client.completions.create(prompt=[1] * 4, max_tokens=1, model=model).model == model
        default = httpx.post(
            f"{url}/v1/completions", json={"prompt": "hi", "max_tokens": 1}
        )  # model optional
        assert default.status_code == 200 and default.json()["model"] == model
        broken = httpx.post(
            f"{url}/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and broken.json()["error"]["type"] == "Bad Request"
        nowhere = httpx.get(f"{url}/v1/nothing")
        assert nowhere.status_code == 404 and nowhere.json() == {"detail": "Not Found"}


def test_a_full_queue_answers_503(l4_config: SimulatorConfig) -> None:
    """As vLLM's ``--max-num-queued-reqs``: 503 (clients and load balancers retry elsewhere), counted in
    ``vllm:admission_rejections_total{reason="max_num_queued_reqs"}``."""
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
        assert codes.count(503) >= 1 and codes.count(200) >= 3
        assert set(codes) <= {200, 503}
        assert _metrics(url)["vllm:admission_rejections_total"] == codes.count(503)


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


def test_legacy_metric_names_only_when_asked(l4_config: SimulatorConfig) -> None:
    """``legacy_metrics`` (``servewise simulate --legacy-metrics``) brings back the two names vLLM removed, with
    the values of their successors."""
    with serve_in_background(variant(l4_config, legacy_metrics=True)) as url:
        httpx.post(f"{url}/v1/completions", json={"prompt": [1] * 8, "max_tokens": 3})
        values = _metrics(url)
        assert values["vllm:time_per_output_token_seconds_count"] == 2
        assert (
            values["vllm:time_per_output_token_seconds_sum"] == values["vllm:inter_token_latency_seconds_sum"]
        )
        assert values["vllm:gpu_cache_usage_perc"] == values["vllm:kv_cache_usage_perc"]
