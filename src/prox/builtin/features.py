"""Line and document features of the builtin refiner (pure Python + numpy, no model).

A document is ``text.split("\\n")`` -- the same line numbering as the ProX programs and
the benchmark labels. Every line gets

* a bag of *tokens* (lower-cased words, word bigrams, first/last word markers and a few
  shape tokens), scored by a linear token model (``token_score``), and
* a dense vector (``LINE_FEATURES``): its own shape, its position among the non-blank
  lines, the same facts about its non-blank neighbours, and document aggregates.

Blank lines are skipped when looking for neighbours, because the main-content extractor
puts a blank line between most paragraphs.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

# C4 line rule (Raffel et al. 2020, "Exploring the limits of transfer learning", §2.2).
C4_TERMINAL = (".", "!", "?", '"')
C4_BAD_SUBSTRINGS = ("javascript", "cookie", "lorem ipsum")
# A "long" line: at least this many words (a paragraph, not a caption or a link).
LONG_LINE_WORDS = 20
SHORT_LINE_WORDS = 5

_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
_UPPER = re.compile(r"[A-ZÀ-ÖØ-ÞĀ-ŽА-ЯΑ-Ω]")
_DIGIT = re.compile(r"\d")
_NUMBER_MARKER = re.compile(r"\d{1,3}[.)] ")
_TITLE = re.compile(r" [A-ZÀ-ÖØ-ÞĀ-ŽА-ЯΑ-Ω]")
CHAR_SAMPLE = 200  # characters of a line used for the character-class ratios
WORD_SAMPLE = 60  # words of a line used for the word-class ratios
TOKEN_HEAD, TOKEN_TAIL = 32, 16  # words of a long line that give tokens (its head and tail)
_TERMINAL = (".", "!", "?", '"', "”", "’", "'", "»", ")", "。", "！", "？", ":", ";")
_SENTENCE_END = (".", "!", "?", '"', "”", "’", "'", "»", "。", "！", "？")
_BULLETS = ("•", "-", "*", "|", "·", ">", "»", "©", "–", "—", "→", "►", "▶", "#", "+")
_LINKISH = ("http", "www.", ".com", ".html", "@", "://")
_C4_BAD_RE = re.compile("|".join(map(re.escape, C4_BAD_SUBSTRINGS)))
_LINKISH_RE = re.compile("|".join(map(re.escape, _LINKISH)))

# Frequent function words of the languages in the public data (EN, DE, FR, ES, PL, IT, NL).
STOP_WORDS = frozenset(
    """the a an and or of to in on for with is are was were be been it this that as at by from
    not but have has had he she they we you i his her their our its which who will would can
    der die das und ist nicht ein eine zu den mit von sich des auf für im dem es auch wie
    le la les et est un une des du en que qui pour dans pas sur au ce il elle
    el los las y es una por con para se del lo como más
    i w z na się nie do że jest to o jak
    di che il non per una sono
    het een van en de is dat op te""".split()
)

# The base facts of one line (index into the per-line base vector).
BASE_NAMES = [
    "blank", "log_chars", "log_words", "ends_sentence", "ends_colon", "ends_other_punct",
    "upper_ratio", "digit_ratio", "alpha_ratio", "starts_bullet", "pipe_count",
    "title_ratio", "linkish", "dup_count", "mean_word_len", "stop_ratio", "c4_fail",
    "short", "long", "punct_ratio", "indent", "number_marker", "inner_tabs",
]
_NB = len(BASE_NAMES)
_BLANK_BASE = [1.0] + [0.0] * (_NB - 1)
# Base facts copied from each non-blank neighbour.
_CTX = ["log_words", "ends_sentence", "upper_ratio", "title_ratio", "c4_fail", "stop_ratio", "linkish", "indent"]
WINDOW = 10  # non-blank lines on each side for the "section" averages
_CTX_IDX = [BASE_NAMES.index(n) for n in _CTX]
CONTEXT_OFFSETS = (-3, -2, -1, 1, 2, 3)

LINE_FEATURES: list[str] = (
    list(BASE_NAMES)
    + ["token_score"]
    + [f"{name}@{off:+d}" for off in CONTEXT_OFFSETS for name in _CTX + ["token_score", "exists"]]
    + [
        "rel_pos", "log_idx_from_start", "log_idx_from_end", "words_before_frac", "words_after_frac",
        "before_first_long", "after_last_long", "short_run_len", "dist_prev_long", "dist_next_long",
        "blank_before", "blank_after",
        "token_mean_prev", "token_mean_next", "long_frac_prev", "long_frac_next",
        "doc_log_lines", "doc_log_words", "doc_short_frac", "doc_sentence_frac", "doc_mean_words",
        "doc_blank_frac", "doc_token_mean", "doc_dup_frac",
    ]
)


def split_lines(text: str) -> list[str]:
    """The ProX line numbering: ``text.split("\\n")``."""
    return text.split("\n")


_pair = "{} {}".format


def line_tokens(line: str) -> list[str]:
    """Tokens of one line for the token model (lower-cased words, bigrams, markers)."""
    words = _WORD.findall(line.lower())
    if not words:
        stripped = line.strip()
        return ["<nowords>", "<sym:" + stripped[:3] + ">"] if stripped else ["<blank>"]
    if len(words) > TOKEN_HEAD + TOKEN_TAIL:
        n_all = len(words)
        words = words[:TOKEN_HEAD] + words[-TOKEN_TAIL:]
    else:
        n_all = len(words)
    n = len(words)
    toks = words + list(map(_pair, words, words[1:]))
    toks.append("^" + words[0])
    toks.append(words[-1] + "$")
    toks.append("<len:%d>" % n_all if n_all < 12 else "<len:%d>" % (12 + min(n_all // 10, 5)))
    stripped = line.strip()
    toks.append("<last:" + stripped[-1] + ">")
    toks.append("<first:" + stripped[0] + ">")
    return toks


_ASCII_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_ASCII_UPPER = _ASCII_LOWER.upper()
_ASCII_DIGITS = b"0123456789"
_stop = STOP_WORDS.__contains__


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
        math.log1p(n_words),
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
        1.0 if n_words < SHORT_LINE_WORDS else 0.0,
        1.0 if n_words >= LONG_LINE_WORDS else 0.0,
        punct / n_sample,
        math.log1p(len(lead) + 3 * lead.count("\t")),
        1.0 if _NUMBER_MARKER.match(stripped) else 0.0,
        float(min(stripped.count("\t"), 10)),
    ]


_I_BLANK = BASE_NAMES.index("blank")
_I_WORDS = BASE_NAMES.index("log_words")
_I_SENT = BASE_NAMES.index("ends_sentence")
_I_DUP = BASE_NAMES.index("dup_count")
_I_SHORT = BASE_NAMES.index("short")
_I_LONG = BASE_NAMES.index("long")


def _window_means(values: np.ndarray, k: np.ndarray, m: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over the previous / next ``WINDOW`` lines of the same document (0 if none)."""
    c = np.r_[0.0, np.cumsum(values)]
    lo = g - np.minimum(k, WINDOW)
    prev = (c[g] - c[lo]) / np.maximum(g - lo, 1)
    hi = g + 1 + np.minimum(m - 1 - k, WINDOW)
    nxt = (c[hi] - c[g + 1]) / np.maximum(hi - g - 1, 1)
    return prev, nxt


