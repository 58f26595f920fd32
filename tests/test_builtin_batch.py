"""The vectorised batch path of the builtin model equals the per-line reference definitions.

`features.line_batch` / `features.TokenTable` / `BuiltinModel.analyze` compute the line
features and token scores of a whole batch at once, for training and inference;
`builtin_oracle.base_matrix`, `features.line_tokens` and `builtin_oracle.doc_line_features`
are the readable per-line definitions. They must agree exactly (the trees compare
features against thresholds, so "close" is not enough).
"""
from __future__ import annotations

import gzip
import json
from itertools import repeat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import builtin_oracle as O
from conftest import BENCHMARKS
from prox.builtin import features as F
from prox.builtin.model import BuiltinModel, sigmoid


ODD_TEXTS = [
    "",
    "\n\n",
    "  indented\tline  \n\t\ttabbed | pipe | table\n",
    "1) first item\n2. second item\n- bullet\n• dot\n© 2024 Company. All rights reserved.",
    "İstanbul ǅemal ΣΟΦΊΑ straße ŁÓDŹ Ⅻ ① ᾨ ﬁ\u00a0nbsp\u2003emspace\u3000ideo",
    "日本語のテキストです。\n次の行。\n\u200b\n\x1c\x1d\x1e\x1f\x85",
    "Share Tweet Pin\nRelated posts\nYou may also like:\nhttp://example.com/a.html\nmail@example.org",
    "word " * 300 + "\n" + "A " * 60 + "\n" + "x" * 3000,
    "dup line\nother\ndup line\n  dup line\ndup line\n\nlorem ipsum dolor\nJavaScript is disabled; cookie!",
    "_under_score_ a_b 12_34 ½ ² ٣ 𝟘 𝔄𝔟𝔠 \U0001f600 emoji",
]


@pytest.fixture(scope="module")
def model() -> BuiltinModel:
    return BuiltinModel.load()


def _reference(model: BuiltinModel, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Per-document path: base_matrix, per-line token scores, doc_line_features, trees."""
    bases, probs = [], []
    for t in texts:
        lines = t.split("\n")
        base = O.base_matrix(lines)
        ts = O.token_scores(model, lines)
        X = O.doc_line_features(base, ts)
        p = np.zeros(len(lines))
        nb = np.flatnonzero(base[:, 0] == 0) if len(base) else np.zeros(0, dtype=np.int64)
        if len(nb):
            p[nb] = sigmoid(model.trees.raw(X[nb]))
        p[F.protected_rows(base)] = 0.0  # formula lines are never noise (analyze's protect_math)
        bases.append(base)
        probs.append(p)
    docs = np.array([O.doc_features(b, p, model.line_threshold) for b, p in zip(bases, probs)])
    return np.concatenate(bases), probs, docs


def _check(model: BuiltinModel, texts: list[str]) -> None:
    ref_base, ref_probs, ref_doc = _reference(model, texts)
    lb = F.line_batch([t.split("\n") for t in texts])
    assert np.array_equal(lb.base, ref_base)
    ref_ts = np.concatenate([O.token_scores(model, t.split("\n")) for t in texts])
    ts = np.zeros(len(lb.lines))
    nb = lb.line_uniq >= 0
    ts[nb] = (model.token_bias + model.token_table.sums(lb.uniq, lb.lows))[lb.line_uniq[nb]]
    assert np.array_equal(ts, ref_ts)
    docs = model.analyze(texts)
    for d, p in zip(docs, ref_probs):
        assert np.array_equal(d.probs, p)
    got = F.batch_doc_features(lb.base, np.concatenate(ref_probs), lb.doc_lines, model.line_threshold)
    assert np.allclose(got, ref_doc.reshape(got.shape), rtol=1e-12, atol=1e-12)


def test_batch_path_equals_reference_on_odd_texts(model):
    _check(model, ODD_TEXTS)
    _check(model, ODD_TEXTS[::-1] * 2)  # duplicated documents share distinct lines


def test_batch_path_equals_reference_on_public_pages(model):
    if not BENCHMARKS.is_dir():
        pytest.skip("../shared/benchmarks not available")
    with gzip.open(BENCHMARKS / "lines-public-dev.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh][:120]
    _check(model, texts)


_LINE_CHARS = st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list(" \t\u00a0\u3000|.:!?\"'-•©"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(_LINE_CHARS, max_size=40), max_size=8).map("\n".join), min_size=1, max_size=4))
def test_batch_path_equals_reference_on_random_unicode(model, texts):
    _check(model, texts)


def test_token_table_matches_vocabulary_lookups():
    lines = ["Share this post", "share this", "^odd$ <tokens> here", "—", "a b c d", "x" * 10, "Hello, World!"]
    toks = [t for ln in lines for t in F.line_tokens(ln)]
    vocab = {t: float(i % 7 - 3) / 4 or 0.5 for i, t in enumerate(dict.fromkeys(toks))}
    table = F.TokenTable(vocab)
    get = vocab.get
    ref = np.array([sum(map(get, F.line_tokens(ln), repeat(0.0))) for ln in lines])
    got = table.sums(lines, [ln.lower() for ln in lines])
    assert np.array_equal(got, ref)
    assert np.array_equal(F.TokenTable({}).sums(lines, [ln.lower() for ln in lines]), np.zeros(len(lines)))


def test_char_table_classes():
    t = F.char_table()
    assert t[ord("A")] & 3 == 3 and t[ord("a")] & 3 == 1 and t[ord("5")] & 4
    assert t[ord(" ")] & 8 and t[0x3000] & 16 and not t[0x3000] & 8
    assert all(bool(t[c] & 16) == chr(c).isspace() for c in range(0x3100))
