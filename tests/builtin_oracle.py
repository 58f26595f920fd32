"""The builtin's features written line by line: the readable definitions, kept as the oracle.

`prox.builtin.features` computes the same numbers for a whole batch at once (`line_batch`,
`flat_line_features`, `batch_doc_features`, `TokenTable`); training and inference both use that
one implementation. These per-line / per-document versions are what it must equal exactly
(`tests/test_builtin_batch.py`): the trees compare features with thresholds, so "close" is not enough.
"""
from __future__ import annotations

import math
from itertools import repeat
from typing import Sequence

import numpy as np

from prox import mathtext
from prox.builtin.features import (
    _BLANK_BASE, _BULLETS, _C4_BAD_RE, _CJK, _CTX_IDX, _DIGIT, _I_BLANK, _I_DUP, _I_LONG, _I_SENT, _I_SHORT, _I_WORDS,
    _LETTER, _LINKISH_RE, _NB, _NUMBER_MARKER, _SENTENCE_END, _TERMINAL, _TITLE, _UPPER, C4_TERMINAL, CHAR_SAMPLE,
    CONTEXT_OFFSETS, DOC_FEATURES, LINE_FEATURES, LONG_LINE_WORDS, MATH_SYMBOLS_CAP, SHORT_LINE_WORDS, WORD_SAMPLE,
    BASE_NAMES, _set_math_blocks, _stop, _window_means, flat_line_features, line_tokens, protected_rows,
)


def token_scores(model, lines: Sequence[str]) -> np.ndarray:
    """The token model's score of each line: bias + the weights of its tokens (0 for blank lines)."""
    get = model.vocab.get
    zeros = repeat(0.0)
    return np.array([model.token_bias + sum(map(get, line_tokens(ln), zeros)) if ln.strip() else 0.0 for ln in lines])


_ASCII_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_ASCII_UPPER = _ASCII_LOWER.upper()
_ASCII_DIGITS = b"0123456789"


def _char_classes(sample: str) -> tuple[int, int, int]:
    """(letters, upper-case letters, digits) of ``sample``; a C-speed path for ASCII."""
    if sample.isascii():
        b = sample.encode("ascii")
        n = len(b)
        lower = n - len(b.translate(None, _ASCII_LOWER))
        upper = n - len(b.translate(None, _ASCII_UPPER))
        digits = n - len(b.translate(None, _ASCII_DIGITS))
        return lower + upper, upper, digits
    return len(_LETTER.findall(sample)), len(_UPPER.findall(sample)), len(_DIGIT.findall(sample))


def base_features(line: str, dup_count: int) -> list[float]:
    stripped = line.strip()
    if not stripped:
        return _BLANK_BASE
    n_chars = len(stripped)
    words = stripped.split()
    n_words = len(words)
    n_units = n_words + len(_CJK.findall(stripped))  # words, counting each CJK character as one
    # character classes on a bounded prefix: ratios converge fast and long lines stay cheap
    sample = stripped[:CHAR_SAMPLE]
    n_sample = len(sample)
    alpha, upper, digits = _char_classes(sample)
    low = stripped.lower()
    last = stripped[-1]
    ends_sentence = last in _SENTENCE_END
    ws = words[:WORD_SAMPLE] if n_words > WORD_SAMPLE else words
    n_ws = len(ws)
    title = len(_TITLE.findall(" " + " ".join(ws))) / n_ws
    stops = sum(map(_stop, low.split()[:WORD_SAMPLE])) / n_ws
    c4_fail = (not stripped.endswith(C4_TERMINAL)) or _C4_BAD_RE.search(low) is not None
    punct = n_sample - alpha - digits - sample.count(" ")
    lead = line[: len(line) - len(line.lstrip())]
    return [
        0.0,
        math.log1p(n_chars),
        math.log1p(n_units),
        1.0 if ends_sentence else 0.0,
        1.0 if last == ":" else 0.0,
        1.0 if (last in _TERMINAL and not ends_sentence and last != ":") else 0.0,
        upper / alpha if alpha else 0.0,
        digits / n_sample,
        alpha / n_sample,
        1.0 if stripped.startswith(_BULLETS) else 0.0,
        float(min(stripped.count("|"), 10)),
        title,
        0.0 if _LINKISH_RE.search(low) is None else 1.0,
        float(min(dup_count - 1, 5)),
        (n_chars - n_words + 1) / n_words,
        stops,
        1.0 if c4_fail else 0.0,
        1.0 if n_units < SHORT_LINE_WORDS else 0.0,
        1.0 if n_units >= LONG_LINE_WORDS else 0.0,
        punct / n_sample,
        math.log1p(len(lead) + 3 * lead.count("\t")),
        1.0 if _NUMBER_MARKER.match(stripped) else 0.0,
        float(min(stripped.count("\t"), 10)),
        1.0 if mathtext.has_markup(stripped) else 0.0,
        0.0,  # math_block: a fact of the document, set by base_matrix / line_batch
        math.log1p(min(mathtext.symbol_count(stripped), MATH_SYMBOLS_CAP)),
    ]