def base_matrix(lines: Sequence[str]) -> np.ndarray:
    """``len(lines) x len(BASE_NAMES)``: the base facts of every line of one document."""
    counts: dict[str, int] = {}
    keys = [ln.strip() for ln in lines]
    for k in keys:
        if k:
            counts[k] = counts.get(k, 0) + 1
    if not keys:
        return np.zeros((0, _NB))
    return np.array([base_features(ln, counts.get(k, 0)) for ln, k in zip(lines, keys)], dtype=np.float64)


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
    ]
    out[:, col : col + len(doc)] = doc
    return out


def batch_line_features(bases: Sequence[np.ndarray], token_scores: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """`doc_line_features` for many documents at once, vectorised over the whole batch.

    Returns the feature rows of the *non-blank* lines of all documents, concatenated in
    order, and each document's non-blank line indices. Equal to the per-document
    function on those rows (tested); this one avoids per-document numpy overhead.
    """
    nonblank = [np.flatnonzero(b[:, _I_BLANK] == 0.0) if len(b) else np.zeros(0, dtype=np.int64) for b in bases]
    ms = np.array([len(nb) for nb in nonblank], dtype=np.int64)
    M = int(ms.sum())
    out = np.zeros((M, len(LINE_FEATURES)))
    if M == 0:
        return out, nonblank
    nb = np.concatenate([b[i] for b, i in zip(bases, nonblank) if len(i)])
    ts = np.concatenate([np.asarray(t, dtype=np.float64)[i] for t, i in zip(token_scores, nonblank) if len(i)])
    # blank line right before / after each non-blank line (inside its document)
    bb_parts, ba_parts = [], []
    for b, i in zip(bases, nonblank):
        if len(i):
            blank = b[:, _I_BLANK] > 0
            bb_parts.append(np.r_[False, blank[:-1]][i])
            ba_parts.append(np.r_[blank[1:], False][i])
    blank_before = np.concatenate(bb_parts).astype(float)
    blank_after = np.concatenate(ba_parts).astype(float)
    ns = np.array([len(b) for b in bases], dtype=np.int64)
    present = ms > 0
    m_doc = ms[present]
    n_doc = ns[present]
    starts = np.r_[0, np.cumsum(m_doc)[:-1]]
    doc = np.repeat(np.arange(len(m_doc)), m_doc)
    g = np.arange(M)
    k = g - starts[doc]
    m = m_doc[doc]
    out[:, :_NB] = nb
    out[:, _NB] = ts
    col = _NB + 1
    ctx = np.concatenate([nb[:, _CTX_IDX], ts[:, None], np.ones((M, 1))], axis=1)
    width = ctx.shape[1]
    for off in CONTEXT_OFFSETS:
        valid = (k + off >= 0) & (k + off < m)
        src = np.clip(g + off, 0, M - 1)
        out[:, col : col + width] = ctx[src] * valid[:, None]
        col += width
    words = np.expm1(nb[:, _I_WORDS])
    total_doc = np.add.reduceat(words, starts)
    total_doc[total_doc == 0] = 1.0
    total = total_doc[doc]
    cum = np.cumsum(words)
    cum = cum - np.r_[0.0, cum][starts][doc]
    is_long = nb[:, _I_LONG] > 0
    first_long = np.minimum.reduceat(np.where(is_long, k, m), starts)[doc]
    last_long = np.maximum.reduceat(np.where(is_long, k, -1), starts)[doc]
    doc_start = starts[doc]
    doc_end = doc_start + m  # exclusive
    last_at = np.maximum.accumulate(np.where(is_long, g, -1))
    prev_at = np.r_[-1, last_at[:-1]]
    prev_long = np.where(prev_at >= doc_start, np.minimum(g - prev_at, 50), 50).astype(float)
    next_at_all = np.minimum.accumulate(np.where(is_long, g, M)[::-1])[::-1]
    next_at = np.r_[next_at_all[1:], M]
    next_long = np.where(next_at < doc_end, np.minimum(next_at - g, 50), 50).astype(float)
    short = nb[:, _I_SHORT] > 0
    edges = np.flatnonzero(np.r_[True, (short[1:] != short[:-1]) | (doc[1:] != doc[:-1]), True])
    lengths = np.diff(edges)
    run = np.repeat(lengths, lengths) * short
    kf = k.astype(float)
    pos = np.stack(
        [
            kf / np.maximum(m - 1, 1),
            np.log1p(kf),
            np.log1p(m - 1 - kf),
            (cum - words) / total,
            (total - cum) / total,
            (k < first_long).astype(float),
            (k > last_long).astype(float),
            np.log1p(run),
            np.log1p(prev_long),
            np.log1p(next_long),
            blank_before,
            blank_after,
            *_window_means(ts, k, m, g),
            *_window_means(nb[:, _I_LONG], k, m, g),
        ],
        axis=1,
    )
    out[:, col : col + pos.shape[1]] = pos
    col += pos.shape[1]
    sums = np.add.reduceat(
        np.stack([nb[:, _I_SHORT], nb[:, _I_SENT], words, ts, (nb[:, _I_DUP] > 0).astype(float)], axis=1), starts
    )
    means = sums / m_doc[:, None]
    docf = np.stack(
        [np.log1p(m_doc), np.log1p(np.add.reduceat(words, starts)), means[:, 0], means[:, 1], means[:, 2],
         1.0 - m_doc / n_doc, means[:, 3], means[:, 4]],
        axis=1,
    )
    out[:, col : col + docf.shape[1]] = docf[doc]
    return out, nonblank


# ----------------------------------------------------------------------------- documents
DOC_FEATURES = [
    "log_words", "log_lines", "noise_line_frac", "noise_word_frac", "mean_noise_prob",
    "short_frac", "sentence_frac", "c4_fail_frac", "stop_ratio", "mean_words_per_line",
    "upper_ratio", "digit_ratio", "alpha_ratio", "dup_frac", "bullet_frac", "linkish_frac",
    "mean_word_len", "pipe_frac", "kept_words_log", "long_frac",
]


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
    ]

