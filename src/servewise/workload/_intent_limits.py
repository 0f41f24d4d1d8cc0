"""Intent rules for constraints and priority: named models, quality floors ("70B or bigger"), GPU counts
("no more than 8 GPUs"), GPUs ("H100 only"), providers ("on AWS"), precisions ("fp8"), pricing ("spot"), CPU
serving, and what matters most ("latency matters most", "cheapest").

Why GPU, model and provider names come from the vocabulary: the catalog decides what exists, so a new GPU row is
understood in free text without a code change.
"""

from __future__ import annotations

import re

from ._intent_numbers import NUMBER, number_value
from ._intent_scan import Scan
from ._intent_vocab import PROVIDER_WORDS, IntentVocabulary

__all__ = ["read_constraints", "read_models", "read_priority"]

_NEGATION = r"(?:\bno|\bnot|\bwithout|\bexcept|\bexcluding|\bavoid|\bnever|\bbut not)\s+(?:\w+\s+)?$"
_PRECISIONS = (
    (r"\bnvfp4\b|\bmxfp4\b|\bfp4\b", ["fp4"]),
    (r"\bfp8\b|\b8[\s-]bit\b", ["fp8"]),
    (r"\bint4\b|\b4[\s-]bit\b|\bawq\b|\bgptq\b|\bw4a16\b", ["int4"]),
    (r"\bbf16\b|\bfp16\b|\b16[\s-]bit\b|\bfull precision\b|\bunquantized\b|\bno quantization\b", ["bf16"]),
    (
        r"\bquantiz\w+ (?:is |are )?(?:ok|okay|fine|allowed|acceptable)\b|\bany precision\b",
        ["bf16", "fp8", "int4"],
    ),
)


def read_models(scan: Scan, vocabulary: IntentVocabulary) -> None:
    """Catalog model names written in any spelling ("llama 3.1 70b", "Qwen3-32B")."""
    for pattern, name in vocabulary.model_patterns():
        for m in scan.matches(pattern):
            if re.search(_NEGATION, scan.low[max(0, m.start() - 20) : m.start()]):
                scan.ignore(
                    m.start(), m.end(), "excluding a model is not supported; name the models you allow"
                )
                continue
            if name not in scan.found.models:
                scan.found.models.append(name)
            scan.take(m.start(), m.end(), f"model {name}")


def _gpu_count(scan: Scan) -> None:
    f = scan.found
    units = r"(?:x\s*)?(?:gpus?|cards?|accelerators?|devices?)\b"
    at_most = r"(?:no more than|not more than|at most|max(?:imum)?(?: of)?|up to|limit(?:ed)? to|cap(?:ped)? at|within)"
    fewer = r"(?:fewer than|less than|under|below)"
    patterns = (
        (rf"\b{at_most}\s*(?P<n>{NUMBER})\s*{units}", 0),
        (rf"\b{fewer}\s*(?P<n>{NUMBER})\s*{units}", 1),
        (rf"(?P<n>{NUMBER})\s*{units}\s*(?:max(?:imum)?|at most|or (?:fewer|less)|tops)\b", 0),
        (r"\b(?:a single|single|one)\s*(?:gpu|card)\b", 0),
    )
    for pattern, minus in patterns:
        for m in scan.matches(pattern):
            count = int(number_value(m.group("n"))) - minus if "n" in m.groupdict() else 1
            if count < 1:
                scan.ignore(m.start(), m.end(), "a GPU limit must allow at least one GPU")
                continue
            f.max_gpus = count
            scan.take(m.start(), m.end(), f"max_gpus {count}")


