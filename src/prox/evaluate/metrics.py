"""Line-wise, document-level and word-level scores, as in the benchmarks README.

Lines: noise is the positive class. TP = predicted-removed ∩ noisy, FP = predicted-removed
∩ content, FN = noisy − predicted-removed; uncertain lines are ignored. Micro sums TP/FP/FN
over rows; macro averages per-row P/R/F1 with P = 1 for a row with no predicted removals
among its labelled lines, R = 1 for a row with no noisy lines, F1 = 1 when it has neither.

Math rows (``meta.formula_lines``, README "Math lines"): per group also the formula lines and
content lines kept (not removed) and the formula lines deleted.

Docs: DROP is the positive class; P/R/F1 of DROP and of KEEP, plus accuracy.

Words (README "Word-level files"): lower-cased ``\\w+`` tokens, multiset overlap of an
output with the gold text, P/R/F1 per page, mean over pages. Same conventions as the line
macro scores: P = 1 for an empty output, R = 1 for an empty gold, F1 = 1 when both are empty.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _row_prf(hits: int, predicted: int, gold: int) -> tuple[float, float, float]:
    """One row's P/R/F1 with the macro conventions (see the module docstring)."""
    p = hits / predicted if predicted else 1.0
    r = hits / gold if gold else 1.0
    if not predicted and not gold:
        return p, r, 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class LineCounts:
    rows: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    macro_p: float = 0.0
    macro_r: float = 0.0
    macro_f1: float = 0.0
    # math rows only (gold rows with ``meta.formula_lines``)
    math_rows: int = 0
    formula_lines: int = 0
    formula_removed: int = 0
    math_content_lines: int = 0
    math_content_removed: int = 0

    def add(self, removed: Iterable[int], noisy: set[int], content: set[int],
            formula: set[int] | None = None) -> None:
        removed = set(removed)
        tp = len(removed & noisy)
        fp = len(removed & content)
        fn = len(noisy) - tp
        self.rows += 1
        self.tp += tp
        self.fp += fp
        self.fn += fn
        p, r, f = _row_prf(tp, tp + fp, len(noisy))
        self.macro_p += p
        self.macro_r += r
        self.macro_f1 += f
        if formula is not None:
            self.math_rows += 1
            self.formula_lines += len(formula)
            self.formula_removed += len(removed & formula)
            self.math_content_lines += len(content)
            self.math_content_removed += fp

    def to_dict(self) -> dict:
        p, r, f = _prf(self.tp, self.fp, self.fn)
        n = max(self.rows, 1)
        out = {
            "rows": self.rows,
            "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "micro": {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)},
            "macro": {"precision": round(self.macro_p / n, 4), "recall": round(self.macro_r / n, 4),
                      "f1": round(self.macro_f1 / n, 4)},
        }
        if self.math_rows:
            out["math"] = {
                "rows": self.math_rows,
                "formula_lines": self.formula_lines,
                "formula_deleted": self.formula_removed,
                "formula_kept": _kept_share(self.formula_removed, self.formula_lines),
                "content_lines": self.math_content_lines,
                "content_deleted": self.math_content_removed,
                "content_kept": _kept_share(self.math_content_removed, self.math_content_lines),
            }
        return out


def _kept_share(removed: int, total: int) -> float:
    return round(1 - removed / total, 4) if total else 1.0


@dataclass
class LineScorer:
    """Accumulates line scores per (view, source), plus ``ALL`` per view."""

    groups: dict[tuple[str, str], LineCounts] = field(default_factory=dict)

    def add(self, view: str, source: str, removed: Iterable[int], noisy: set[int], content: set[int],
            formula: set[int] | None = None) -> None:
        removed = set(removed)
        for key in ((view, source), (view, "ALL")):
            self.groups.setdefault(key, LineCounts()).add(removed, noisy, content, formula)

    def to_dict(self) -> dict:
        return _by_view_and_source(self.groups)


