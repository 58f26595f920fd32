"""The builtin model: a token model, boosted trees over line features, and a doc model.

Inference is pure numpy (no scikit-learn at run time). One ``.npz`` file holds it all:

* ``token_*``: a linear model over line tokens (lower-cased words, bigrams, markers),
  stored as a vocabulary and one weight per token; its score is a line feature.
* ``tree_*``: gradient-boosted trees (trained with scikit-learn's
  HistGradientBoosting, exported to flat arrays) giving P(line is noise).
* ``doc_*``: a standardised logistic regression over document features
  (text statistics and aggregates of the line model) giving P(document is kept).
* ``meta``: JSON (feature names, thresholds, training summary, licences).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from prox.builtin import features as F
from prox.builtin.fragments import Fragment, FragmentMatcher

FORMAT_VERSION = 1
SHIPPED_MODEL = "builtin.npz"


def shipped_model_path() -> Path:
    """Path of the model shipped inside the package (``prox/builtin/model/builtin.npz``)."""
    return Path(str(resources.files("prox.builtin").joinpath("model", SHIPPED_MODEL)))


@dataclass
class Trees:
    """Boosted trees as flat arrays; a leaf points to itself so every row walks ``depth`` steps."""

    feature: np.ndarray  # int32, per node
    threshold: np.ndarray  # float64, per node: x <= threshold goes left
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    value: np.ndarray  # float64, leaf values (0 for inner nodes)
    roots: np.ndarray  # int32, one per tree
    depth: int
    baseline: float

    def __post_init__(self) -> None:
        self._paired = _pair_children(self)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' outputs (log-odds) for each row of ``X``."""
        n = X.shape[0]
        if n == 0 or len(self.roots) == 0:
            return np.full(n, self.baseline)
        feature, threshold, left, value, roots = self._paired
        node = np.broadcast_to(roots, (n, len(roots))).copy()
        flat = np.ascontiguousarray(X, dtype=np.float64).ravel()
        offsets = (np.arange(n, dtype=np.int64) * X.shape[1])[:, None]
        take = np.take  # faster than fancy indexing for these 1-d tables
        for _ in range(self.depth):
            # children are stored side by side: right = left + 1; a leaf loops to itself
            idx = take(feature, node)
            idx += offsets
            go = take(flat, idx) > take(threshold, node)
            node = take(left, node)
            node += go
        return self.baseline + take(value, node).sum(axis=1)

    @classmethod
    def from_sklearn(cls, clf: Any) -> "Trees":
        """Export a fitted binary ``HistGradientBoostingClassifier`` (numeric features, no NaN)."""
        feats, thrs, lefts, rights, values, roots = [], [], [], [], [], []
        offset = 0
        depth = 0
        for predictors in clf._predictors:
            nodes = predictors[0].nodes
            k = len(nodes)
            leaf = nodes["is_leaf"].astype(bool)
            idx = np.arange(k)
            feats.append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int32))
            thrs.append(np.where(leaf, np.inf, nodes["num_threshold"]).astype(np.float64))
            lefts.append((np.where(leaf, idx, nodes["left"]) + offset).astype(np.int32))
            rights.append((np.where(leaf, idx, nodes["right"]) + offset).astype(np.int32))
            values.append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
            roots.append(offset)
            depth = max(depth, int(nodes["depth"].max()))
            offset += k
        return cls(
            feature=np.concatenate(feats), threshold=np.concatenate(thrs),
            left=np.concatenate(lefts), right=np.concatenate(rights),
            value=np.concatenate(values), roots=np.array(roots, dtype=np.int32),
            depth=depth, baseline=float(np.ravel(clf._baseline_prediction)[0]),
        )


def _pair_children(t: "Trees") -> tuple[np.ndarray, ...]:
    """Renumber the nodes so that every right child directly follows its left child.

    Returns (feature, threshold, left, value, roots) where an inner node goes to
    ``left + (x > threshold)`` and a leaf has ``left = itself``, ``threshold = +inf``.
    """
    feature, threshold, left, value, roots = [], [], [], [], []
    for root in t.roots.tolist():
        base = len(feature)
        order = [root]  # old ids in new order
        new_id = {root: base}
        i = 0
        while i < len(order):
            old = order[i]
            l, r = int(t.left[old]), int(t.right[old])
            if l != old:  # inner node: allocate its two children side by side
                new_id[l] = base + len(order)
                order.append(l)
                new_id[r] = base + len(order)
                order.append(r)
            i += 1
        for old in order:
            inner = int(t.left[old]) != old
            feature.append(int(t.feature[old]) if inner else 0)
            threshold.append(float(t.threshold[old]) if inner else np.inf)
            left.append(new_id[int(t.left[old])] if inner else new_id[old])
            value.append(0.0 if inner else float(t.value[old]))
        roots.append(base)
    return (np.array(feature, dtype=np.int64), np.array(threshold, dtype=np.float64),
            np.array(left, dtype=np.int64), np.array(value, dtype=np.float64), np.array(roots, dtype=np.int64))


