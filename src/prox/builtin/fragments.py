"""Partial-line noise: junk prefixes and suffixes learned from gold main texts, cut with `normalize`.

Some lines mix content with junk — "Last edited: Jul 9, 2022", "The Real Deal Logo",
"©2025 Louie's Tux Shop. All rights reserved.", "Image: The house in which …". Removing the
line loses the content, keeping it keeps the junk. ProX's answer is a fine-grained edit,
``normalize(source_str="…", target_str="")``.

What to cut is learned, not listed: on pages with a human gold main text (`words-public-*`),
a line whose middle is found in the gold (word 3-grams) but whose first or last words are not
shows a junk *prefix* or *suffix*. Each one becomes a pattern (the fragment with digit runs
generalised: "Last edited:", "Picture 0 of 0"); a pattern is kept when it was junk on several
pages and (nearly) never part of the gold where it appeared at a line edge.

At refine time (`normalizations`), a kept line that starts or ends with a learned pattern gets
it cut, but only when it is safe, because `normalize` replaces *every* occurrence in the
document (ProX semantics): every occurrence of the exact source string must be a cut site or
inside a removed line; math lines are never touched, a cut never splits a number, the rest of
the line keeps at least ``MIN_WORDS_LEFT`` words, and the target is always "" (no invented text).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PREFIX, SUFFIX = "prefix", "suffix"
GRAM = 3  # a line's words count as gold when they are part of a gold word 3-gram
MIN_COVERED = 0.5  # at least half of the line's words must be in the gold (the rest is the fragment)
MIN_PAGES = 3  # a pattern must be junk on this many pages (one page's template is not a rule)
MIN_PRECISION = 0.9  # junk / (junk + clean) at a line edge
MIN_LETTERS = 2  # a pattern holds at least this many letters (no bare list numbers or punctuation)
MIN_WORDS_LEFT = 3  # words a cut line keeps
MAX_FRAGMENT_CHARS = 120

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Fragment:
    side: str  # PREFIX or SUFFIX
    pattern: str  # the fragment, stripped, with every digit run written "0"
    junk: int  # times it was junk at that edge of a partly-gold line
    clean: int  # times the same pattern at that edge was in the gold
    pages: int  # pages it was junk on


def pattern_of(fragment: str) -> str:
    return _DIGITS.sub("0", fragment.strip())


def _words(line: str) -> list[re.Match]:
    return list(_WORD.finditer(line))


def mine(pages: Iterable[tuple[str, str, str]], *, min_pages: int = MIN_PAGES,
         min_precision: float = MIN_PRECISION) -> list[Fragment]:
    """Junk prefix/suffix patterns from ``(page_id, text, gold_text)`` triples (see the module docstring)."""
    junk: Counter = Counter()
    clean: Counter = Counter()
    seen_on: dict[tuple[str, str], set[str]] = defaultdict(set)
    for page_id, text, gold in pages:
        g = [w.lower() for w in _WORD.findall(gold)]
        grams = {tuple(g[i:i + GRAM]) for i in range(len(g) - GRAM + 1)}
        for line in text.split("\n"):
            words = _words(line)
            if len(words) <= GRAM:
                continue
            low = [w.group(0).lower() for w in words]
            covered = np.zeros(len(words), dtype=bool)
            for i in range(len(words) - GRAM + 1):
                if tuple(low[i:i + GRAM]) in grams:
                    covered[i:i + GRAM] = True
            if covered.sum() < MIN_COVERED * len(words):
                continue
            first = int(np.argmax(covered))
            last = len(words) - 1 - int(np.argmax(covered[::-1]))
            for side, cut, edge_words in ((SUFFIX, last < len(words) - 1, words[last + 1:]),
                                          (PREFIX, first > 0, words[:first])):
                if cut:
                    frag = line[words[last].end():] if side == SUFFIX else line[:words[first].start()]
                    key = (side, pattern_of(frag))
                    junk[key] += 1
                    seen_on[key].add(page_id)
                else:
                    # the line's edge is gold: its last / first 1..4 words are clean examples of a pattern
                    for k in range(1, min(4, len(words) - 1) + 1):
                        frag = line[words[-k].start():] if side == SUFFIX else line[:words[k - 1].end()]
                        clean[(side, pattern_of(frag))] += 1
    out = []
    for (side, pattern), n in junk.items():
        if (len(seen_on[(side, pattern)]) >= min_pages and n / (n + clean[(side, pattern)]) >= min_precision
                and len(_LETTER.findall(pattern)) >= MIN_LETTERS and len(pattern) <= MAX_FRAGMENT_CHARS):
            out.append(Fragment(side, pattern, n, clean[(side, pattern)], len(seen_on[(side, pattern)])))
    return sorted(out, key=lambda f: (f.side, -f.junk, f.pattern))


def word_pages(rows: Iterable[dict]) -> Iterable[tuple[str, str, str]]:
    """``(page_id, text, gold_text)`` of the rows that have both texts (both views of a page share its id)."""
    for row in rows:
        text, gold = row.get("text"), row.get("gold_text")
        if isinstance(text, str) and isinstance(gold, str):
            yield str(row.get("doc_id") or str(row.get("id", "")).rsplit(":", 1)[0]), text, gold


def load_word_pages(paths: Iterable[str | Path]) -> list[tuple[str, str, str]]:
    """`word_pages` of record files (`prox train builtin|encoder --words`)."""
    from prox.records import load_records

    return [page for path in paths for page in word_pages(load_records(path))]


def _regex(pattern: str) -> str:
    return r"\d+".join(re.escape(part) for part in pattern.split("0"))


@dataclass
class FragmentMatcher:
    """The learned patterns compiled into one prefix and one suffix regex."""

    fragments: Sequence[Fragment]

    def __post_init__(self) -> None:
        def alt(side: str) -> str | None:
            pats = sorted({f.pattern for f in self.fragments if f.side == side}, key=len, reverse=True)
            return "|".join(_regex(p) for p in pats) if pats else None

        pre, suf = alt(PREFIX), alt(SUFFIX)
        # a fragment is cut with the spaces (and punctuation) that separate it from the rest of
        # the line, and only where such a space is: never out of a word ("Hereâ€™s" stays whole)
        self.prefix = re.compile(r"^\s*(?:" + pre + r")[^\w\s]*\s+(?=\S)") if pre else None
        self.suffix = re.compile(r"(?<=\S)\s+[^\w\s]*(?:" + suf + r")\s*$") if suf else None

    def cut(self, line: str) -> tuple[int, int] | None:
        """The (start, end) of a junk prefix or suffix of ``line`` that may be cut, else None."""
        for regex in (self.prefix, self.suffix):
            if regex is None:
                continue
            m = regex.search(line)
            if m is None or m.end() == m.start():
                continue
            a, b = m.span()
            rest = line[:a] + line[b:]
            if len(_WORD.findall(rest)) < MIN_WORDS_LEFT:
                continue
            # never split a number: "Picture 1 of 12" must not become "Picture 1" + "2 …"
            if a > 0 and line[a - 1].isdigit() and line[a:b].lstrip()[:1].isdigit():
                continue
            if b < len(line) and line[b].isdigit() and line[a:b].rstrip()[-1:].isdigit():
                continue
            return a, b
        return None


def normalizations(lines: Sequence[str], removed: np.ndarray, protected: np.ndarray,
                   matcher: FragmentMatcher) -> list[tuple[str, str]]:
    """``(source, "")`` pairs to cut from the kept lines of one document, each checked against
    the whole document: every occurrence of ``source`` is a cut site or inside a removed line."""
    sites: dict[str, list[int]] = defaultdict(list)
    for i, line in enumerate(lines):
        if removed[i] or protected[i] or not line.strip():
            continue
        span = matcher.cut(line)
        if span is not None:
            source = line[span[0]:span[1]]
            if source.strip():
                sites[source].append(i)
    out = []
    for source, at in sites.items():
        cut_here = set(at)
        safe = all(removed[i] or (i in cut_here and line.count(source) == 1)
                   for i, line in enumerate(lines) if source in line)
        if safe:
            out.append((source, ""))
    return out
