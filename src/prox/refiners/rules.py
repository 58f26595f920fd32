"""Rule baselines as refiners: Gopher, C4, FineWeb (and RefinedWeb line rules) written as ProX programs.

``--refiner rules:gopher|c4|fineweb|gopher+c4+fineweb`` (components joined by ``+``; ``refinedweb``
adds the RefinedWeb line-wise corrections). The paper's comparison rows (Raw, Gopher, C4, FineWeb,
all three, ProX-D, ProX-D+C) then come from one pipeline on the same input, with the same outputs,
stats and reports as the LM refiners.

* Document level: datatrove's ``GopherQualityFilter`` + ``GopherRepetitionFilter`` (gopher),
  ``C4QualityFilter``'s page rules (c4: ``lorem_ipsum``, ``curly_bracket``, ``too_few_sentences``)
  and ``FineWebQualityFilter`` (fineweb). A rejected document gets ``drop_doc()`` preceded by a
  comment line naming the filter and reason, e.g. ``# gopher_short_doc``.
* Line level (``c4`` and ``refinedweb``): the lines the rules would delete become
  ``remove_lines(line_start=.., line_end=..)`` over ``text.split("\\n")`` (0-based, inclusive);
  ``skip_chunk()`` when nothing is removed. Blank lines are never removed on their own; a blank run
  between two removed lines is folded into one range so programs stay short.

Filters that need downloaded assets are off unless given a local path: ``badwords=PATH`` (C4 bad
words list, one word per line) and ``language_model=PATH`` (a fastText language-ID ``.bin``). No
runtime downloads. datatrove tokenizes words with a blank spaCy pipeline, which needs no model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from prox.program import BlankLines, line_ranges
from prox.refiners.options import parse_options

# C4 line rules (Raffel et al. 2020, §2.2; tfds c4_utils): terminal punctuation, >= 3 words,
# no "javascript", no policy/cookie phrases, no word over 1000 chars. Constants taken from
# datatrove's C4QualityFilter so both agree.
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, ELLIPSIS, END_PUNCTUATION, POLICY_SUBSTRINGS

C4_MIN_WORDS_PER_LINE = 3  # C4 paper: "only retained lines that contained at least 3 words"
C4_MAX_WORD_LENGTH = 1000  # tfds c4_utils: lines with a word over 1000 chars are dropped
# RefinedWeb line-wise corrections (Penedo et al. 2023, App. G.2): drop the doc when they remove > 5 % of words.
REFINEDWEB_MAX_REMOVED_WORD_FRACTION = 0.05
REFINEDWEB_SHORT_LINE_WORDS = 10  # RefinedWeb: "short lines (<= 10 words) matching a pattern"
LANGUAGE_THRESHOLD = 0.65  # FineWeb / datatrove LanguageFilter default score threshold

COMPONENTS = ("gopher", "c4", "fineweb", "refinedweb")
LINE_COMPONENTS = ("c4", "refinedweb")

_RW_COUNTER = re.compile(r"^\W*\d[\d,.]*\s*(likes?|views?|comments?|shares?|replies|reply|followers?|retweets?|points?)\W*$", re.I)
_RW_PATTERNS = re.compile(
    r"(sign[ -]?in|log[ -]?in|sign[ -]?up|read more|items? in (your )?cart|subscribe|share this|"
    r"add to cart|click here|all rights reserved|skip to (main )?content)",
    re.I,
)


@dataclass(frozen=True)
class LineDecision:
    """Why a line is removed (``None`` keeps it)."""

    index: int
    reason: str | None


def c4_line_reason(line: str) -> str | None:
    """The C4 rule that removes ``line`` (None when C4 keeps it). Mirrors datatrove's C4QualityFilter."""
    line = line.strip()
    words = line.split()
    if any(len(w) > C4_MAX_WORD_LENGTH for w in words):
        return "c4_too_long_word"
    line = CITATION_REGEX.sub("", line)
    if not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS):
        return "c4_no_terminal_punct"
    if len(words) < C4_MIN_WORDS_PER_LINE:
        return "c4_too_few_words"
    lower = line.lower()
    if "javascript" in lower:
        return "c4_javascript"
    if any(p in lower for p in POLICY_SUBSTRINGS):
        return "c4_policy"
    return None


