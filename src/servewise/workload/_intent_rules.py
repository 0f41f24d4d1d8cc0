"""Rule-based intent parsing: free text → workload file data, with every default that was filled in said out loud.

The rules (``_intent_slo``, ``_intent_traffic``, ``_intent_limits``) record what the text says; ``assemble`` turns
that into the data a workload file holds (``use_case`` + overrides, as ``servewise plan -f`` reads it), filling the
gaps with the defaults below. Each default is an assumption, not a fact, and each use adds a line to ``assumptions``.

Users → requests per second (``traffic.users × requests_per_user_hour / 3600`` is the *average over 24 h*):

* employees (internal users): ``INTERNAL_REQUESTS_PER_DAY`` requests per employee per working day, sent within
  ``WORKING_HOURS_PER_DAY`` hours, so the peak factor is 24 / 8 = 3;
* users/customers (an all-day service): ``EXTERNAL_REQUESTS_PER_DAY`` per user per day, peak factor
  ``ALL_DAY_PEAK_FACTOR``; monthly active users are ``DAILY_SHARE_OF_MONTHLY`` daily users;
* concurrent users: one request every ``CONCURRENT_SECONDS_BETWEEN_REQUESTS`` seconds each, already the peak;
* code completion: ``COMPLETIONS_PER_WORKING_HOUR`` requests per developer per working hour.
"""

from __future__ import annotations

import re
from typing import Any

from servewise.catalog import UseCaseTemplate
from servewise.errors import UsageError

from ._intent_limits import read_constraints, read_models, read_priority
from ._intent_numbers import NUMBER
from ._intent_scan import Scan
from ._intent_slo import read_budget, read_latency
from ._intent_traffic import read_lengths, read_peaks, read_rates, read_users
from ._intent_vocab import DEFAULT_USE_CASE, LANGUAGES, USE_CASE_CUES, IntentVocabulary

__all__ = [
    "ALL_DAY_PEAK_FACTOR",
    "COMPLETIONS_PER_WORKING_HOUR",
    "CONCURRENT_SECONDS_BETWEEN_REQUESTS",
    "DAILY_SHARE_OF_MONTHLY",
    "EXAMPLE",
    "EXTERNAL_REQUESTS_PER_DAY",
    "INTERNAL_REQUESTS_PER_DAY",
    "SPIKY_PEAK_FACTOR",
    "STREAMED_USE_CASES",
    "WORKING_HOURS_PER_DAY",
    "parse_rules",
    "template_lines",
]

INTERNAL_REQUESTS_PER_DAY = 20.0
WORKING_HOURS_PER_DAY = 8.0
EXTERNAL_REQUESTS_PER_DAY = 10.0
ALL_DAY_PEAK_FACTOR = 2.0
SPIKY_PEAK_FACTOR = 3.0
DAILY_SHARE_OF_MONTHLY = 0.2
CONCURRENT_SECONDS_BETWEEN_REQUESTS = 30.0
COMPLETIONS_PER_WORKING_HOUR = 60.0
STREAMED_USE_CASES = frozenset(
    {"chatbot_conversational", "code_completion", "code_generation_detailed", "document_analysis_rag"}
)
"""Use cases whose answers stream to a person: a latency target that names no metric is time to first token."""
EXAMPLE = '"a support chatbot for 5,000 employees, answers within half a second, under $8k a month"'
_LONG_TEMPLATE = "long_document_summarization"


def _sig(value: float) -> float:
    return float(f"{value:.6g}")