def read_constraints(scan: Scan, vocabulary: IntentVocabulary) -> None:
    """Quality floor, GPU count, GPUs, providers, precisions, pricing and CPU serving."""
    f = scan.found
    floor = (
        rf"(?:(?:at least|min(?:imum)?|>=?|over|above|bigger than|larger than)\s*(?:a\s+)?(?P<a>{NUMBER})\s*b\b"
        rf"|(?P<b>{NUMBER})\s*b(?:\+|\s+(?:or|and)\s+(?:bigger|larger|more|above|up|over|higher)\b)"
        rf"|(?P<c>{NUMBER})\s*b[\s-](?:class|parameters?|params?|models?)\b)(?:\s*(?:parameters?|params?|models?))?"
    )
    for m in scan.matches(floor):
        value = number_value(m.group("a") or m.group("b") or m.group("c"))
        f.min_params_b = value
        scan.take(m.start(), m.end(), f"min_params_b {value:g} (quality floor, billions of parameters)")
    _gpu_count(scan)
    for m in scan.matches(
        r"(?<![\w.])(?:(?P<n>\d+)\s*x\s*)?(?P<w>[a-z]+\d*[a-z0-9]*(?:-[a-z0-9]+)*)(?![\w])"
    ):
        original = scan.text[m.start("w") : m.end("w")]
        shown = vocabulary.gpu_word(original) or vocabulary.gpu_word(original.split("-")[0])
        if shown is None:
            continue
        names = vocabulary.gpu_names(shown)
        if re.search(_NEGATION, scan.low[max(0, m.start() - 20) : m.start()]):
            scan.ignore(m.start(), m.end(), "excluding a GPU is not supported; name the GPUs you allow")
            continue
        after = re.match(r"\s*(?:only|gpus?|cards?)\b", scan.low[m.end() :])
        end = m.end() + (after.end() if after else 0)
        if shown not in f.gpus:
            f.gpus.append(shown)
        if m.group("n"):
            f.max_gpus = f.max_gpus or int(m.group("n"))
        scan.take(
            m.start(),
            end,
            f"gpus {shown} ({', '.join(names)})" + (f", max_gpus {m.group('n')}" if m.group("n") else ""),
        )
    mentions = [(m, provider) for pattern, provider in PROVIDER_WORDS.items() for m in scan.matches(pattern)]
    for m, provider in sorted(mentions, key=lambda pair: pair[0].start()):  # in the order written
        if provider not in vocabulary.providers:
            scan.ignore(m.start(), m.end(), f"the catalog has no {provider} offers")
            continue
        if re.search(_NEGATION, scan.low[max(0, m.start() - 20) : m.start()]):
            scan.ignore(
                m.start(), m.end(), "excluding a provider is not supported; name the providers you allow"
            )
            continue
        if provider not in f.providers:
            f.providers.append(provider)
        scan.take(m.start(), m.end(), f"providers {provider}")
    for pattern, precisions in _PRECISIONS:
        for m in scan.matches(pattern):
            f.precisions.extend(p for p in precisions if p not in f.precisions)
            scan.take(m.start(), m.end(), f"precisions {', '.join(precisions)}")
    for pattern, pricing in (
        (r"\b(?:3|three)[\s-]years?\b(?:\s+(?:reserved|commit\w*|reservation|plan))?", "reserved-3y"),
        (
            r"\b(?:reserved|commit(?:ted|ment)|savings plan"
            r"|(?:1|one)[\s-]years?\s+(?:reserved|commit\w*|reservation))\b"
            r"(?:\s+(?:instances?|pricing|capacity))?",
            "reserved-1y",
        ),
        (r"\bspot(?:\s+(?:instances?|pricing|capacity|vms?))?\b|\bpreemptible\b|\binterruptible\b", "spot"),
        (r"\bon[\s-]demand\b", "on-demand"),
    ):
        for m in scan.matches(pattern):
            f.pricing = f.pricing or pricing
            scan.take(m.start(), m.end(), f"pricing {pricing}")
    for m in scan.matches(
        r"\bon (?:a )?cpus?\b|\bcpu[\s-]only\b|\bcpus? only\b|\bwithout (?:a )?gpus?\b|\bno gpus?\b"
    ):
        f.cpu = True
        scan.take(m.start(), m.end(), "cpu true (consider CPU instances)")
    for m in scan.matches(r"\bno cpus?\b|\bgpu[\s-]only\b|\bnot on cpus?\b"):
        f.cpu = False
        scan.take(m.start(), m.end(), "cpu false (no CPU instances)")


def read_priority(scan: Scan) -> None:
    """What matters most when several options meet every target: cost, latency, or a balance."""
    rules = (
        (
            r"\blatency (?:matters|is)\s+(?:the\s+)?(?:most|key|critical|crucial|everything|(?:top\s+)?priority|"
            r"most important)\b|\bfastest\b|\bas fast as possible\b|\blowest latency\b|\bspeed (?:matters most|is key|"
            r"is critical)\b|\bprioriti[sz]e (?:latency|speed)\b|\blatency first\b|\bperformance matters most\b",
            "latency",
        ),
        (
            r"\bcheapest\b|\blowest cost\b|\b(?:cost|price) (?:matters most|is (?:key|the priority|what matters))\b"
            r"|\bas cheap as possible\b|\bminimi[sz]e (?:the )?costs?\b|\bprioriti[sz]e cost\b|\bcost first\b"
            r"|\bon a (?:tight )?budget\b|\bcheap\b",
            "cost",
        ),
        (
            r"\bbalanced?\b(?:\s+(?:cost and latency|between cost and latency))?|\btrade[\s-]?off\b",
            "balanced",
        ),
    )
    for pattern, priority in rules:
        for m in scan.matches(pattern):
            scan.found.priority = scan.found.priority or priority
            scan.take(m.start(), m.end(), f"priority {priority}")
