"""Prompt token counts and synthetic response text.

No tokenizer runs offline here: ``tiktoken`` downloads its BPE files at run time, and ``tokenizers`` needs a
model's ``tokenizer.json``, which no installed package ships. So prompt tokens are an **estimate**: ⌈characters / 4⌉
per text, the rule of thumb OpenAI gives for English text ("one token generally corresponds to ~4 characters",
OpenAI Help Center, *What are tokens and how to count them?*), plus a few tokens per chat message for the chat
template's role markers (``CHAT_TOKENS_PER_MESSAGE``, an assumption near Llama 3's 4–5 header tokens). The server
says so in ``/v1/models`` and in the ``x-servewise-token-count`` response header.

Response text is synthetic: one short word per output token, cycling through a fixed list, so a client that
counts words sees the token count the simulation produced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "CHARS_PER_TOKEN",
    "CHAT_TOKENS_PER_MESSAGE",
    "TOKEN_COUNT_METHOD",
    "TOKEN_TEXTS",
    "chat_prompt_tokens",
    "synthetic_text",
    "text_tokens",
]

CHARS_PER_TOKEN = 4.0
CHAT_TOKENS_PER_MESSAGE = 4
TOKEN_COUNT_METHOD = "estimate: ceil(characters / 4) per text + 4 per chat message (no tokenizer offline)"
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do")
TOKEN_TEXTS = tuple(f" {word}" for word in _WORDS)
"""The text of output token ``i`` is ``TOKEN_TEXTS[i % len(TOKEN_TEXTS)]``."""


def text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (at least 1 for non-empty text, 0 for empty)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def chat_prompt_tokens(contents: Sequence[str]) -> int:
    """Estimated prompt tokens of chat messages with these contents (at least 1)."""
    return max(1, sum(text_tokens(c) + CHAT_TOKENS_PER_MESSAGE for c in contents))


def synthetic_text(start: int, count: int) -> str:
    """The text of output tokens ``start`` … ``start + count − 1``: one word (with a leading space) per token."""
    return "".join(TOKEN_TEXTS[i % len(TOKEN_TEXTS)] for i in range(start, start + count))
