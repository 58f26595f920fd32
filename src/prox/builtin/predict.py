"""From line/doc predictions to ProX program text (pure functions)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from prox.builtin.features import protected_rows
from prox.builtin.fragments import FragmentMatcher, normalizations
from prox.program import BlankLines, DropDoc, KeepDoc, NoOp, Normalize, RemoveLines, format_program, line_ranges

# What a clean chunk's program says (the ProX chunk model writes ``skip_chunk()``).
CLEAN_CHUNK = NoOp("skip_chunk")


def expected_word_f1(keep_prob: np.ndarray, words: np.ndarray, kept: np.ndarray) -> float:
    """Expected word F1 of keeping the lines ``kept`` when line i is content with probability
    ``keep_prob[i]`` and holds ``words[i]`` words (plug-in: expected hits over expected sizes)."""
    gold = float(keep_prob @ words)
    out = float(words[kept].sum())
    if out + gold == 0:
        return 1.0
    return 2.0 * float(keep_prob[kept] @ words[kept]) / (out + gold)


def best_expected_keep(keep_prob: np.ndarray, words: np.ndarray) -> np.ndarray:
    """The keep set with the highest `expected_word_f1`: the most likely content lines, down to
    the cut where keeping one more line stops paying (a page-adaptive threshold)."""
    order = np.argsort(-keep_prob, kind="stable")
    hits = np.cumsum(keep_prob[order] * words[order])
    out = np.cumsum(words[order])
    denom = out + hits[-1]
    f1 = np.divide(2.0 * hits, denom, out=np.ones_like(hits), where=denom > 0)
    keep = np.zeros(len(keep_prob), dtype=bool)
    keep[order[:int(np.argmax(f1)) + 1]] = True
    return keep


def noisy_mask(probs: np.ndarray, words: np.ndarray, threshold: float, rescue_margin: float | None) -> np.ndarray:
    """Lines to remove: P(noise) >= ``threshold``, except on a page where those removals are
    expected to cost more than ``rescue_margin`` word F1 against `best_expected_keep`: there the
    lines of that keep set stay too (so a page whose content all looks a little noisy — a forum
    thread, a product page in a full-page dump — is not emptied). ``None``: threshold only.

    The rescue only ever keeps more lines: a line with P(noise) < ``threshold`` is never removed.
    """
    noisy = probs >= threshold
    if rescue_margin is None or not noisy.any():
        return noisy
    keep_prob = 1.0 - probs
    current = expected_word_f1(keep_prob, words, ~noisy)
    if 1.0 - current <= rescue_margin:  # no keep set beats an expected F1 of 1: skip the search
        return noisy
    keep = best_expected_keep(keep_prob, words)
    if expected_word_f1(keep_prob, words, keep) - current > rescue_margin:
        return noisy & ~keep
    return noisy


def noisy_masks(probs: Sequence[np.ndarray], words: Sequence[np.ndarray], threshold: float,
                rescue_margin: float | None) -> list[np.ndarray]:
    """`noisy_mask` of many documents at once (the same masks): the threshold and the expected
    F1 of its removals are computed for the whole batch, the keep-set search runs only on the
    documents where it could pay."""
    noisy = [p >= threshold for p in probs]
    if rescue_margin is None or not noisy:
        return noisy
    sizes = np.fromiter(map(len, probs), dtype=np.int64, count=len(probs))
    doc = np.repeat(np.arange(len(probs)), sizes)
    removed = np.concatenate(noisy)
    w = np.concatenate(words).astype(np.float64)
    qw = (1.0 - np.concatenate(probs)) * w
    gold = np.bincount(doc, weights=qw, minlength=len(probs))
    out = np.bincount(doc, weights=w * ~removed, minlength=len(probs))
    hits = np.bincount(doc, weights=qw * ~removed, minlength=len(probs))
    denom = out + gold
    current = np.divide(2.0 * hits, denom, out=np.ones(len(probs)), where=denom > 0)
    any_removed = np.bincount(doc, weights=removed, minlength=len(probs)) > 0
    for i in np.flatnonzero(any_removed & (1.0 - current > rescue_margin)):
        noisy[i] = noisy_mask(probs[i], words[i], threshold, rescue_margin)
    return noisy


def removable_lines(n_lines: int, nonblank: np.ndarray, base: np.ndarray, protect_math: bool) -> np.ndarray:
    """Bool per line: a line a refiner may remove (non-blank and, with ``protect_math``, without
    formula evidence: `features.protected_rows`)."""
    removable = np.zeros(n_lines, dtype=bool)
    removable[nonblank] = True
    if protect_math:
        removable[protected_rows(base)] = False
    return removable


def noisy_ranges(lines: Sequence[str], noisy: np.ndarray, *, bridge_blank: bool = True) -> list[tuple[int, int]]:
    """Merge noisy line indices into inclusive ranges (blank lines between two noisy lines join them)."""
    return line_ranges(np.flatnonzero(noisy).tolist(), BlankLines(lines) if bridge_blank else ())


def removed_mask(n_lines: int, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(n_lines, dtype=bool)
    for a, b in ranges:
        out[a:b + 1] = True
    return out


def chunk_program(lines: Sequence[str], noisy: np.ndarray, *, protected: np.ndarray | None = None,
                  matcher: FragmentMatcher | None = None) -> str:
    """The merged ranges of the noisy lines; with ``matcher``, first the safe ``normalize`` cuts of
    the lines kept (`fragments.normalizations`; ``protected`` lines are never touched)."""
    ranges = noisy_ranges(lines, noisy)
    ops: list = []
    if matcher is not None:
        keep_out = np.zeros(len(lines), dtype=bool) if protected is None else protected
        cuts = normalizations(lines, removed_mask(len(lines), ranges), keep_out, matcher)
        ops += [Normalize(source, target) for source, target in cuts]
    ops += [RemoveLines(a, b) for a, b in ranges]
    return format_program(ops or [CLEAN_CHUNK])


def document_chunk_programs(docs: Sequence, noisy: Sequence[np.ndarray], matcher: FragmentMatcher | None) -> list[list[str]]:
    """Each analysed document's chunk stage as one program (line numbers are global, so it equals
    the joined chunk programs): ``docs`` have ``lines`` and a base matrix ``base`` (formula lines
    are never cut), ``noisy`` is each one's removal mask."""
    return [[chunk_program(d.lines, mask, protected=protected_rows(d.base), matcher=matcher)] for d, mask in zip(docs, noisy)]


def doc_program(keep: bool) -> str:
    return format_program([KeepDoc() if keep else DropDoc()])
