"""Synthetic prompts of a wanted length in tokens, different for every request.

Why different: engines cache prompt prefixes (vLLM's automatic prefix caching is on by default), so identical
prompts would measure the cache, not prefill. Each prompt is words drawn by a generator seeded with the request's
index, so two requests share no prefix beyond chance while a run stays reproducible.

Length: the simulator's own estimate (``servewise.simulator``'s ``text_tokens``: ⌈characters / 4⌉, OpenAI's rule
of thumb for English, plus ``CHAT_TOKENS_PER_MESSAGE`` for a chat message), so ``servewise simulate`` sees exactly
the prompt length asked for: the text is ``4 × tokens`` characters (chat: less the message's template tokens). A
real server's tokenizer counts differently; the report then uses its ``usage.prompt_tokens``.
"""

from __future__ import annotations

import random

from servewise.simulator import CHARS_PER_TOKEN, CHAT_TOKENS_PER_MESSAGE

__all__ = ["prompt_for_chat", "synthetic_prompt"]

_WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
    "xray", "yankee", "zulu", "amber", "basil", "cedar", "dune", "ember", "fjord", "glade", "heron", "islet",
    "jasper", "kelp", "lotus", "maple", "nectar", "orchid", "pebble", "quartz", "raven", "sage", "thistle",
    "umber", "violet", "willow", "yarrow", "zinnia",
)  # fmt: skip


def synthetic_prompt(tokens: int, index: int = 0) -> str:
    """Text whose estimated length is ``tokens`` (at least 1); ``index`` seeds the words."""
    chars = int(max(1, tokens) * CHARS_PER_TOKEN)
    rng = random.Random(index)
    parts: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:chars]


def prompt_for_chat(tokens: int, index: int = 0) -> str:
    """The content of a one-message chat prompt of ``tokens`` tokens (the template's own tokens taken off)."""
    return synthetic_prompt(max(1, tokens - CHAT_TOKENS_PER_MESSAGE), index)
