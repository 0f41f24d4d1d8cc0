"""Name resolution: the many spellings of a GPU or model → the catalog's canonical name.

Why pure functions over plain records: the planner resolves names from a ``CatalogSnapshot`` without a
database, and the repository uses the same functions, so both agree.

Rules (all comparisons fold case and ignore ``-``, ``_`` and spaces):

* GPU: the canonical name or a ``gpu`` alias (benchmark ``system`` names such as ``h100_sxm`` are aliases).
  ``gpu_family("H100")``: an exact match wins; otherwise every accelerator whose name starts with the query at
  a ``-`` boundary or not followed by a digit ("A100" → all A100 variants, "A10" is exact, "H10" matches
  nothing).
* Model: the canonical name, the ``hf_id`` (with or without its ``org/``), or a ``model`` alias; failing that,
  the ``org/`` prefixes are dropped, then repeatedly a quantization/packaging suffix (``-Instruct``, ``-FP8``,
  ``-NVFP4``, ``-Turbo`` …) and a leading ``Meta-`` of ``Meta-Llama-…``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ._records import Accelerator, Alias, ModelSpec

__all__ = ["GPU_KIND", "MODEL_KIND", "fold", "gpu_family", "model_name_forms", "resolve_gpu", "resolve_model"]

GPU_KIND = "gpu"
MODEL_KIND = "model"

MODEL_SUFFIXES = (
    "instruct",
    "it",
    "hf",
    "chat",
    "fp8",
    "nvfp4",
    "fp4",
    "awq",
    "gptq",
    "int4",
    "bf16",
    "turbo",
)
_SUFFIX_RE = re.compile(r"[-_](?:" + "|".join(MODEL_SUFFIXES) + r")$", re.IGNORECASE)
_META_RE = re.compile(r"^meta-(?=llama)", re.IGNORECASE)
_FOLD_RE = re.compile(r"[-_\s]+")


def fold(name: str) -> str:
    """Comparison form of a name: case-folded, without ``-``, ``_`` and spaces."""
    return _FOLD_RE.sub("", name).casefold()


def _alias_targets(aliases: Iterable[Alias], kind: str) -> dict[str, str]:
    return {fold(a.alias): a.target for a in aliases if a.kind == kind}


def resolve_gpu(name: str, accelerators: Sequence[Accelerator], aliases: Iterable[Alias]) -> str | None:
    """Canonical accelerator name for ``name`` (exact name or alias), ``None`` when unknown."""
    by_fold = {fold(a.name): a.name for a in accelerators}
    query = fold(name)
    if query in by_fold:
        return by_fold[query]
    target = _alias_targets(aliases, GPU_KIND).get(query)
    return by_fold.get(fold(target)) if target is not None else None


def gpu_family(name: str, accelerators: Sequence[Accelerator], aliases: Iterable[Alias]) -> list[str]:
    """Accelerators a constraint such as ``--gpu H100`` means, in catalog order; empty when none."""
    exact = resolve_gpu(name, accelerators, aliases)
    if exact is not None:
        return [exact]
    query = fold(name)
    if not query:
        return []
    family = []
    for accelerator in accelerators:
        folded = fold(accelerator.name)
        tokens = [t for t in _FOLD_RE.split(accelerator.name) if t]
        whole_tokens = any(fold("".join(tokens[:k])) == query for k in range(1, len(tokens) + 1))
        if whole_tokens or (folded.startswith(query) and not folded[len(query) : len(query) + 1].isdigit()):
            family.append(accelerator.name)
    return family


def model_name_forms(name: str) -> list[str]:
    """Spellings to try for a model id, most specific first: as given, without ``org/``, then stripped."""
    forms = [name.strip()]
    current = forms[0].rsplit("/", 1)[-1]
    forms.append(current)
    while True:
        stripped = _META_RE.sub("", _SUFFIX_RE.sub("", current))
        if stripped == current or not stripped:
            break
        forms.append(stripped)
        current = stripped
    # "Meta-Llama-3.1-8B" without any suffix still needs its "Meta-" dropped.
    forms.extend(_META_RE.sub("", form) for form in list(forms))
    return list(dict.fromkeys(forms))


def _model_index(models: Sequence[ModelSpec], aliases: Iterable[Alias]) -> dict[str, str]:
    """Folded spelling → canonical name; primary spellings beat derived ones; ambiguous derived ones go."""
    known = {m.name for m in models}
    index: dict[str, str] = {}
    for model in models:
        index.setdefault(fold(model.name), model.name)
    for model in models:
        if model.hf_id:
            index.setdefault(fold(model.hf_id), model.name)
            index.setdefault(fold(model.hf_id.rsplit("/", 1)[-1]), model.name)
    for alias_key, target in _alias_targets(aliases, MODEL_KIND).items():
        if target in known:
            index.setdefault(alias_key, target)
    derived: dict[str, set[str]] = {}
    for model in models:
        for spelling in (model.name, model.hf_id):
            for form in model_name_forms(spelling)[1:] if spelling else []:
                derived.setdefault(fold(form), set()).add(model.name)
    for key, names in derived.items():
        if len(names) == 1 and key not in index:
            index[key] = next(iter(names))
    return index


def resolve_model(name: str, models: Sequence[ModelSpec], aliases: Iterable[Alias]) -> str | None:
    """Canonical model name for a name, HF id or benchmark model id; ``None`` when nothing matches."""
    index = _model_index(models, aliases)
    for form in model_name_forms(name):
        found = index.get(fold(form))
        if found is not None:
            return found
    return None
