"""What the intent parser can recognise by name: use cases, GPUs, models and providers.

Why split from the rules: names of things (GPU families, model names, cloud providers, use-case templates) are facts
that live in the catalog, so they are read from it once into an ``IntentVocabulary``; only the *words people use* for
them ("Google Cloud" for gcp, "autocomplete" for code completion) are written here, since no data file holds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servewise.catalog import Accelerator, Alias, Catalog, ModelSpec, UseCaseTemplate, gpu_family

__all__ = [
    "DEFAULT_USE_CASE",
    "LANGUAGES",
    "PROVIDER_WORDS",
    "USE_CASE_CUES",
    "IntentVocabulary",
    "vocabulary_from",
]

DEFAULT_USE_CASE = "chatbot_conversational"
"""Used when the text names no use case: the most common request and the middle of the templates' lengths."""

USE_CASE_CUES: tuple[tuple[str, str, int], ...] = (
    (
        r"\bcode[\s-]?completions?\b|\bauto[\s-]?complet\w*|\bcopilot\b|\binline (?:code )?suggestions?\b"
        r"|\btab[\s-]completion\b|\bide (?:plugin|extension)s?\b",
        "code_completion",
        5,
    ),
    (
        r"\bcode generation\b|\bgenerat\w* code\b|\bwrit\w* code\b|\bcod(?:e|ing) (?:assistant|agent)s?\b"
        r"|\bprogramming assistant\b|\bunit tests\b|\bcode reviews?\b|\brefactor\w*",
        "code_generation_detailed",
        3,
    ),
    (r"\btranslat\w+|\blocali[sz]\w+", "translation", 4),
    (
        r"\brag\b|\bretrieval\b|\bknowledge[\s-]?base\b|\bdocument q&a\b|\binternal (?:docs|documents|documentation)\b"
        r"|\bdocumentation\b|\bwiki\b|\bchat with (?:your |our )?(?:pdfs?|documents|docs)\b|\bdocument analysis\b"
        r"|\banaly[sz]\w* documents\b|\bsearch (?:over|across|through) (?:our |the )?(?:docs|documents)\b"
        r"|\bquestions? (?:over|about|on) (?:our |the )?(?:docs|documents|manuals|policies|pdfs)\b",
        "document_analysis_rag",
        4,
    ),
    (
        r"\bsummar(?:y|ies|i[sz]e[sd]?|i[sz]ing|i[sz]ation|i[sz]er)\b|\btl;?dr\b|\bdigests?\b|\bcondens\w+|\brecaps?\b",
        "summarization_short",
        4,
    ),
    (
        r"\blegal\b|\blaw firm\b|\blawyers?\b|\bcontracts?\b|\bcase law\b|\bresearch papers?\b|\bscientific\b"
        r"|\bacademic\b|\bcompliance\b|\bregulatory\b|\bpatents?\b|\bdue diligence\b|\blitigation\b",
        "research_legal_analysis",
        3,
    ),
    (
        r"\bmarketing\b|\bcopywriting\b|\bblog(?: posts?)?\b|\barticles?\b|\bproduct descriptions?\b"
        r"|\bcontent (?:generation|creation|writing)\b|\blong[\s-]form\b|\bsocial media posts?\b|\bnewsletters?\b"
        r"|\bad copy\b",
        "content_generation",
        3,
    ),
    (
        r"\b(?:(?:customer |it |hr )?(?:support|service|help[\s-]?desk)\s+)?"
        r"(?:chat[\s-]?bots?|bots?|assistants?|agents?)\b"
        r"|\bchat[\s-]?bots?\b|\bchat\b|\bassistants?\b|\bcustomer (?:support|service)\b|\bsupport\b"
        r"|\bhelp[\s-]?desk\b|\bservice desk\b|\bconversational\b|\bvirtual agents?\b|\bfaq\b|\bq&a bot\b",
        "chatbot_conversational",
        2,
    ),
)
"""(pattern, use case, weight): a use case scores its weight for its first cue and 1 for each further cue; the
highest score wins, ties go to the earlier row. RAG outweighs chat, so
"a support bot over our knowledge base" is retrieval (its prompts carry the retrieved passages)."""