def refinedweb_line_reason(line: str) -> str | None:
    """RefinedWeb line-wise corrections: uppercase, numeric, counter, one word, short boilerplate."""
    s = line.strip()
    words = s.split()
    letters = [c for c in s if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) / len(letters) > 0.5 and len(letters) >= 4:
        return "rw_uppercase"
    if s and all(c.isdigit() or c.isspace() or c in ".,:/-+%" for c in s):
        return "rw_numeric"
    if _RW_COUNTER.match(s):
        return "rw_counter"
    if len(words) == 1:
        return "rw_one_word"
    if len(words) <= REFINEDWEB_SHORT_LINE_WORDS and _RW_PATTERNS.search(s):
        return "rw_short_pattern"
    return None


def removed_ranges(flags: Sequence[bool], lines: Sequence[str]) -> list[tuple[int, int]]:
    """Inclusive ranges of removed lines; blank lines between two removed lines join one range."""
    return line_ranges([i for i, flag in enumerate(flags) if flag], BlankLines(lines))


def _load_badwords(path: str | Path) -> re.Pattern:
    words = {w.strip().lower() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip()}
    if not words:
        raise ValueError(f"bad-words list {path} is empty")
    # Same shape as C4 / datatrove: a word flanked by non-word characters.
    return re.compile(r"(?:\W|^)({})(?:\W|$)".format("|".join(re.escape(w) for w in sorted(words))))