def read_use_case(scan: Scan, vocabulary: IntentVocabulary) -> None:
    """Template names written out, keyword cues with weights, and translation between named languages."""
    f = scan.found
    for template in vocabulary.use_cases:
        pattern = r"\b" + re.escape(template.name).replace("_", r"[_\s-]") + r"\b"
        for m in scan.matches(pattern):
            f.use_case_named = f.use_case_named or template.name
            scan.take(m.start(), m.end(), f"use case {template.name}")
    languages = "|".join(LANGUAGES)
    pair = rf"\b(?:from\s+)?(?P<a>{languages})\s*(?:to|into|->|-|→)\s*(?P<b>{languages})\b"
    for m in scan.matches(pair):
        f.use_case_scores["translation"] = f.use_case_scores.get("translation", 3) + 1
        f.languages.extend([m.group("a"), m.group("b")])
        scan.take(m.start(), m.end(), f"translation {m.group('a')} → {m.group('b')}")
    for pattern, name, weight in USE_CASE_CUES:
        # a cue counts inside text another rule used too ("summaries of 200 words" is a length and a use case);
        # the first cue of a use case counts its weight, each further cue 1
        for m in re.finditer(pattern, scan.low):
            f.use_case_scores[name] = f.use_case_scores[name] + 1 if name in f.use_case_scores else weight
            if scan.is_free(m.start(), m.end()):
                scan.take(m.start(), m.end(), f"use case cue: {name}")
            else:
                scan.matched.append(f'"{scan.phrase(m.start(), m.end())}" → use case cue: {name}')
    if f.use_case_scores.get("translation"):
        for m in scan.matches(rf"\b(?:{languages})\b|\b(?:{NUMBER})\s+languages\b|\bmultilingual\b"):
            f.languages.append(m.group(0))
            scan.take(m.start(), m.end(), "language (translation)")


def _choose_use_case(scan: Scan) -> str:
    f = scan.found
    if f.use_case_named is not None:
        chosen = f.use_case_named
    elif f.use_case_scores:
        order = [name for _, name, _ in USE_CASE_CUES]
        chosen = max(f.use_case_scores, key=lambda n: (f.use_case_scores[n], -order.index(n)))
    else:
        chosen = _LONG_TEMPLATE if f.long_documents else DEFAULT_USE_CASE
        scan.assumptions.append(
            f"no use case recognised; assumed {chosen} (`servewise catalog list use-cases` lists the templates)"
        )
        return chosen
    if f.long_documents and chosen == "summarization_short":
        scan.assumptions.append("long documents: used the long_document_summarization template")
        return _LONG_TEMPLATE
    return chosen


def _peak_factor(scan: Scan, default: float | None, why: str) -> float:
    """Stated factor > peak/average rates > steady > spiky > working hours > the rate's own ``default``."""
    f = scan.found
    if f.peak_factor is not None:
        return f.peak_factor
    if f.peak_qps is not None and f.qps:
        return _sig(f.peak_qps / f.qps)
    if f.steady:
        return 1.0
    if f.spiky:
        scan.assumptions.append(f"spiky traffic: assumed peak factor {SPIKY_PEAK_FACTOR:g} (peak / average)")
        return SPIKY_PEAK_FACTOR
    if f.business_hours:
        factor = 24.0 / WORKING_HOURS_PER_DAY
        scan.assumptions.append(
            f"assumed business-hours peak factor {factor:g} (a day's requests in {WORKING_HOURS_PER_DAY:g} hours)"
        )
        return factor
    if default is not None and why:
        scan.assumptions.append(why)
    return default if default is not None else 1.0


def _traffic(scan: Scan, use_case: str) -> dict[str, Any]:
    f = scan.found
    traffic: dict[str, Any] = {}
    if f.qps is not None:
        if f.users is not None:
            scan.ignored.append(
                f'"{f.user_phrase}" (the stated request rate "{f.qps_phrase}" was used instead)'
            )
        instant = f.qps_is_instant or f.qps_is_peak
        factor = _peak_factor(
            scan,
            1.0 if instant else ALL_DAY_PEAK_FACTOR,
            f'took "{f.qps_phrase}" as the steady rate (peak factor 1); say "peak 3x" for spiky traffic'
            if instant
            else f"assumed peak factor {ALL_DAY_PEAK_FACTOR:g} (the busiest hour of a day is about twice its average)",
        )
        # a per-second rate stated for working hours or as a peak is the peak: the 24 h average is lower
        divide = f.qps_is_peak or (f.qps_is_instant and f.business_hours and f.peak_factor is None)
        traffic["qps"] = _sig(f.qps / factor if divide else f.qps)
        traffic["peak_factor"] = factor
        if f.qps_is_peak and factor == 1.0:
            scan.assumptions.append(f'planned for the stated peak "{f.qps_phrase}" as a steady rate')
    elif f.users is not None:
        traffic.update(_users_traffic(scan, use_case))
    else:
        traffic["qps"] = 1.0
        scan.assumptions.append(
            "no traffic given; assumed 1 request/s on average (say e.g. '20 requests per second' or '5,000 users')"
        )
        traffic["peak_factor"] = _peak_factor(scan, None, "")
    return traffic


