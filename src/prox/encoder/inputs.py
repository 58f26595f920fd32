"""What the sequence model reads for each page: line vectors + the builtin's dense line features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from prox.builtin import features as F
from prox.builtin.model import BuiltinModel


@dataclass
class Page:
    lines: list[str]  # text.split("\n")
    base: np.ndarray  # builtin base facts of every line (math evidence, blank flag)
    nonblank: np.ndarray  # indices of the non-blank lines (the sequence the model reads)
    feat: np.ndarray  # builtin dense features of the non-blank lines (len(nonblank) x len(LINE_FEATURES))
    emb: np.ndarray | None = None  # base-encoder vectors of the non-blank lines


def builtin_features(builtin: BuiltinModel, texts: Sequence[str], token_scores: np.ndarray | None = None,
                     *, stack: bool = True) -> list[Page]:
    """The builtin's line features of each text, computed by its batch path (`BuiltinModel.analyze`'s inputs).

    ``token_scores`` (one per line of the concatenated texts) replaces the builtin token model's
    scores: training passes out-of-fold scores so the sequence model never sees over-fitted ones.
    With ``stack`` the builtin trees' log-odds of each line is appended as one more feature.
    """
    docs_lines = [F.split_lines(t) for t in texts]
    lb = F.line_batch(docs_lines)
    if token_scores is None:
        nonblank = lb.line_uniq >= 0
        ts = np.zeros(len(lb.lines))
        ts[nonblank] = (builtin.token_bias + builtin.token_table.sums(lb.uniq, lb.lows))[lb.line_uniq[nonblank]]
    else:
        ts = np.asarray(token_scores, dtype=np.float64)
    X, flat_nb = F.flat_line_features(lb.base, ts, lb.doc_lines)
    if stack:
        X = np.hstack([X, builtin.trees.raw(X)[:, None]])
    pages = []
    bounds = np.cumsum(lb.doc_lines).tolist()
    nb_bounds = np.searchsorted(flat_nb, bounds).tolist()
    s = j = 0
    for lines, e, k in zip(docs_lines, bounds, nb_bounds):
        pages.append(Page(lines, lb.base[s:e], flat_nb[j:k] - s, X[j:k]))
        s, j = e, k
    return pages


def attach_embeddings(pages: Sequence[Page], encoder) -> None:
    """Encode the non-blank lines of all pages in one call (each distinct line once)."""
    all_lines = [p.lines[i] for p in pages for i in p.nonblank.tolist()]
    vecs = encoder.encode(all_lines)
    s = 0
    for p in pages:
        n = len(p.nonblank)
        p.emb = vecs[s:s + n]
        s += n
