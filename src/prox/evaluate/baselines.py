"""The simple baselines of the benchmarks README, as predictors (no program involved)."""
from __future__ import annotations

from typing import Callable

# The simplified C4 line rule of the benchmarks README (after Raffel et al. 2020, §2.2): a line must
# end in terminal punctuation and must not mention javascript / cookies / lorem ipsum. Not datatrove's
# C4 filter (that one is the rule refiner `rules:c4`).
C4_TERMINAL = (".", "!", "?", '"')
C4_BAD = ("javascript", "cookie", "lorem ipsum")
SHORT_LINE_WORDS = 5  # "< 5 words" baseline
DOC_MIN_WORDS = 50  # doc rule: drop documents with fewer words
DOC_MAX_C4_FAIL = 0.5  # doc rule: drop when more than half the non-empty lines fail C4


def c4_fails(line: str) -> bool:
    s = line.strip()
    low = s.lower()
    return not s.endswith(C4_TERMINAL) or any(b in low for b in C4_BAD)


def remove_nothing(text: str) -> list[int]:
    return []


def remove_short(text: str) -> list[int]:
    return [i for i, ln in enumerate(text.split("\n")) if len(ln.split()) < SHORT_LINE_WORDS]


def remove_c4_line_rule(text: str) -> list[int]:
    return [i for i, ln in enumerate(text.split("\n")) if c4_fails(ln)]


LINE_BASELINES: dict[str, Callable[[str], list[int]]] = {
    "nothing": remove_nothing,
    "short": remove_short,
    "c4-line-rule": remove_c4_line_rule,
}
# Earlier names still accepted (`prox eval lines -b c4`); `-b all` runs each baseline once, by its name.
LINE_BASELINE_ALIASES = {"c4": "c4-line-rule"}


def doc_rule_drops(text: str) -> bool:
    if len(text.split()) < DOC_MIN_WORDS:
        return True
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return bool(lines) and sum(c4_fails(ln) for ln in lines) > DOC_MAX_C4_FAIL * len(lines)


DOC_BASELINES: dict[str, Callable[[str], bool]] = {
    "keep-all": lambda text: False,
    "drop-all": lambda text: True,
    "doc-rule": doc_rule_drops,
}
