"""Teacher prompt templates: editable text files, rendered with Jinja2.

The defaults live in `prox/templates/` (package data); the math domain replaces some of them
with `prox/templates/math/` (formulas are content, Q&A furniture is noise). `--templates DIR`
points at a folder holding any subset of the same file names; files found there replace the
defaults one by one, the rest fall back to the packaged ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from prox.domains import DEFAULT_DOMAIN, get_domain

SYSTEM = "system.txt"
# Doc stage: the paper's two additive 0-5 rubrics (ProX §3.2 / appendix: FineWeb-Edu educational
# value, and a format/extraction-quality score).
DOC_EDU = "doc_edu.txt"
DOC_FORMAT = "doc_format.txt"
# Chunk stage: the paper's three few-shot prompt families (ProX appendix): page header /
# navigation at the top, URL / link lines, footers and references at the end.
CHUNK_FAMILIES = ("chunk_header.txt", "chunk_links.txt", "chunk_footer.txt")
ALL_TEMPLATES = (SYSTEM, DOC_EDU, DOC_FORMAT, *CHUNK_FAMILIES)


@dataclass(frozen=True)
class TeacherTemplates:
    """The loaded template texts, by file name."""

    sources: dict[str, str]
    origin: dict[str, str]  # file name -> "package" or the override path
    prefills: dict[str, str] = None  # template name -> start of the assistant answer

    @classmethod
    def load(cls, override_dir: str | Path | None = None, domain: str = DEFAULT_DOMAIN) -> "TeacherTemplates":
        """The packaged templates of ``domain`` (`prox.domains`), with ``override_dir``'s files on top."""
        sources: dict[str, str] = {}
        origin: dict[str, str] = {}
        packaged = resources.files("prox") / "templates"
        sub = get_domain(domain).templates
        domain_dir = packaged / sub if sub else None
        override = Path(override_dir) if override_dir else None
        if override is not None and not override.is_dir():
            raise FileNotFoundError(f"--templates: {override} is not a directory")
        for name in ALL_TEMPLATES:
            if override is not None and (override / name).is_file():
                sources[name] = (override / name).read_text(encoding="utf-8")
                origin[name] = str(override / name)
            elif domain_dir is not None and (domain_dir / name).is_file():
                sources[name] = (domain_dir / name).read_text(encoding="utf-8")
                origin[name] = f"package:{sub}"
            else:
                sources[name] = (packaged / name).read_text(encoding="utf-8")
                origin[name] = "package"
        prefills: dict[str, str] = {}
        for name in ALL_TEMPLATES:
            prefill_name = name.removesuffix(".txt") + ".prefill.txt"
            if override is not None and (override / prefill_name).is_file():
                prefills[name] = (override / prefill_name).read_text(encoding="utf-8").rstrip("\n")
                origin[prefill_name] = str(override / prefill_name)
        for name in (DOC_EDU, DOC_FORMAT):
            if "document" not in sources[name]:
                raise ValueError(f"template {origin[name]} ({name}) never uses {{{{ document }}}}")
        for name in CHUNK_FAMILIES:
            if "chunk" not in sources[name]:
                raise ValueError(f"template {origin[name]} ({name}) never uses {{{{ chunk }}}}")
        return cls(sources, origin, prefills)

    def render(self, name: str, **values: str) -> str:
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        return env.from_string(self.sources[name]).render(**values)

    def messages(self, name: str, **values: str) -> list[dict[str, str]]:
        """Chat messages for one teacher request: the shared system message, then the prompt."""
        system = self.sources[SYSTEM].strip()
        user = self.render(name, **values).strip()
        out = [{"role": "system", "content": system}] if system else []
        out.append({"role": "user", "content": user})
        prefill = (self.prefills or {}).get(name)
        if prefill:
            out.append({"role": "assistant", "content": prefill})
        return out

    def full_answer(self, name: str, answer: str | None) -> str | None:
        """The answer with its prefill in front (servers differ in whether they echo it)."""
        prefill = (self.prefills or {}).get(name)
        if answer is None or not prefill or answer.lstrip().startswith(prefill.strip()):
            return answer
        return prefill + answer