def base_matrix(lines: Sequence[str]) -> np.ndarray:
    """``len(lines) x len(BASE_NAMES)``: the base facts of every line of one document."""
    counts: dict[str, int] = {}
    keys = [ln.strip() for ln in lines]
    for k in keys:
        if k:
            counts[k] = counts.get(k, 0) + 1
    if not keys:
        return np.zeros((0, _NB))
    base = np.array([base_features(ln, counts.get(k, 0)) for ln, k in zip(lines, keys)], dtype=np.float64)
    if mathtext.may_have_blocks("\n".join(lines)):
        _set_math_blocks(base, lines)
    return base


def doc_line_features(base: np.ndarray, token_scores: np.ndarray) -> np.ndarray:
    """The dense feature matrix (``n_lines x len(LINE_FEATURES)``) of one document."""
    n = len(base)
    if n == 0:
        return np.zeros((0, len(LINE_FEATURES)))
    ts = np.asarray(token_scores, dtype=np.float64)
    nonblank = np.flatnonzero(base[:, _I_BLANK] == 0.0)
    m = len(nonblank)
    out = np.zeros((n, len(LINE_FEATURES)))
    out[:, :_NB] = base
    out[:, _NB] = ts
    col = _NB + 1
    if m == 0:
        return out
    nb = base[nonblank]
    nts = ts[nonblank]
    ctx = np.concatenate([nb[:, _CTX_IDX], nts[:, None], np.ones((m, 1))], axis=1)
    width = ctx.shape[1]
    # Neighbour blocks over the non-blank sequence (missing neighbour -> zeros, exists=0).
    for off in CONTEXT_OFFSETS:
        block = np.zeros((m, width))
        if off < 0 and m + off > 0:
            block[-off:] = ctx[: m + off]
        elif off > 0 and m - off > 0:
            block[: m - off] = ctx[off:]
        out[nonblank, col : col + width] = block
        col += width
    # Position among non-blank lines and in the word mass.
    k = np.arange(m, dtype=np.float64)
    words = np.expm1(nb[:, _I_WORDS])
    total = words.sum() or 1.0
    cum = np.cumsum(words)
    long_idx = np.flatnonzero(nb[:, _I_LONG] > 0)
    first_long = long_idx[0] if len(long_idx) else m
    last_long = long_idx[-1] if len(long_idx) else -1
    # Distance (in non-blank lines) to the previous / next long line, capped at 50.
    is_long = nb[:, _I_LONG] > 0
    ar = np.arange(m)
    last_long_at = np.maximum.accumulate(np.where(is_long, ar, -1))
    prev_at = np.r_[-1, last_long_at[:-1]]
    prev_long = np.where(prev_at >= 0, np.minimum(ar - prev_at, 50), 50).astype(float)
    next_long_at = np.minimum.accumulate(np.where(is_long, ar, m)[::-1])[::-1]
    next_at = np.r_[next_long_at[1:], m]
    next_long = np.where(next_at < m, np.minimum(next_at - ar, 50), 50).astype(float)
    # Length of the run of short lines this line belongs to (0 for other lines).
    short = nb[:, _I_SHORT] > 0
    edges = np.flatnonzero(np.r_[True, short[1:] != short[:-1], True])
    lengths = np.diff(edges)
    run = np.repeat(lengths, lengths) * short
    blank = base[:, _I_BLANK] > 0
    blank_before = np.zeros(n)
    blank_after = np.zeros(n)
    blank_before[1:] = blank[:-1]
    blank_after[:-1] = blank[1:]
    pos = np.stack(
        [
            k / max(m - 1, 1),
            np.log1p(k),
            np.log1p(m - 1 - k),
            (cum - words) / total,
            (total - cum) / total,
            (k < first_long).astype(float),
            (k > last_long).astype(float),
            np.log1p(run),
            np.log1p(prev_long),
            np.log1p(next_long),
            blank_before[nonblank],
            blank_after[nonblank],
            *_window_means(nts, k.astype(np.int64), np.full(m, m), np.arange(m)),
            *_window_means(nb[:, _I_LONG], k.astype(np.int64), np.full(m, m), np.arange(m)),
        ],
        axis=1,
    )
    out[nonblank, col : col + pos.shape[1]] = pos
    col += pos.shape[1]
    doc = [
        math.log1p(m),
        math.log1p(total),
        float(nb[:, _I_SHORT].mean()),
        float(nb[:, _I_SENT].mean()),
        float(words.mean()),
        1.0 - m / n,
        float(nts.mean()),
        float((nb[:, _I_DUP] > 0).mean()),
        float(protected_rows(nb).mean()),
    ]
    out[:, col : col + len(doc)] = doc
    return out


