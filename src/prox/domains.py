"""Corpus domains: what changes between refining web text and refining math text.

ProX applies one pipeline to both ("without domain-specific design"); what differs is which
released refiners a run uses and how a teacher is asked to annotate seed documents:

* ``web``: `gair-prox/web-doc-refining-lm` (0.3B) and `gair-prox/web-chunk-refining-lm`
  (0.3B), and the packaged web teacher prompts;
* ``math``: `gair-prox/math-doc-refining-lm` (0.7B, the TLM-S architecture) and
  `gair-prox/math-chunk-refining-lm` (0.3B) -- same Llama-2 tokenizer, chat format and
  1,500-token chunking as the web ones -- and teacher prompts that score mathematical
  value and never delete formulas (`prox/templates/math/`).

The builtin refiner has one model for both domains (it is trained on web pages and on
math pages; `prox.mathtext` protects formula lines), so ``--domain`` changes nothing for it.
Models are never downloaded: ``--prox-models DIR`` names a local folder holding the
released refiners under their repository names (``DIR/math-doc-refining-lm``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DOMAIN = "web"


@dataclass(frozen=True)
class Domain:
    name: str
    doc_model: str  # the released ProX doc refiner (folder name under --prox-models; hub id gair-prox/NAME)
    chunk_model: str  # the released ProX chunk refiner
    templates: str | None  # packaged teacher-template subfolder replacing web templates (None: the web ones)


DOMAINS: dict[str, Domain] = {
    "web": Domain("web", "web-doc-refining-lm", "web-chunk-refining-lm", None),
    "math": Domain("math", "math-doc-refining-lm", "math-chunk-refining-lm", "math"),
}


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(DOMAINS)}") from None


def released_models(domain: str, models_dir: str | Path, stages: tuple[str, ...] = ("doc", "chunk")) -> dict[str, str]:
    """``{"doc_model": path, "chunk_model": path}`` of the released refiners of ``domain`` in
    ``models_dir`` (only the stages asked for); a missing folder is a clear error."""
    d = get_domain(domain)
    root = Path(models_dir)
    out: dict[str, str] = {}
    for stage, name in (("doc", d.doc_model), ("chunk", d.chunk_model)):
        if stage not in stages:
            continue
        path = root / name
        if not path.is_dir():
            raise FileNotFoundError(f"--prox-models: {path} not found (download gair-prox/{name} there first)")
        out[f"{stage}_model"] = str(path)
    return out