def _by_view_and_source(groups: Mapping[tuple[str, str], LineCounts | WordCounts]) -> dict:
    """``{view: {source: counts.to_dict()}}``, views sorted, each view's ``ALL`` last."""
    out: dict[str, dict] = {}
    for (view, source) in sorted(groups, key=lambda k: (k[0], k[1] == "ALL", k[1])):
        out.setdefault(view, {})[source] = groups[(view, source)].to_dict()
    return out


@dataclass
class DocCounts:
    tp: int = 0  # drop predicted, drop gold
    fp: int = 0  # drop predicted, keep gold
    fn: int = 0  # keep predicted, drop gold
    tn: int = 0

    def add(self, pred_drop: bool, gold_drop: bool) -> None:
        if pred_drop and gold_drop:
            self.tp += 1
        elif pred_drop:
            self.fp += 1
        elif gold_drop:
            self.fn += 1
        else:
            self.tn += 1

    def to_dict(self) -> dict:
        n = self.tp + self.fp + self.fn + self.tn
        dp, dr, df = _prf(self.tp, self.fp, self.fn)
        kp, kr, kf = _prf(self.tn, self.fn, self.fp)
        return {
            "docs": n, "gold_drop": self.tp + self.fn, "pred_drop": self.tp + self.fp,
            "drop": {"precision": round(dp, 4), "recall": round(dr, 4), "f1": round(df, 4)},
            "keep": {"precision": round(kp, 4), "recall": round(kr, 4), "f1": round(kf, 4)},
            "accuracy": round((self.tp + self.tn) / n, 4) if n else 0.0,
        }


@dataclass
class DocScorer:
    groups: dict[str, DocCounts] = field(default_factory=dict)

    def add(self, source: str, pred_drop: bool, gold_drop: bool) -> None:
        for key in (source, "ALL"):
            self.groups.setdefault(key, DocCounts()).add(pred_drop, gold_drop)

    def to_dict(self) -> dict:
        return {k: self.groups[k].to_dict() for k in sorted(self.groups, key=lambda s: (s == "ALL", s))}


WORD = re.compile(r"\w+")


def word_bag(text: str) -> Counter:
    """The multiset of lower-cased ``\\w+`` tokens of ``text``."""
    return Counter(WORD.findall(text.lower()))


def word_prf(output: str, gold: str | Counter) -> tuple[float, float, float]:
    """Bag-of-words P/R/F1 of one output against one gold text (or its `word_bag`)."""
    want = gold if isinstance(gold, Counter) else word_bag(gold)
    got = word_bag(output)
    return _row_prf(sum((got & want).values()), sum(got.values()), sum(want.values()))


@dataclass
class WordCounts:
    """Per output (refiner, raw text, extractors): pages and sums of per-page word P/R/F1."""

    rows: int = 0
    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, scores: Mapping[str, tuple[float, float, float]]) -> None:
        """One page: each output's (P, R, F1)."""
        self.rows += 1
        for name, prf in scores.items():
            acc = self.sums.setdefault(name, [0, 0.0, 0.0, 0.0])
            acc[0] += 1
            for i, v in enumerate(prf, 1):
                acc[i] += v

    def to_dict(self) -> dict:
        return {"rows": self.rows, "outputs": {
            name: {"rows": n, "precision": round(p / n, 4), "recall": round(r / n, 4), "f1": round(f / n, 4)}
            for name, (n, p, r, f) in self.sums.items()}}


@dataclass
class WordScorer:
    """Mean word P/R/F1 per (view, source) and output, plus ``ALL`` per view."""

    groups: dict[tuple[str, str], WordCounts] = field(default_factory=dict)

    def add(self, view: str, source: str, outputs: Mapping[str, str], gold: str) -> None:
        bag = word_bag(gold)
        scores = {name: word_prf(text, bag) for name, text in outputs.items()}
        for key in ((view, source), (view, "ALL")):
            self.groups.setdefault(key, WordCounts()).add(scores)

    def to_dict(self) -> dict:
        return _by_view_and_source(self.groups)