def batch_line_features(bases: Sequence[np.ndarray], token_scores: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """`doc_line_features` for many documents at once, vectorised over the whole batch.

    Returns the feature rows of the *non-blank* lines of all documents, concatenated in
    order, and each document's non-blank line indices. Equal to the per-document
    function on those rows (tested); this one avoids per-document numpy overhead.
    """
    ns = np.array([len(b) for b in bases], dtype=np.int64)
    base = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, _NB) for b in bases]) if len(bases) else np.zeros((0, _NB))
    ts = np.concatenate([np.asarray(t, dtype=np.float64) for t in token_scores]) if len(bases) else np.zeros(0)
    X, flat_nb = flat_line_features(base, ts, ns)
    starts = np.cumsum(ns) - ns
    ends = np.searchsorted(flat_nb, starts + ns)
    begins = np.searchsorted(flat_nb, starts)
    return X, [flat_nb[i:j] - s for i, j, s in zip(begins.tolist(), ends.tolist(), starts.tolist())]


def doc_features(base: np.ndarray, line_probs: np.ndarray, threshold: float) -> list[float]:
    """Document-level features: text statistics plus aggregates of the line model."""
    keep = base[:, _I_BLANK] == 0.0 if len(base) else np.zeros(0, dtype=bool)
    if not keep.any():
        return [0.0] * len(DOC_FEATURES)
    b = base[keep]
    p = np.asarray(line_probs)[keep]
    words = np.expm1(b[:, _I_WORDS])
    total = float(words.sum()) or 1.0
    noisy = p >= threshold
    mean = b.mean(axis=0)
    wmean = (words @ b) / total
    idx = BASE_NAMES.index
    return [
        math.log1p(total),
        math.log1p(len(b)),
        float(noisy.mean()),
        float(words[noisy].sum() / total),
        float(p.mean()),
        float(mean[_I_SHORT]),
        float(mean[_I_SENT]),
        float(mean[idx("c4_fail")]),
        float(wmean[idx("stop_ratio")]),
        float(words.mean()),
        float(mean[idx("upper_ratio")]),
        float(mean[idx("digit_ratio")]),
        float(mean[idx("alpha_ratio")]),
        float((b[:, _I_DUP] > 0).mean()),
        float(mean[idx("starts_bullet")]),
        float(mean[idx("linkish")]),
        float(wmean[idx("mean_word_len")]),
        float((b[:, idx("pipe_count")] > 0).mean()),
        math.log1p(float(words[~noisy].sum())),
        float(b[:, _I_LONG].mean()),
        float(protected_rows(b).mean()),
    ]