def _users_traffic(scan: Scan, use_case: str) -> dict[str, Any]:
    f = scan.found
    assert f.users is not None  # the caller checked
    a = scan.assumptions
    given = f.requests_per_user_hour
    if f.user_kind == "concurrent":
        rate = given or 3600.0 / CONCURRENT_SECONDS_BETWEEN_REQUESTS
        if given is None:
            a.append(
                f"assumed each concurrent user sends one request every {CONCURRENT_SECONDS_BETWEEN_REQUESTS:g} s "
                "(reading and typing time); the concurrent count is the peak (peak factor 1)"
            )
        factor = _peak_factor(scan, 1.0, "")
    elif f.user_kind == "internal" or f.business_hours:
        hours = WORKING_HOURS_PER_DAY
        if given is not None:
            per_day = given * hours if f.per_user_rate_in_active_hours else given * 24.0
        elif use_case == "code_completion":
            per_day = COMPLETIONS_PER_WORKING_HOUR * hours
            a.append(
                f"assumed {COMPLETIONS_PER_WORKING_HOUR:g} completion requests per developer per working hour "
                f"(one per minute of typing pauses), {hours:g} working hours a day"
            )
        else:
            per_day = INTERNAL_REQUESTS_PER_DAY
            a.append(
                f"assumed {INTERNAL_REQUESTS_PER_DAY:g} requests per employee per working day, all of them active "
                f"users ({per_day / 24:.3g} requests per user per hour averaged over 24 h)"
            )
        rate = per_day / 24.0
        factor = _peak_factor(
            scan,
            24.0 / hours,
            f"assumed business-hours peak factor {24.0 / hours:g} (a day's requests in {hours:g} working hours)",
        )
    else:
        share = DAILY_SHARE_OF_MONTHLY if f.user_kind == "monthly_active" else 1.0
        if f.user_kind == "monthly_active":
            a.append(f"assumed {DAILY_SHARE_OF_MONTHLY:.0%} of monthly active users use it on a given day")
        if given is not None:
            rate = given * share
        else:
            rate = EXTERNAL_REQUESTS_PER_DAY * share / 24.0
            a.append(
                f"assumed {EXTERNAL_REQUESTS_PER_DAY:g} requests per user per day, spread over 24 h "
                f"({rate:.3g} requests per user per hour)"
            )
        factor = _peak_factor(
            scan,
            ALL_DAY_PEAK_FACTOR,
            f"assumed peak factor {ALL_DAY_PEAK_FACTOR:g} (the busiest hour of an all-day service is about twice "
            "its average)",
        )
    return {"users": f.users, "requests_per_user_hour": _sig(rate), "peak_factor": factor}


def _slo(scan: Scan, template: UseCaseTemplate) -> dict[str, Any]:
    f = scan.found
    slo: dict[str, Any] = dict(f.slo_ms)
    for value_ms, given, phrase in f.bare_latency:
        percentile = given or "p95"
        whole_answer_ms = template.output_tokens * template.itl_p95_ms
        if template.name in STREAMED_USE_CASES:
            metric, why = (
                "ttft",
                f"{template.name} answers stream, so the wait a person notices is the first token",
            )
        elif value_ms < whole_answer_ms:
            metric = "ttft"
            why = (
                f"a whole {template.output_tokens}-token answer takes about {whole_answer_ms:,.0f} ms at the "
                f"template's {template.itl_p95_ms:g} ms per token"
            )
        else:
            metric, why = (
                "e2e",
                f"{template.name} delivers whole answers, so the whole answer is what is waited for",
            )
        slo.setdefault(f"{metric}_{percentile}_ms", value_ms)
        unsaid = "" if given else "; no percentile given, so p95"
        scan.assumptions.append(
            f'read "{phrase}" as {metric.upper()} {percentile} {value_ms:g} ms ({why}{unsaid})'
        )
    defaults = {"ttft": template.ttft_p95_ms, "itl": template.itl_p95_ms, "e2e": template.e2e_p95_ms}
    for metric, default_ms in defaults.items():
        said = [k for k in slo if k.startswith(f"{metric}_")]
        if f.no_latency_target and not said:
            slo[f"{metric}_p95_ms"] = None
        elif said and f"{metric}_p95_ms" not in slo:
            slo[f"{metric}_p95_ms"] = None
            scan.assumptions.append(
                f"dropped the template's {metric.upper()} p95 {default_ms:g} ms: "
                f"your {metric.upper()} target replaces it"
            )
    if f.no_latency_target:
        scan.assumptions.append("batch/offline: no latency targets except the ones stated")
    return {k: (_sig(v) if v is not None else None) for k, v in slo.items()}