LANGUAGES = (
    "english", "french", "german", "spanish", "italian", "portuguese", "dutch", "polish", "swedish", "danish",
    "norwegian", "finnish", "czech", "greek", "turkish", "russian", "ukrainian", "arabic", "hebrew", "hindi",
    "japanese", "chinese", "mandarin", "cantonese", "korean", "vietnamese", "thai", "indonesian",
)  # fmt: skip

PROVIDER_WORDS: dict[str, str] = {
    r"\baws\b|\bamazon(?: web services)?\b|\bec2\b": "aws",
    r"\bgcp\b|\bgoogle cloud(?: platform)?\b|\bgce\b": "gcp",
    r"\bazure\b|\bmicrosoft cloud\b": "azure",
    r"\boci\b|\boracle(?: cloud)?\b": "oci",
    r"\blambda(?: labs| cloud)?\b": "lambda",
    r"\bnebius\b": "nebius",
    r"\brunpod\b": "runpod",
}
"""How people name the providers in the catalog's offers; a provider the catalog has no offer from is not matched."""


@dataclass(frozen=True, slots=True)
class IntentVocabulary:
    """Names the catalog knows, read once, so that parsing itself touches no database."""

    use_cases: tuple[UseCaseTemplate, ...]
    accelerators: tuple[Accelerator, ...]
    gpu_aliases: tuple[Alias, ...]
    models: tuple[ModelSpec, ...]
    model_aliases: tuple[Alias, ...]
    providers: tuple[str, ...]

    def template(self, name: str) -> UseCaseTemplate:
        """The template called ``name`` (the names come from this vocabulary, so it exists)."""
        return next(u for u in self.use_cases if u.name == name)

    def gpu_word(self, token: str) -> str | None:
        """``token`` as a GPU constraint the catalog resolves (``"H100s"`` → ``"H100"``), or None when it names no
        GPU; a word must carry a digit (``a``, ``h`` are not GPUs) unless it is a whole name such as ``tpu``."""
        for word in (token, token[:-1] if re.fullmatch(r"[A-Za-z]+\d+[A-Za-z0-9]*[sS]", token) else ""):
            if word and (re.search(r"\d", word) or word.lower() in {"tpu", "gaudi"}) and self.gpu_names(word):
                return word
        return None

    def gpu_names(self, word: str) -> list[str]:
        """Catalog GPUs a constraint word means (``h100`` → every H100); empty when none."""
        return gpu_family(word, self.accelerators, self.gpu_aliases)

    def model_patterns(self) -> list[tuple[str, str]]:
        """(regex, catalog model name) for each model, longest name first; separators are optional, so
        ``llama 3.1 70b`` and ``Llama-3.1-70B`` both match."""
        patterns = []
        for model in sorted(self.models, key=lambda m: len(m.name), reverse=True):
            parts = [re.escape(p) for p in re.split(r"[-_\s]+", model.name.lower()) if p]
            patterns.append((r"(?<![\w.])" + r"[-_\s]?".join(parts) + r"(?![\w.])", model.name))
        return patterns


def vocabulary_from(catalog: Catalog) -> IntentVocabulary:
    """The vocabulary of one catalog: its templates, GPUs and GPU aliases, models and offer providers."""
    return IntentVocabulary(
        use_cases=tuple(catalog.use_cases()),
        accelerators=tuple(catalog.accelerators()),
        gpu_aliases=tuple(catalog.aliases("gpu")),
        models=tuple(catalog.models()),
        model_aliases=tuple(catalog.aliases("model")),
        providers=tuple(sorted({o.provider.lower() for o in catalog.offers()})),
    )