@dataclass
class RuleRefiner:
    """Writes ProX programs from classic heuristic filters. See the module docstring."""

    components: tuple[str, ...]
    line_components: tuple[str, ...] = ()
    badwords: str | None = None
    language_model: str | None = None
    languages: tuple[str, ...] = ("en",)
    language_threshold: float = LANGUAGE_THRESHOLD
    name: str = ""
    _doc_filters: list[tuple[str, Any]] = field(default_factory=list, init=False, repr=False)
    _checks: list[Callable[[str], str | None]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            self.name = "rules:" + "+".join(self.components)
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        if "gopher" in self.components:
            self._doc_filters += [("gopher", GopherQualityFilter()), ("gopher_rep", GopherRepetitionFilter())]
        if "c4" in self.components:
            self._doc_filters.append(("c4", C4QualityFilter()))
        if "fineweb" in self.components:
            self._doc_filters.append(("fineweb", FineWebQualityFilter()))
        if self.badwords:
            regex = _load_badwords(self.badwords)
            self._checks.append(lambda t: "c4_badwords" if regex.search(t.lower()) else None)
        if self.language_model:
            self._checks.append(self._language_check())

    def _language_check(self) -> Callable[[str], str | None]:
        try:
            import fasttext
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("language_model= needs fasttext (pip install fasttext-numpy2-wheel)") from exc
        if not Path(self.language_model).is_file():
            raise FileNotFoundError(f"language model not found: {self.language_model}")
        model = fasttext.load_model(str(self.language_model))
        wanted = set(self.languages)

        def check(text: str) -> str | None:
            labels, scores = model.predict(text.replace("\n", " "), k=1)
            lang = labels[0].removeprefix("__label__") if labels else ""
            if lang not in wanted or float(scores[0]) < self.language_threshold:
                return f"language_{lang or 'unknown'}"
            return None

        return check

    # -- doc level ---------------------------------------------------------------------------
    def doc_reason(self, text: str) -> str | None:
        """The name of the first rule that rejects ``text`` (e.g. ``gopher_short_doc``), or None to keep it."""
        from datatrove.data import Document

        if not text.strip():
            return "empty"
        for check in self._checks:
            reason = check(text)
            if reason:
                return reason
        for fname, flt in self._doc_filters:
            try:
                result = flt.filter(Document(text=text, id=""))
            except ZeroDivisionError:  # e.g. a doc of symbols only: no words to divide by
                return f"{fname}_no_words"
            ok, reason = (result if isinstance(result, tuple) else (result, None))
            if not ok:
                reason = reason or "rejected"
                prefix = "gopher" if fname.startswith("gopher") else fname
                return reason if reason.startswith(prefix) else f"{prefix}_{reason}"
        return None

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        out = []
        for text in texts:
            reason = self.doc_reason(text)
            out.append("keep_doc()" if reason is None else f"# {reason}\ndrop_doc()")
        return out

    # -- line level --------------------------------------------------------------------------
    def line_decisions(self, text: str) -> list[LineDecision]:
        decisions = []
        for i, line in enumerate(text.split("\n")):
            reason = None
            if line.strip():
                for comp in self.line_components:
                    reason = c4_line_reason(line) if comp == "c4" else refinedweb_line_reason(line)
                    if reason:
                        break
            decisions.append(LineDecision(i, reason))
        return decisions

    def chunk_program(self, text: str) -> str:
        lines = text.split("\n")
        decisions = self.line_decisions(text)
        ranges = removed_ranges([d.reason is not None for d in decisions], lines)
        if "refinedweb" in self.line_components:
            rw_words = sum(len(lines[d.index].split()) for d in decisions if d.reason and d.reason.startswith("rw_"))
            total = len(text.split())
            if total and rw_words / total > REFINEDWEB_MAX_REMOVED_WORD_FRACTION:
                # RefinedWeb drops such a page outright; at chunk level that is: remove every line.
                return f"# rw_too_many_corrections\nremove_lines(line_start=0, line_end={len(lines) - 1})"
        if not ranges:
            return "skip_chunk()"
        return "\n".join(f"remove_lines(line_start={a}, line_end={b})" for a, b in ranges)

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        """Line numbers are global, so each document gets its whole program as one chunk output."""
        return [[self.chunk_program(text)] for text in texts]


def parse_spec(arg: str | None) -> tuple[str, ...]:
    if not arg:
        raise ValueError("rules refiner needs components, e.g. rules:gopher, rules:c4, rules:gopher+c4+fineweb")
    parts = tuple(p.strip().lower() for p in arg.split("+") if p.strip())
    bad = [p for p in parts if p not in COMPONENTS]
    if bad:
        raise ValueError(f"unknown rule set(s) {bad}; choose from {', '.join(COMPONENTS)} joined by '+'")
    return parts


@dataclass(frozen=True)
class RuleOptions:
    line_rules: bool | None = None  # line-level rules (default: on for c4/refinedweb); True adds C4's
    badwords: str | None = None  # local bad-words list for C4 (datatrove downloads one otherwise)
    language_model: str | None = None  # local fastText language-id model
    languages: Any = ("en",)  # a tuple, or "en,de" from the command line
    language_threshold: float = LANGUAGE_THRESHOLD


def make_refiner(arg: str | None = None, **options: Any) -> RuleRefiner:
    """Registry factory: ``rules:gopher+c4``, options `RuleOptions`."""
    comps = parse_spec(arg)
    opts = parse_options(RuleOptions, options, refiner="rules")
    line_comps = tuple(c for c in comps if c in LINE_COMPONENTS)
    if opts.line_rules is False:
        line_comps = ()
    elif opts.line_rules is True and not line_comps:
        line_comps = ("c4",)
    langs = opts.languages or ("en",)
    if isinstance(langs, str):
        langs = tuple(s.strip() for s in langs.split(","))
    return RuleRefiner(
        components=comps,
        line_components=line_comps,
        badwords=opts.badwords,
        language_model=opts.language_model,
        languages=tuple(langs),
        language_threshold=opts.language_threshold,
    )


make_refiner.options = RuleOptions  # type: ignore[attr-defined]