def _constraints(scan: Scan, template: UseCaseTemplate) -> dict[str, Any]:
    f = scan.found
    constraints: dict[str, Any] = {}
    for key in ("gpus", "models", "providers", "precisions"):
        if getattr(f, key):
            constraints[key] = list(getattr(f, key))
    for key in ("pricing", "max_gpus", "min_params_b", "cpu"):
        if getattr(f, key) is not None:
            constraints[key] = getattr(f, key)
    if f.models and f.min_params_b is None and template.min_params_b:
        constraints["min_params_b"] = None
        scan.assumptions.append(
            f"named models: dropped the template's {template.min_params_b:g}B quality floor so they are considered"
        )
    return constraints


def template_lines(template: UseCaseTemplate, data: dict[str, Any]) -> list[str]:
    """Which template values stayed (not overridden by ``data``), and the Servewise defaults that apply."""
    traffic, slo = data.get("traffic", {}), data.get("slo", {})
    constraints = data.get("constraints", {})
    kept = []
    if "prompt_tokens" not in traffic:
        kept.append(f"prompt {template.prompt_tokens:,} tokens")
    if "output_tokens" not in traffic:
        kept.append(f"output {template.output_tokens:,} tokens")
    for metric in ("ttft", "itl", "e2e"):
        if f"{metric}_p95_ms" not in slo:
            kept.append(f"{metric.upper()} p95 {getattr(template, f'{metric}_p95_ms'):,.0f} ms")
    if "min_params_b" not in constraints:
        kept.append(f"quality floor {template.min_params_b:g}B parameters")
    lines = [f"from the {template.name} template: {', '.join(kept)}"] if kept else []
    if "precisions" not in constraints:
        lines.append("assumed bf16 or fp8 weights (Servewise default; say 'int4' to allow 4-bit)")
    if "pricing" not in constraints:
        lines.append("assumed on-demand prices (say 'spot' or 'reserved' otherwise)")
    if "priority" not in data:
        lines.append("assumed priority cost: the cheapest option that meets every target ranks first")
    return lines


def parse_rules(text: str, vocabulary: IntentVocabulary) -> tuple[dict[str, Any], Scan]:
    """Workload file data for ``text`` and the scan (matched, assumptions, ignored); ``UsageError`` when nothing in
    the text describes a workload."""
    if not text or not text.strip():
        raise UsageError(f"no description given; describe the traffic, e.g. {EXAMPLE}")
    scan = Scan(text)
    read_models(scan, vocabulary)
    read_budget(scan)
    read_latency(scan)
    read_lengths(scan)
    read_users(scan)
    read_peaks(scan)
    read_rates(scan)
    read_constraints(scan, vocabulary)
    read_priority(scan)
    read_use_case(scan, vocabulary)
    if not scan.matched:
        raise UsageError(
            f"could not read a workload from {text.strip()[:60]!r}; describe the traffic, e.g. {EXAMPLE}"
        )
    use_case = _choose_use_case(scan)
    template = vocabulary.template(use_case)
    data: dict[str, Any] = {"use_case": use_case, "traffic": _traffic(scan, use_case)}
    f = scan.found
    if (
        f.long_documents
        and use_case not in (_LONG_TEMPLATE, "research_legal_analysis")
        and f.prompt_tokens is None
    ):
        f.prompt_tokens = vocabulary.template(_LONG_TEMPLATE).prompt_tokens
        scan.assumptions.append(
            f"long documents: used the {_LONG_TEMPLATE} template's prompt length, {f.prompt_tokens:,.0f} tokens"
        )
    for key in ("prompt_tokens", "output_tokens"):
        if getattr(f, key) is not None:
            data["traffic"][key] = max(1, round(getattr(f, key)))
    slo = _slo(scan, template)
    if slo:
        data["slo"] = slo
    if f.budget_usd_month is not None:
        data["budget_usd_month"] = f.budget_usd_month
    constraints = _constraints(scan, template)
    if constraints:
        data["constraints"] = constraints
    if f.priority is not None:
        data["priority"] = f.priority
    scan.assumptions.extend(template_lines(template, data))
    scan.ignored.extend(scan.leftovers())
    return data, scan
