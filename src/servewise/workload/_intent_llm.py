"""Optional LLM extraction: ask an OpenAI-compatible endpoint for workload JSON.

Why the answer is never trusted: the reply is parsed as JSON and validated by the same ``Workload`` model and catalog
names as the rules' output; any failure (network, timeout, HTTP error, prose instead of JSON, an invalid or unknown
field, an unknown use case or GPU) raises ``IntentLlmError`` with a one-line reason, and ``extract_intent`` falls back
to the rules and records that reason. The call goes only to the URL the user configured, with a short timeout and no
retries.
"""

from __future__ import annotations

import json
import re
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from servewise.catalog import resolve_model
from servewise.errors import ServewiseError

from ._build import build_workload
from ._intent_vocab import IntentVocabulary
from ._model import Workload

__all__ = ["ENV_KEY", "ENV_MODEL", "ENV_URL", "IntentLlmError", "llm_workload", "system_prompt"]

ENV_URL = "SERVEWISE_INTENT_LLM_URL"
ENV_KEY = "SERVEWISE_INTENT_LLM_KEY"
ENV_MODEL = "SERVEWISE_INTENT_LLM_MODEL"
MAX_REPLY_TOKENS = 600
"""Enough for a workload object (about 150–300 tokens); caps the cost and time of a rambling reply."""


class IntentLlmError(ServewiseError):
    """The LLM endpoint gave no usable workload; the message is the reason recorded in ``assumptions``."""


def system_prompt(vocabulary: IntentVocabulary) -> str:
    """Instructions with the workload JSON schema and the use-case templates, so any model can answer."""
    schema = json.dumps(Workload.model_json_schema(), separators=(",", ":"))
    templates = "\n".join(
        f"- {u.name}: {u.description}; prompt {u.prompt_tokens} / output {u.output_tokens} tokens; p95 ttft "
        f"{u.ttft_p95_ms:g} ms, itl {u.itl_p95_ms:g} ms, e2e {u.e2e_p95_ms:g} ms"
        for u in vocabulary.use_cases
    )
    return (
        "You turn a description of an LLM serving workload into JSON for a capacity planner. Reply with ONE JSON "
        "object and nothing else, matching this JSON schema:\n"
        f"{schema}\n"
        "Set use_case to the closest of these templates; the template fills every field you leave out:\n"
        f"{templates}\n"
        "Only set fields the text states or clearly implies. traffic needs qps (average requests per second) or "
        "users with requests_per_user_hour (averaged over 24 hours). Latencies are milliseconds; "
        "budget_usd_month is US dollars per month of 730 hours; constraints.providers are lowercase "
        f"({', '.join(vocabulary.providers)})."
    )


def _json_object(content: str) -> dict[str, Any]:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", content, flags=re.S)
    body = fenced.group(1) if fenced else content
    start, end = body.find("{"), body.rfind("}")
    if start < 0:
        raise IntentLlmError("the LLM reply holds no JSON object")
    try:
        data = json.loads(body[start : end + 1] if end > start else body[start:])
    except json.JSONDecodeError as err:
        raise IntentLlmError(f"the LLM reply is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(data, dict):
        raise IntentLlmError("the LLM reply is JSON but not an object")
    inner = data.get("workload")
    return inner if isinstance(inner, dict) else data


def _check_names(data: dict[str, Any], vocabulary: IntentVocabulary) -> None:
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, dict):
        return
    for gpu in constraints.get("gpus") or []:
        if not vocabulary.gpu_names(str(gpu)):
            raise IntentLlmError(f"the LLM named a GPU the catalog does not know: {gpu!r}")
    for model in constraints.get("models") or []:
        if resolve_model(str(model), vocabulary.models, vocabulary.model_aliases) is None:
            raise IntentLlmError(f"the LLM named a model the catalog does not know: {model!r}")
    for provider in constraints.get("providers") or []:
        if str(provider).lower() not in vocabulary.providers:
            raise IntentLlmError(f"the LLM named a provider the catalog has no offers from: {provider!r}")


def _api_base(url: str) -> str:
    """The SDK's base URL: ``http://host:8000`` and ``http://host:8000/v1`` both mean the ``/v1`` API."""
    trimmed = url.rstrip("/")
    return trimmed if trimmed.endswith("/v1") else f"{trimmed}/v1"


def _complete(client: openai.OpenAI, model: str, messages: list[ChatCompletionMessageParam]) -> str:
    """One chat completion; JSON mode first, and once more without it if the server rejects the parameter."""
    try:
        reply = client.chat.completions.create(
            model=model,
            messages=messages,
            response_format={"type": "json_object"},
            temperature=0,
            max_tokens=MAX_REPLY_TOKENS,
        )
    except openai.BadRequestError:
        reply = client.chat.completions.create(
            model=model,
            messages=messages,
            temperature=0,
            max_tokens=MAX_REPLY_TOKENS,
        )
    content = reply.choices[0].message.content if reply.choices else None
    if not content:
        raise IntentLlmError("the LLM reply is empty")
    return str(content)


def llm_workload(
    text: str,
    vocabulary: IntentVocabulary,
    *,
    base_url: str,
    api_key: str | None,
    model: str | None,
    timeout_s: float,
) -> tuple[dict[str, Any], Workload, str]:
    """(workload file data, validated workload, model used) from the endpoint; ``IntentLlmError`` on any failure."""
    client = openai.OpenAI(
        base_url=_api_base(base_url), api_key=api_key or "unused", timeout=timeout_s, max_retries=0
    )
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": system_prompt(vocabulary)},
        {"role": "user", "content": text},
    ]
    try:
        chosen = model or next(iter(client.models.list().data)).id
        content = _complete(client, chosen, messages)
    except StopIteration:
        raise IntentLlmError("the LLM endpoint lists no models; set SERVEWISE_INTENT_LLM_MODEL") from None
    except openai.APIStatusError as err:
        raise IntentLlmError(f"the LLM endpoint answered HTTP {err.status_code}") from None
    except openai.APITimeoutError:
        raise IntentLlmError(f"the LLM endpoint did not answer within {timeout_s:g} s") from None
    except openai.APIConnectionError:
        raise IntentLlmError(f"cannot reach the LLM endpoint at {base_url}") from None
    except openai.OpenAIError as err:
        raise IntentLlmError(
            f"the LLM call failed: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None
    data = _json_object(content)
    use_case = data.get("use_case")
    names = {u.name for u in vocabulary.use_cases}
    if use_case is not None and use_case not in names:
        raise IntentLlmError(f"the LLM chose an unknown use case {use_case!r}")
    _check_names(data, vocabulary)
    template = vocabulary.template(use_case) if isinstance(use_case, str) else None
    try:
        workload = build_workload(template=template, file_data=data, source="LLM reply")
    except ServewiseError as err:
        raise IntentLlmError(str(err)) from None
    return data, workload, chosen
