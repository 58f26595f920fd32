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
from dataclasses import dataclass
from itertools import repeat
from operator import is_not
from typing import Sequence

import numpy as np

from prox import mathtext

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
# Chinese, Japanese and Korean are written without spaces: each of these characters counts as
# a word, so a CJK sentence is not mistaken for a one-word menu item.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
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
    "math_markup", "math_block", "math_symbols",
]
_NB = len(BASE_NAMES)
_BLANK_BASE = [1.0] + [0.0] * (_NB - 1)
# Base facts copied from each non-blank neighbour.
_CTX = ["log_words", "ends_sentence", "upper_ratio", "title_ratio", "c4_fail", "stop_ratio", "linkish", "indent",
        "math_markup", "math_block"]
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
        "doc_blank_frac", "doc_token_mean", "doc_dup_frac", "doc_math_frac",
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
    toks = words + list(map(_pair, words, words[1:]))
    toks.append("^" + words[0])
    toks.append(words[-1] + "$")
    toks.append("<len:%d>" % n_all if n_all < 12 else "<len:%d>" % (12 + min(n_all // 10, 5)))
    stripped = line.strip()
    toks.append("<last:" + stripped[-1] + ">")
    toks.append("<first:" + stripped[0] + ">")
    return toks


_stop = STOP_WORDS.__contains__
_I_BLANK = BASE_NAMES.index("blank")
_I_WORDS = BASE_NAMES.index("log_words")
_I_SENT = BASE_NAMES.index("ends_sentence")
_I_DUP = BASE_NAMES.index("dup_count")
_I_SHORT = BASE_NAMES.index("short")
_I_LONG = BASE_NAMES.index("long")
_I_INDENT = BASE_NAMES.index("indent")
_I_MARKUP = BASE_NAMES.index("math_markup")
_I_BLOCK = BASE_NAMES.index("math_block")
_I_SYMBOLS = BASE_NAMES.index("math_symbols")
MATH_SYMBOLS_CAP = 20  # more math signs than this say nothing new about a line


def line_words(base: np.ndarray) -> np.ndarray:
    """Word count of each line (rows of a base matrix; 0 for blank lines)."""
    return np.expm1(base[:, _I_WORDS])


def protected_rows(base: np.ndarray) -> np.ndarray:
    """Lines with formula evidence (math markup or inside a math block): never noise."""
    return (base[:, _I_MARKUP] > 0) | (base[:, _I_BLOCK] > 0)


def _set_math_blocks(base: np.ndarray, lines: Sequence[str], offset: int = 0) -> None:
    """Mark the lines of one document that lie in a multi-line math block (in place)."""
    block = mathtext.block_lines(lines)
    if block.any():
        idx = np.flatnonzero(block) + offset
        idx = idx[base[idx, _I_BLANK] == 0.0]
        base[idx, _I_BLOCK] = 1.0


def _window_means(values: np.ndarray, k: np.ndarray, m: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over the previous / next ``WINDOW`` lines of the same document (0 if none)."""
    c = np.r_[0.0, np.cumsum(values)]
    lo = g - np.minimum(k, WINDOW)
    prev = (c[g] - c[lo]) / np.maximum(g - lo, 1)
    hi = g + 1 + np.minimum(m - 1 - k, WINDOW)
    nxt = (c[hi] - c[g + 1]) / np.maximum(hi - g - 1, 1)
    return prev, nxt


def flat_line_features(base: np.ndarray, token_scores: np.ndarray, doc_lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`batch_line_features` on the concatenated lines of a batch (``doc_lines``: lines per document).

    Returns the feature rows of the non-blank lines and their indices into ``base``.
    """
    ns = np.asarray(doc_lines, dtype=np.int64)
    blank = base[:, _I_BLANK] > 0
    flat_nb = np.flatnonzero(~blank)
    M = len(flat_nb)
    out = np.zeros((M, len(LINE_FEATURES)))
    if M == 0:
        return out, flat_nb
    nb = base[flat_nb]
    ts = np.asarray(token_scores, dtype=np.float64)[flat_nb]
    # blank line right before / after each non-blank line (inside its document)
    line_doc = np.repeat(np.arange(len(ns)), ns)
    first_of_doc = np.zeros(len(base), dtype=bool)
    last_of_doc = np.zeros(len(base), dtype=bool)
    starts_all = (np.cumsum(ns) - ns)[ns > 0]
    first_of_doc[starts_all] = True
    last_of_doc[starts_all + ns[ns > 0] - 1] = True
    prev_blank = np.r_[False, blank[:-1]] & ~first_of_doc
    next_blank = np.r_[blank[1:], False] & ~last_of_doc
    blank_before = prev_blank[flat_nb].astype(float)
    blank_after = next_blank[flat_nb].astype(float)
    ms = np.bincount(line_doc[flat_nb], minlength=len(ns))
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
    words = line_words(nb)
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
        np.stack([nb[:, _I_SHORT], nb[:, _I_SENT], words, ts, (nb[:, _I_DUP] > 0).astype(float),
                  protected_rows(nb).astype(float)], axis=1), starts
    )
    means = sums / m_doc[:, None]
    docf = np.stack(
        [np.log1p(m_doc), np.log1p(np.add.reduceat(words, starts)), means[:, 0], means[:, 1], means[:, 2],
         1.0 - m_doc / n_doc, means[:, 3], means[:, 4], means[:, 5]],
        axis=1,
    )
    out[:, col : col + docf.shape[1]] = docf[doc]
    return out, flat_nb


# ----------------------------------------------------------------------------- documents
DOC_FEATURES = [
    "log_words", "log_lines", "noise_line_frac", "noise_word_frac", "mean_noise_prob",
    "short_frac", "sentence_frac", "c4_fail_frac", "stop_ratio", "mean_words_per_line",
    "upper_ratio", "digit_ratio", "alpha_ratio", "dup_frac", "bullet_frac", "linkish_frac",
    "mean_word_len", "pipe_frac", "kept_words_log", "long_frac", "math_frac",
]


# ----------------------------------------------------------------------------- batch path
# The one implementation of the features, for training and inference. The readable per-line
# definitions it must equal are kept in tests/builtin_oracle.py (tested for equality); these
# compute them for all lines of a batch of documents
# at once: each distinct line is handled once, and the per-line work is done by C-level
# `map`s over lists and numpy over the batch's code points, not by Python loops.

_CP_LETTER, _CP_UPPER, _CP_DIGIT, _CP_SPACE, _CP_WS, _CP_WORD, _CP_CJK = 1, 2, 4, 8, 16, 32, 64
_char_table_cache: list[np.ndarray] = []


def char_table() -> np.ndarray:
    """Class bits of every Unicode code point (letter, upper, digit, ' ', whitespace), built once."""
    if not _char_table_cache:
        every = np.arange(0x110000, dtype=np.uint32)
        text = every.tobytes().decode("utf-32-le", "surrogatepass")
        table = np.zeros(0x110000, dtype=np.uint8)
        for pattern, bit in ((_LETTER, _CP_LETTER), (_UPPER, _CP_UPPER), (_DIGIT, _CP_DIGIT), (re.compile(r"\s"), _CP_WS),
                             (re.compile(r"\w"), _CP_WORD), (_CJK, _CP_CJK)):
            # each match is one character: replacing it by NUL keeps the positions
            marked = np.frombuffer(pattern.sub("\x00", text).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            hit = marked == 0
            hit[0] = pattern.match("\x00") is not None
            table[hit] |= bit
        table[ord(" ")] |= _CP_SPACE
        _char_table_cache.append(table)
    return _char_table_cache[0]


def _codepoints(joined: str) -> np.ndarray:
    return np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _segment_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sum of ``values[starts[i]:ends[i]]`` for each i (empty segments give 0)."""
    c = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=c[1:])
    return c[ends] - c[starts]


def _not_none(items) -> np.ndarray:
    return np.fromiter(map(is_not, items, repeat(None)), dtype=bool)


_LOG1P = np.array([math.log1p(i) for i in range(2048)])


def _log1p_int(a: np.ndarray) -> np.ndarray:
    """``math.log1p`` of non-negative integers (bit-equal to the per-line path, unlike ``np.log1p``)."""
    out = _LOG1P[np.minimum(a, len(_LOG1P) - 1)]
    big = np.flatnonzero(a >= len(_LOG1P))
    if len(big):
        out[big] = [math.log1p(v) for v in a[big].tolist()]
    return out


class TokenTable:
    """The token model's weights arranged for batch scoring (same sums as `line_tokens` lookups).

    Words get integer ids; word bigrams become sorted integer pair keys; the first/last
    word markers, length buckets and character markers become small arrays and dicts.
    Scoring a batch then needs one dict lookup per word and numpy for the rest.
    """

    def __init__(self, vocab: dict[str, float]) -> None:
        toks = list(vocab)
        ws = np.fromiter(vocab.values(), dtype=np.float64, count=len(toks))
        # words are \w+, so only shape tokens start with "<" or "^" or end with "$"; bigrams hold a space
        n_tok = len(toks)
        is_mark = np.fromiter(map(str.startswith, toks, repeat("<")), dtype=bool, count=n_tok)
        is_first = np.fromiter(map(str.startswith, toks, repeat("^")), dtype=bool, count=n_tok) & ~is_mark
        is_last = np.fromiter(map(str.endswith, toks, repeat("$")), dtype=bool, count=n_tok) & ~is_mark & ~is_first
        rest = ~(is_mark | is_first | is_last)
        is_pair = np.fromiter(map(str.__contains__, toks, repeat(" ")), dtype=bool, count=n_tok) & rest
        i_mark, i_first, i_last = np.flatnonzero(is_mark), np.flatnonzero(is_first), np.flatnonzero(is_last)
        i_pair, i_uni = np.flatnonzero(is_pair), np.flatnonzero(rest & ~is_pair)
        self.markers = {toks[i]: float(ws[i]) for i in i_mark.tolist()}
        uni = [toks[i] for i in i_uni.tolist()]
        first = [toks[i][1:] for i in i_first.tolist()]
        last = [toks[i][:-1] for i in i_last.tolist()]
        halves = "\n".join([toks[i] for i in i_pair.tolist()]).replace(" ", "\n").split("\n") if len(i_pair) else []
        pa, pb = halves[0::2], halves[1::2]  # a bigram is exactly "word word"
        words = dict.fromkeys(uni + first + last + pa + pb)
        self.word_id = words = dict(zip(words, range(len(words))))
        self.n_words = n = len(words)  # id n = a word outside the vocabulary
        wid = words.__getitem__

        def table(names: list[str], idx: np.ndarray) -> np.ndarray:
            arr = np.zeros(n + 1)
            arr[np.fromiter(map(wid, names), dtype=np.int64, count=len(names))] = ws[idx]
            return arr

        self.uni, self.first, self.last = table(uni, i_uni), table(first, i_first), table(last, i_last)
        keys = (np.fromiter(map(wid, pa), dtype=np.int64, count=len(pa)) * (n + 1)
                + np.fromiter(map(wid, pb), dtype=np.int64, count=len(pb)))
        order = np.argsort(keys, kind="stable")
        self.pair_keys = keys[order]
        self.pair_w = ws[i_pair][order]
        get = self.markers.get
        self.len_w = np.array([get("<len:%d>" % k, 0.0) for k in range(18)])
        self.nowords_w = get("<nowords>", 0.0)
        self.last_char = {t[6:-1]: w for t, w in self.markers.items() if t.startswith("<last:")}
        self.first_char = {t[7:-1]: w for t, w in self.markers.items() if t.startswith("<first:")}

    def sums(self, uniq: Sequence[str], lows: Sequence[str]) -> np.ndarray:
        """Sum of the token weights of each distinct non-blank stripped line (``lows``: lower-cased)."""
        L = len(uniq)
        if L == 0:
            return np.zeros(0)
        n_id = self.n_words
        low_len = np.fromiter(map(len, lows), dtype=np.int64, count=L)
        low_st = np.cumsum(low_len + 1) - (low_len + 1)
        cp = _codepoints("\n".join(lows))
        isw = (char_table()[cp] & _CP_WORD) != 0
        run = isw.copy()
        run[1:] &= ~isw[:-1]
        n_all = _segment_sums(run, low_st, low_st + low_len)
        # the \w+ runs in order: blank out every other character and split
        words = np.where(isw, cp, 32).astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass").split()
        if len(words) != int(n_all.sum()):  # cannot happen (\w is never whitespace); be safe
            raise AssertionError("word split mismatch")
        ids = np.fromiter(map(self.word_id.get, words, repeat(n_id)), dtype=np.int64, count=len(words))
        wline = np.repeat(np.arange(L), n_all)
        widx = np.arange(len(ids)) - np.repeat(np.cumsum(n_all) - n_all, n_all)
        keep = (widx < TOKEN_HEAD) | (widx >= n_all[wline] - TOKEN_TAIL)  # head and tail of long lines
        ids, wline = ids[keep], wline[keep]
        n = np.minimum(n_all, TOKEN_HEAD + TOKEN_TAIL)
        has = n > 0
        # token slots per line: words, bigrams, ^first, last$, <len>, <last:c>, <first:c> (line_tokens order)
        sizes = np.where(has, 2 * n + 4, 2)
        starts = np.cumsum(sizes) - sizes
        wstart = np.cumsum(n) - n
        vals = np.zeros(int(sizes.sum()))
        nw = len(ids)
        vals[np.arange(nw) + (starts - wstart)[wline]] = self.uni[ids]
        if nw > 1:
            j = np.flatnonzero(wline[1:] == wline[:-1])
            a, b = ids[j], ids[j + 1]
            key = a * (n_id + 1) + b
            pos = np.minimum(np.searchsorted(self.pair_keys, key), max(len(self.pair_keys) - 1, 0))
            found = (a < n_id) & (b < n_id) & (self.pair_keys[pos] == key) if len(self.pair_keys) else np.zeros(len(j), bool)
            vals[j + (starts + n - wstart)[wline[j]]] = np.where(found, self.pair_w[pos] if len(self.pair_w) else 0.0, 0.0)
        h = np.flatnonzero(has)
        at = starts[h] + 2 * n[h] - 1
        vals[at] = self.first[ids[wstart[h]]]
        vals[at + 1] = self.last[ids[wstart[h] + n[h] - 1]]
        na = n_all[h]
        vals[at + 2] = self.len_w[np.where(na < 12, na, 12 + np.minimum(na // 10, 5))]
        hl = h.tolist()
        zeros = repeat(0.0)
        vals[at + 3] = np.fromiter(map(self.last_char.get, [uniq[i][-1] for i in hl], zeros), dtype=np.float64, count=len(hl))
        vals[at + 4] = np.fromiter(map(self.first_char.get, [uniq[i][0] for i in hl], zeros), dtype=np.float64, count=len(hl))
        e = np.flatnonzero(~has)
        if len(e):
            get = self.markers.get
            vals[starts[e]] = self.nowords_w
            vals[starts[e] + 1] = [get("<sym:" + uniq[i][:3] + ">", 0.0) for i in e.tolist()]
        return np.bincount(np.repeat(np.arange(L), sizes), weights=vals, minlength=L)


def unique_base(uniq: Sequence[str], lows: Sequence[str]) -> np.ndarray:
    """`base_features` of distinct non-blank *stripped* lines, except ``dup_count`` and ``indent`` (0)."""
    L = len(uniq)
    out = np.zeros((L, _NB))
    if L == 0:
        return out
    n_chars = np.fromiter(map(len, uniq), dtype=np.int64, count=L)
    joined = "\n".join(uniq)
    cp = _codepoints(joined)
    flags = char_table()[cp]
    st = np.cumsum(n_chars + 1) - (n_chars + 1)
    end = st + n_chars
    # words: maximal runs of non-whitespace (what str.split() returns)
    ws = (flags & _CP_WS) != 0
    word_start = ~ws
    word_start[1:] &= ws[:-1]
    n_words = _segment_sums(word_start, st, end)
    n_units = n_words + _segment_sums((flags & _CP_CJK) != 0, st, end)
    cw = np.cumsum(word_start)
    line_of = np.repeat(np.arange(L), n_chars + 1)[: len(cp)]
    word_idx = cw - (cw[st] - word_start[st])[line_of]  # 1-based index of the word a character is in
    title = _segment_sums(word_start & ((flags & _CP_UPPER) != 0) & (word_idx <= WORD_SAMPLE), st, end)
    # character classes on the first CHAR_SAMPLE characters
    send = st + np.minimum(n_chars, CHAR_SAMPLE)
    n_sample = send - st
    alpha = _segment_sums((flags & _CP_LETTER) != 0, st, send)
    upper = _segment_sums((flags & _CP_UPPER) != 0, st, send)
    digits = _segment_sums((flags & _CP_DIGIT) != 0, st, send)
    spaces = _segment_sums((flags & _CP_SPACE) != 0, st, send)
    n_ws = np.minimum(n_words, WORD_SAMPLE)
    # stop words among the first WORD_SAMPLE lower-cased words
    low_joined = "\n".join(lows)
    low_words = low_joined.split()
    if len(low_words) == int(n_words.sum()):
        wline = np.repeat(np.arange(L), n_words)
        widx = np.arange(len(low_words)) - np.repeat(np.cumsum(n_words) - n_words, n_words)
        is_stop = np.fromiter(map(_stop, low_words), dtype=bool, count=len(low_words)) & (widx < WORD_SAMPLE)
        stops = np.bincount(wline, weights=is_stop, minlength=L)
    else:  # lower-casing changed word boundaries somewhere: per line
        stops = np.array([sum(map(_stop, lw.split()[:WORD_SAMPLE])) for lw in lows], dtype=np.float64)
    # substrings of the lower-cased text (no pattern spans a newline): line of each match
    low_len = np.fromiter(map(len, lows), dtype=np.int64, count=L)
    low_st = np.cumsum(low_len + 1) - (low_len + 1)

    def has_match(pattern: re.Pattern) -> np.ndarray:
        hits = np.zeros(L, dtype=bool)
        pos = [m.start() for m in pattern.finditer(low_joined)]
        if pos:
            hits[np.searchsorted(low_st, pos, side="right") - 1] = True
        return hits

    lasts = [s[-1] for s in uniq]
    ends_sentence = np.fromiter(map(_SENTENCE_END_SET.__contains__, lasts), dtype=bool, count=L)
    ends_colon = np.fromiter(map(":".__eq__, lasts), dtype=bool, count=L)
    ends_term = np.fromiter(map(_TERMINAL_SET.__contains__, lasts), dtype=bool, count=L)
    c4_ok = np.fromiter(map(str.endswith, uniq, repeat(C4_TERMINAL)), dtype=bool, count=L)
    c4_fail = ~c4_ok | has_match(_C4_BAD_RE)
    cnt = str.count
    out[:, 1] = _log1p_int(n_chars)
    out[:, 2] = _log1p_int(n_units)
    out[:, 3] = ends_sentence
    out[:, 4] = ends_colon
    out[:, 5] = ends_term & ~ends_sentence & ~ends_colon
    out[:, 6] = np.where(alpha > 0, upper / np.maximum(alpha, 1), 0.0)
    out[:, 7] = digits / n_sample
    out[:, 8] = alpha / n_sample
    out[:, 9] = np.fromiter(map(str.startswith, uniq, repeat(_BULLETS)), dtype=bool, count=L)
    out[:, 10] = np.minimum(np.fromiter(map(cnt, uniq, repeat("|")), dtype=np.int64, count=L), 10)
    out[:, 11] = title / n_ws
    out[:, 12] = has_match(_LINKISH_RE)
    out[:, 14] = (n_chars - n_words + 1) / n_words
    out[:, 15] = stops / n_ws
    out[:, 16] = c4_fail
    out[:, 17] = n_units < SHORT_LINE_WORDS
    out[:, 18] = n_units >= LONG_LINE_WORDS
    out[:, 19] = (n_sample - alpha - digits - spaces) / n_sample
    out[:, 21] = _not_none(map(_NUMBER_MARKER.match, uniq))
    out[:, 22] = np.minimum(np.fromiter(map(cnt, uniq, repeat("\t")), dtype=np.int64, count=L), 10)
    out[:, _I_MARKUP] = np.fromiter(map(mathtext.has_markup, uniq), dtype=bool, count=L)
    symbols = np.fromiter(map(mathtext.symbol_count, uniq), dtype=np.int64, count=L)
    out[:, _I_SYMBOLS] = _log1p_int(np.minimum(symbols, MATH_SYMBOLS_CAP))
    return out


_SENTENCE_END_SET = frozenset(_SENTENCE_END)
_TERMINAL_SET = frozenset(_TERMINAL)


@dataclass
class LineBatch:
    """All lines of a batch of documents, each distinct stripped line analysed once."""

    lines: list[str]  # every line of every document, in order
    doc_lines: np.ndarray  # number of lines of each document
    uniq: list[str]  # distinct non-blank stripped lines
    lows: list[str]  # their lower-cased forms
    line_uniq: np.ndarray  # index into ``uniq`` of each line (-1: blank)
    base: np.ndarray  # base facts of every line (``len(lines) x len(BASE_NAMES)``)


def line_batch(docs_lines: Sequence[Sequence[str]]) -> LineBatch:
    """Base facts of every line of many documents (equal to `base_matrix` of each)."""
    lines = [ln for dl in docs_lines for ln in dl]
    counts = np.fromiter(map(len, docs_lines), dtype=np.int64, count=len(docs_lines))
    stripped = list(map(str.strip, lines))
    index = dict.fromkeys(stripped)
    index.pop("", None)
    uniq = list(index)
    for i, k in enumerate(uniq):
        index[k] = i
    line_uniq = np.fromiter(map(index.get, stripped, repeat(-1)), dtype=np.int64, count=len(lines))
    lows = list(map(str.lower, uniq))
    ub = unique_base(uniq, lows)
    nonblank = line_uniq >= 0
    base = np.zeros((len(lines), _NB))
    base[nonblank] = ub[line_uniq[nonblank]]
    base[~nonblank, _I_BLANK] = 1.0
    # duplicates of a stripped line within its document
    nb = np.flatnonzero(nonblank)
    if len(nb):
        doc_of = np.repeat(np.arange(len(counts)), counts)[nb]
        _, inverse, cnt = np.unique(doc_of * (len(uniq) + 1) + line_uniq[nb], return_inverse=True, return_counts=True)
        base[nb, _I_DUP] = np.minimum(cnt[inverse.ravel()] - 1, 5)
        # leading whitespace (indentation)
        lead = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) - np.fromiter(
            map(len, map(str.lstrip, lines)), dtype=np.int64, count=len(lines))
        ind = np.flatnonzero((lead > 0) & nonblank)
        if len(ind):
            tabs = np.array([lines[i][: lead[i]].count("\t") for i in ind.tolist()], dtype=np.int64)
            base[ind, _I_INDENT] = _log1p_int(lead[ind] + 3 * tabs)
    start = 0
    for dl, n in zip(docs_lines, counts.tolist()):
        if n and mathtext.may_have_blocks("\n".join(dl)):
            _set_math_blocks(base, dl, start)
        start += n
    return LineBatch(lines, counts, uniq, lows, line_uniq, base)


def batch_doc_features(base: np.ndarray, line_probs: np.ndarray, doc_lines: np.ndarray, threshold: float) -> np.ndarray:
    """`doc_features` of every document of a batch (concatenated lines; ``doc_lines`` per document).

    Equal to the per-document function up to the order of floating-point additions.
    """
    ns = np.asarray(doc_lines, dtype=np.int64)
    D = len(ns)
    out = np.zeros((D, len(DOC_FEATURES)))
    keep = base[:, _I_BLANK] == 0.0
    doc_of = np.repeat(np.arange(D), ns)[keep]
    if not len(doc_of):
        return out
    b = base[keep]
    p = np.asarray(line_probs, dtype=np.float64)[keep]
    ms = np.bincount(doc_of, minlength=D)
    present = np.flatnonzero(ms > 0)
    m = ms[present].astype(np.float64)
    st = np.cumsum(ms[present]) - ms[present]
    words = line_words(b)
    noisy = p >= threshold
    idx = BASE_NAMES.index
    cols = np.column_stack([
        words, words * noisy, p, noisy, words * ~noisy, b[:, _I_DUP] > 0, b[:, idx("pipe_count")] > 0,
        words * b[:, idx("stop_ratio")], words * b[:, idx("mean_word_len")],
    ])
    sums = np.add.reduceat(cols, st, axis=0)
    bsum = np.add.reduceat(b, st, axis=0)
    mean = bsum / m[:, None]
    wsum = sums[:, 0]
    total = np.where(wsum == 0, 1.0, wsum)
    out[present] = np.column_stack([
        np.log1p(wsum), np.log1p(m), sums[:, 3] / m, sums[:, 1] / total, sums[:, 2] / m,
        mean[:, _I_SHORT], mean[:, _I_SENT], mean[:, idx("c4_fail")], sums[:, 7] / total, wsum / m,
        mean[:, idx("upper_ratio")], mean[:, idx("digit_ratio")], mean[:, idx("alpha_ratio")], sums[:, 5] / m,
        mean[:, idx("starts_bullet")], mean[:, idx("linkish")], sums[:, 8] / total, sums[:, 6] / m,
        np.log1p(sums[:, 4]), mean[:, _I_LONG], np.add.reduceat(protected_rows(b).astype(float), st) / m,
    ])
    return out