def write_npz(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A model file: the arrays plus ``meta`` as a JSON member. Like ``np.savez_compressed`` but
    byte-reproducible (fixed member timestamps, sorted JSON keys); `read_npz` reads it back."""
    import io
    import zipfile

    arrays = dict(arrays, meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def read_npz(path: Path, what: str, version: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the JSON meta of a `write_npz` file (no pickle), after checking that it exists
    and that its ``meta.format_version`` is ``version`` (``what`` names the model in errors)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} model not found: {path}")
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    if meta.get("format_version") != version:
        raise ValueError(f"{path}: {what} model format {meta.get('format_version')} != {version}")
    return arrays, meta


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class DocModel:
    """Standardised logistic regression: P(keep) from ``features.DOC_FEATURES``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float  # keep when P(keep) >= threshold

    def keep_prob(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)


@dataclass
class BuiltinModel:
    vocab: dict[str, float]
    token_bias: float
    trees: Trees
    line_threshold: float  # a line is noise when P(noise) >= line_threshold
    doc: DocModel | None
    meta: dict[str, Any] = field(default_factory=dict)
    # junk prefixes/suffixes cut with normalize (`fragments.py`); stored in meta["fragments"]
    fragments: list[Fragment] = field(default_factory=list)
    # word-F1 rescue of pages the threshold would empty (`predict.noisy_mask`); stored in meta
    rescue_margin: float | None = None
    _token_table: Any = field(default=None, init=False, repr=False, compare=False)
    _matcher: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def fragment_matcher(self) -> FragmentMatcher | None:
        """The learned fragments compiled for matching (None when the model has none)."""
        if not self.fragments:
            return None
        if self._matcher is None or self._matcher.fragments is not self.fragments:
            self._matcher = FragmentMatcher(self.fragments)
        return self._matcher
    _token_table_of: Any = field(default=None, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ inference
    @property
    def token_table(self) -> F.TokenTable:
        """The token weights arranged for batch scoring (built on first use)."""
        if self._token_table is None or self._token_table_of is not self.vocab:
            self._token_table = F.TokenTable(self.vocab)
            self._token_table_of = self.vocab
        return self._token_table

    def analyze(self, texts: Sequence[str], *, protect_math: bool = True) -> list["DocAnalysis"]:
        """Line noise probabilities (and the facts the doc model needs) for each text.

        The whole batch is handled at once: every distinct line is featurised and scored
        by the token model once, the trees run over all non-blank lines together.
        With ``protect_math`` (the default) a line with formula evidence (math markup, or
        inside a multi-line math block: `prox.mathtext`) gets P(noise) = 0: a formula is
        content even where it looks like a menu item to the trees.
        """
        docs_lines = [F.split_lines(t) for t in texts]
        lb = F.line_batch(docs_lines)
        nonblank = lb.line_uniq >= 0
        ts = np.zeros(len(lb.lines))
        ts[nonblank] = (self.token_bias + self.token_table.sums(lb.uniq, lb.lows))[lb.line_uniq[nonblank]]
        X, flat_nb = F.flat_line_features(lb.base, ts, lb.doc_lines)
        probs = np.zeros(len(lb.lines))
        if len(X):
            probs[flat_nb] = sigmoid(self.trees.raw(X))
        if protect_math:
            probs[F.protected_rows(lb.base)] = 0.0
        out = []
        bounds = np.cumsum(lb.doc_lines).tolist()
        nb_bounds = np.searchsorted(flat_nb, bounds).tolist()
        s = j = 0
        for lines, e, k in zip(docs_lines, bounds, nb_bounds):
            out.append(DocAnalysis(lines=lines, base=lb.base[s:e], probs=probs[s:e], nonblank=flat_nb[j:k] - s))
            s, j = e, k
        return out

    def doc_features(self, docs: Sequence["DocAnalysis"]) -> np.ndarray:
        """``features.DOC_FEATURES`` of each analysed document (``len(docs) x len(DOC_FEATURES)``)."""
        if not docs:
            return np.zeros((0, len(F.DOC_FEATURES)))
        return F.batch_doc_features(
            np.concatenate([d.base.reshape(-1, len(F.BASE_NAMES)) for d in docs]),
            np.concatenate([d.probs for d in docs]),
            np.array([len(d.base) for d in docs]),
            self.line_threshold,
        )

    def doc_keep_probs(self, docs: Sequence["DocAnalysis"]) -> np.ndarray:
        if self.doc is None:
            return np.ones(len(docs))
        if not docs:
            return np.zeros(0)
        return self.doc.keep_prob(self.doc_features(docs))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path / SHIPPED_MODEL if path.is_dir() or not path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = list(self.vocab)
        meta = dict(self.meta)
        meta.update(
            format_version=FORMAT_VERSION,
            line_features=F.LINE_FEATURES,
            fragments=[[f.side, f.pattern, f.junk, f.clean, f.pages] for f in self.fragments],
            doc_features=F.DOC_FEATURES,
            line_threshold=self.line_threshold,
            rescue_margin=self.rescue_margin,
            token_bias=self.token_bias,
            tree_depth=self.trees.depth,
            tree_baseline=self.trees.baseline,
        )
        arrays: dict[str, np.ndarray] = dict(
            token_vocab=np.frombuffer("\n".join(tokens).encode("utf-8"), dtype=np.uint8),
            token_weights=np.array([self.vocab[t] for t in tokens], dtype=np.float32),
            tree_feature=self.trees.feature.astype(np.int16 if len(F.LINE_FEATURES) < 32000 else np.int32),
            tree_threshold=self.trees.threshold.astype(np.float64),
            # node indices are stored as int32 whatever width they were loaded or built with, so
            # saving a loaded model writes the file it came from
            tree_left=self.trees.left.astype(np.int32), tree_right=self.trees.right.astype(np.int32),
            tree_value=self.trees.value.astype(np.float32), tree_roots=self.trees.roots.astype(np.int32),
        )
        if self.doc is not None:
            meta_doc = np.array([self.doc.intercept, self.doc.threshold])
            arrays.update(doc_mean=self.doc.mean, doc_scale=self.doc.scale, doc_coef=self.doc.coef, doc_scalars=meta_doc)
        write_npz(path, arrays, meta)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> "BuiltinModel":
        path = Path(path) if path is not None else shipped_model_path()
        if path.is_dir():
            path = path / SHIPPED_MODEL
        z, meta = read_npz(path, "builtin", FORMAT_VERSION)
        if meta.get("line_features") != F.LINE_FEATURES or meta.get("doc_features") != F.DOC_FEATURES:
            raise ValueError(f"{path}: model was trained with different features; retrain it")
        raw = z["token_vocab"].tobytes().decode("utf-8")
        tokens = raw.split("\n") if raw else []
        vocab = dict(zip(tokens, z["token_weights"].astype(np.float64).tolist()))
        trees = Trees(
            feature=z["tree_feature"].astype(np.int64), threshold=z["tree_threshold"].astype(np.float64),
            left=z["tree_left"].astype(np.int64), right=z["tree_right"].astype(np.int64),
            value=z["tree_value"].astype(np.float64), roots=z["tree_roots"].astype(np.int64),
            depth=int(meta["tree_depth"]), baseline=float(meta["tree_baseline"]),
        )
        doc = None
        if "doc_coef" in z:
            intercept, threshold = z["doc_scalars"].tolist()
            doc = DocModel(z["doc_mean"], z["doc_scale"], z["doc_coef"], float(intercept), float(threshold))
        fragments = [Fragment(str(a), str(b), int(c), int(d), int(e)) for a, b, c, d, e in meta.get("fragments") or []]
        return cls(vocab=vocab, token_bias=float(meta["token_bias"]), trees=trees, fragments=fragments,
                   line_threshold=float(meta["line_threshold"]), doc=doc, meta=meta,
                   rescue_margin=None if meta.get("rescue_margin") is None else float(meta["rescue_margin"]))


@dataclass
class DocAnalysis:
    lines: list[str]
    base: np.ndarray
    probs: np.ndarray  # P(noise) per line; 0 for blank lines
    nonblank: np.ndarray
