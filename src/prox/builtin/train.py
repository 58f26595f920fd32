"""Training of the builtin model (needs scikit-learn: ``pip install 'prox[train]'``).

1. Token model: logistic regression over line tokens (``features.line_tokens``).
   Out-of-fold scores (grouped k-fold by page) feed the next stage, so the trees never
   see token scores of lines the token model was fit on.
2. Line model: HistGradientBoosting over ``features.LINE_FEATURES`` (a line, its
   non-blank neighbours, its position, document aggregates). The decision threshold
   maximises out-of-fold micro F1 on the training rows (the ``dclm`` view when present).
   Given pages with a gold main text, the word-F1 rescue margin (`predict.noisy_mask`) is
   chosen on the same out-of-fold probabilities (`choose_rescue_margin`).
3. Doc model: standardised logistic regression over ``features.DOC_FEATURES``; C and the
   threshold are chosen by stratified k-fold on the training docs.

Everything is seeded; the same inputs and seed give the same model file.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from prox.builtin import features as F
from prox.builtin.data import DocRow, LineRow, licences
from prox.builtin.model import BuiltinModel, DocModel, Trees, sigmoid
from prox.builtin.predict import noisy_mask

log = logging.getLogger(__name__)


# Documents featurised at once while training (bounds the memory of one feature batch).
TRAIN_BATCH_DOCS = 256


@dataclass
class TrainConfig:
    seed: int = 0
    folds: int = 4
    min_df: int = 3  # tokens seen in fewer training lines are dropped
    token_C: float = 0.5  # inverse L2 strength of the token model
    min_token_weight: float = 0.02  # smaller weights are pruned from the shipped vocabulary
    trees: int = 120
    learning_rate: float = 0.15
    max_leaf_nodes: int = 31
    max_depth: int = 6
    min_samples_leaf: int = 40
    l2: float = 1.0
    threads: int | None = None  # BLAS/OpenMP threads while training (None: library default)
    threshold_view: str = "dclm"  # rows whose view picks the line threshold (all rows if absent)


def _require_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        raise RuntimeError("training the builtin model needs scikit-learn: pip install 'prox[train]'") from exc


# --------------------------------------------------------------------------- tokens
def build_vocab(token_lists: Sequence[list[str]], min_df: int) -> dict[str, int]:
    df: dict[str, int] = {}
    for toks in token_lists:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1
    kept = sorted(t for t, c in df.items() if c >= min_df)
    return {t: i for i, t in enumerate(kept)}


def token_matrix(token_lists: Sequence[list[str]], vocab: dict[str, int]):
    from scipy.sparse import csr_matrix

    indptr = [0]
    indices: list[int] = []
    for toks in token_lists:
        ids = sorted({vocab[t] for t in toks if t in vocab})
        indices.extend(ids)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    return csr_matrix((data, np.array(indices, dtype=np.int64), np.array(indptr)), shape=(len(token_lists), len(vocab)))


def _fit_token_lr(X, y, cfg: TrainConfig, weight: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=cfg.token_C, solver="liblinear", max_iter=200, random_state=cfg.seed)
    clf.fit(X, y, sample_weight=weight)
    return clf


def _group_folds(groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold number of each group (hash of the group name, seeded): deterministic, balanced enough."""
    import hashlib

    return np.array(
        [int(hashlib.sha1(f"{seed}:{g}".encode()).hexdigest(), 16) % k for g in groups], dtype=np.int64
    )


# --------------------------------------------------------------------------- lines
@dataclass
class LineData:
    X: np.ndarray  # dense features of the non-blank lines, in document order
    y: np.ndarray  # 1 noise, 0 content, -1 unlabelled
    fold: np.ndarray
    row: np.ndarray  # index of the LineRow of each line
    view: np.ndarray


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Threshold on ``p`` maximising F1 of the positive class; returns (threshold, f1)."""
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    pos = ys.sum()
    f1 = 2 * tp / (tp + fp + pos)
    # only cut between distinct scores
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    return float(ps[i]), float(f1[i])


def prepare_line_data(rows: Sequence[LineRow], cfg: TrainConfig) -> tuple[dict[str, float], float, LineData]:
    """Fit the token model; dense features of the labelled lines with out-of-fold token scores."""
    t0 = time.time()
    doc_lines = [F.split_lines(r.text) for r in rows]
    doc_fold = _group_folds([r.group for r in rows], cfg.folds, cfg.seed)
    # every non-blank line gets tokens; labelled ones train the token model
    tok_lists, tok_doc, tok_line, tok_label = [], [], [], []
    for d, (r, lines) in enumerate(zip(rows, doc_lines)):
        for i, ln in enumerate(lines):
            if ln.strip():
                tok_lists.append(F.line_tokens(ln))
                tok_doc.append(d)
                tok_line.append(i)
                tok_label.append(1 if i in r.noisy else 0 if i in r.content else -1)
    tok_doc_a = np.array(tok_doc)
    tok_label_a = np.array(tok_label)
    tok_fold = doc_fold[tok_doc_a]
    tok_weight = np.array([r.weight for r in rows])[tok_doc_a] if len(tok_doc_a) else np.zeros(0)
    vocab = build_vocab([t for t, lab in zip(tok_lists, tok_label) if lab >= 0], cfg.min_df)
    Xt = token_matrix(tok_lists, vocab)
    log.info("token matrix %s, vocab %d (%.1fs)", Xt.shape, len(vocab), time.time() - t0)
    labelled = tok_label_a >= 0
    oof = np.zeros(len(tok_lists))
    for k in range(cfg.folds):
        tr = labelled & (tok_fold != k)
        te = tok_fold == k
        clf = _fit_token_lr(Xt[tr], tok_label_a[tr], cfg, tok_weight[tr])
        oof[te] = clf.decision_function(Xt[te])
    clf = _fit_token_lr(Xt[labelled], tok_label_a[labelled], cfg, tok_weight[labelled])
    inv = {i: t for t, i in vocab.items()}
    weights = {inv[i]: float(w) for i, w in enumerate(clf.coef_[0]) if abs(w) >= cfg.min_token_weight}
    token_bias = float(clf.intercept_[0])
    log.info("token model: %d weights kept (%.1fs)", len(weights), time.time() - t0)

    # dense features with out-of-fold token scores, by the same batch path inference uses
    offsets = np.r_[0, np.cumsum([len(lines) for lines in doc_lines])]
    token_score = np.zeros(offsets[-1])
    label = np.full(offsets[-1], -1, dtype=np.int64)
    if len(tok_doc_a):
        token_score[offsets[tok_doc_a] + np.array(tok_line)] = oof
    for d, r in enumerate(rows):
        label[offsets[d] + np.fromiter(r.content, dtype=np.int64, count=len(r.content))] = 0
        label[offsets[d] + np.fromiter(r.noisy, dtype=np.int64, count=len(r.noisy))] = 1  # noisy wins
    Xs, ys, folds, rix, views = [], [], [], [], []
    view_of = np.array([r.view for r in rows])
    for a in range(0, len(rows), TRAIN_BATCH_DOCS):
        b = min(a + TRAIN_BATCH_DOCS, len(rows))
        lb = F.line_batch(doc_lines[a:b])
        X, flat_nb = F.flat_line_features(lb.base, token_score[offsets[a]:offsets[b]], lb.doc_lines)
        doc = a + np.searchsorted(offsets[a:b + 1] - offsets[a], flat_nb, side="right") - 1
        # every non-blank line (unlabelled ones get y = -1: context for stacking, never fitted)
        Xs.append(X)
        ys.append(label[offsets[a] + flat_nb])
        folds.append(doc_fold[doc])
        rix.append(doc)
        views.append(view_of[doc])
    data = LineData(np.concatenate(Xs), np.concatenate(ys), np.concatenate(folds), np.concatenate(rix), np.concatenate(views))
    log.info("line features %s (%.1fs)", data.X.shape, time.time() - t0)
    return weights, token_bias, data


# Rescue margins tried (`predict.noisy_mask`), and how much out-of-fold line F1 (per view) the
# chosen one may lose against the threshold alone: the rescue is for word F1, not at the cost of lines.
RESCUE_MARGINS = (0.02, 0.05, 0.1, 0.2, 0.5)
RESCUE_LINE_F1_TOLERANCE = 0.001


def feature_words(X: np.ndarray) -> np.ndarray:
    """Word count of each line from its dense features (`features.LINE_FEATURES` rows)."""
    return np.expm1(X[:, F.LINE_FEATURES.index("log_words")])


def rescue_pages(rows: Sequence[LineRow], data: LineData, probs: np.ndarray) -> Iterator[RescuePage]:
    """(row, P(noise), words, labels) of each row's non-blank lines; ``data``/``probs``: every
    non-blank line of ``rows`` in order (labels -1 where unlabelled)."""
    bounds = np.searchsorted(data.row, np.arange(len(rows) + 1))
    for ri, row in enumerate(rows):
        a, b = bounds[ri], bounds[ri + 1]
        if a < b:
            yield row, probs[a:b], feature_words(data.X[a:b]), data.y[a:b]


# one page for `choose_rescue_margin`: the row, then per non-blank line P(noise), words and label
RescuePage = tuple[LineRow, np.ndarray, np.ndarray, np.ndarray]


def choose_rescue_margin(pages: Iterable[RescuePage], threshold: float, gold_texts: Mapping[str, str]) -> dict:
    """The rescue margin with the best mean word F1 on the pages with a gold main text
    (``gold_texts``: row text -> gold text; mean over pages, then over views) among those whose
    line micro F1 stays within `RESCUE_LINE_F1_TOLERANCE` of the threshold alone on every view
    of those pages. The probabilities must not come from a model fitted on the pages (out-of-fold
    or held-out). ``margin`` None: no margin helps (rescue off). The constraint leaves out views
    without gold texts (the assembled math pages of `mathpages`: training data, not a benchmark;
    the table lists their line F1 too).
    """
    from prox.evaluate.metrics import word_prf

    candidates: tuple[float | None, ...] = (None, *RESCUE_MARGINS)
    lines = {c: {} for c in candidates}  # margin -> view -> [tp, fp, fn]
    words = {c: {} for c in candidates}  # margin -> view -> page word F1s
    for row, p, w, y in pages:
        gold = gold_texts.get(row.text)
        text_lines = [ln for ln in F.split_lines(row.text) if ln.strip()] if gold is not None else []
        scored: dict[bytes, float] = {}  # the candidates give at most two distinct masks per page
        for c in candidates:
            noisy = noisy_mask(p, w, threshold, c)
            counts = lines[c].setdefault(row.view, [0, 0, 0])
            counts[0] += int((noisy & (y == 1)).sum())
            counts[1] += int((noisy & (y == 0)).sum())
            counts[2] += int((~noisy & (y == 1)).sum())
            if gold is not None:
                key = noisy.tobytes()
                if key not in scored:
                    kept = "\n".join(ln for ln, out in zip(text_lines, noisy) if not out)
                    scored[key] = word_prf(kept, gold)[2]
                words[c].setdefault(row.view, []).append(scored[key])

    def line_f1(c):
        return {v: 2 * tp / max(2 * tp + fp + fn, 1) for v, (tp, fp, fn) in lines[c].items()}

    def word_f1(c):
        return float(np.mean([np.mean(f) for f in words[c].values()])) if words[c] else 0.0

    base = line_f1(None)
    ok = [c for c in candidates
          if all(line_f1(c)[v] >= base[v] - RESCUE_LINE_F1_TOLERANCE for v in words[None])]
    best = max(ok, key=lambda c: (word_f1(c), c is None))  # ties: no rescue
    return {"margin": best, "tolerance": RESCUE_LINE_F1_TOLERANCE, "word_pages": sum(map(len, words[None].values())),
            "table": [{"margin": c, "word_f1": round(word_f1(c), 4),
                       "line_f1": {v: round(f, 4) for v, f in sorted(line_f1(c).items())}} for c in candidates]}


def line_classifier(cfg: TrainConfig):
    """The unfitted boosted trees of the line model."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=cfg.trees, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
        max_depth=cfg.max_depth, min_samples_leaf=cfg.min_samples_leaf, l2_regularization=cfg.l2,
        early_stopping=False, random_state=cfg.seed,
    )


def out_of_fold_probs(data: LineData, weight: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """P(noise) of every line of ``data`` (labelled or not) from the `line_classifier` fitted on
    the labelled lines of the other folds."""
    lab = data.y >= 0
    probs = np.zeros(len(data.y))
    for k in range(cfg.folds):
        tr, te = lab & (data.fold != k), data.fold == k
        probs[te] = line_classifier(cfg).fit(data.X[tr], data.y[tr], sample_weight=weight[tr]).predict_proba(data.X[te])[:, 1]
    return probs


def train_line_model(rows: Sequence[LineRow], cfg: TrainConfig,
                     gold_texts: Mapping[str, str] | None = None) -> tuple[dict[str, float], float, Trees, float, dict]:
    _require_sklearn()
    t0 = time.time()
    weights, token_bias, data = prepare_line_data(rows, cfg)
    lab = data.y >= 0
    weight = np.array([r.weight for r in rows])[data.row]
    oof_p = out_of_fold_probs(data, weight, cfg)
    all_lines, all_oof_p = data, oof_p
    data = LineData(data.X[lab], data.y[lab], data.fold[lab], data.row[lab], data.view[lab])
    oof_p = oof_p[lab]
    sel = data.view == cfg.threshold_view
    if not sel.any():
        sel = np.ones(len(data.y), dtype=bool)
    threshold, f1 = best_threshold(data.y[sel], oof_p[sel])
    cv = {"threshold_view": cfg.threshold_view if (data.view == cfg.threshold_view).any() else "all",
          "oof_micro_f1": round(f1, 4), "threshold": round(threshold, 4)}
    for v in sorted(set(data.view.tolist())):
        s = data.view == v
        pred = oof_p[s] >= threshold
        tp = int((pred & (data.y[s] == 1)).sum())
        cv[f"oof_f1_{v or 'unnamed'}"] = round(2 * tp / max(pred.sum() + data.y[s].sum(), 1), 4)
    log.info("line CV: %s (%.1fs)", cv, time.time() - t0)
    if gold_texts:
        cv["rescue"] = choose_rescue_margin(rescue_pages(rows, all_lines, all_oof_p), threshold, gold_texts)
        log.info("rescue: %s (%.1fs)", cv["rescue"], time.time() - t0)
    final = line_classifier(cfg).fit(data.X, data.y, sample_weight=weight[lab])
    return weights, token_bias, Trees.from_sklearn(final), threshold, cv


# --------------------------------------------------------------------------- docs
# Formula evidence (the share of protected lines) can only add keep evidence, and it is fitted
# apart from the web-quality features: the labelled web documents hold almost no math, so in a
# joint fit the assembled math pages would move every other coefficient (measured: -0.02 CV drop-F1).
MATH_DOC_FEATURE = "math_frac"
MATH_COEF_L2 = 0.0001  # ridge on the math coefficient


def _fit_doc_lr(Z: np.ndarray, y: np.ndarray, weight: np.ndarray, tune: np.ndarray, C: float,
                math_col: int) -> tuple[np.ndarray, float]:
    """Logistic regression of the labelled rows over every feature but the math share; then
    the math share's coefficient (>= 0) over all rows, the first model's logit as offset."""
    from sklearn.linear_model import LogisticRegression

    web = np.arange(Z.shape[1]) != math_col
    fit = LogisticRegression(C=C, max_iter=1000).fit(Z[tune][:, web], y[tune], sample_weight=weight[tune])
    coef = np.zeros(Z.shape[1])
    coef[web] = fit.coef_[0]
    intercept = float(fit.intercept_[0])
    if (~tune).any():
        coef[math_col] = _nonneg_offset_coef(Z[:, math_col], y, weight, Z @ coef + intercept)
    return coef, intercept


def _nonneg_offset_coef(x: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray,
                        l2: float = MATH_COEF_L2, iters: int = 100) -> float:
    """argmin over a >= 0 of sum w * logloss(y, sigmoid(offset + a x)) + l2 a^2 / 2 (projected Newton)."""
    a = 0.0
    for _ in range(iters):
        p = sigmoid(offset + a * x)
        grad = float(np.sum(w * (p - y) * x)) + l2 * a
        hess = float(np.sum(w * p * (1 - p) * x * x)) + l2
        new = max(a - grad / hess, 0.0)
        if abs(new - a) < 1e-10:
            return new
        a = new
    return a


def train_doc_model(model: BuiltinModel, rows: Sequence[DocRow], cfg: TrainConfig) -> tuple[DocModel | None, dict]:
    _require_sklearn()
    from sklearn.model_selection import StratifiedKFold

    y = np.array([1 if r.keep else 0 for r in rows])
    tune = np.array([r.tune for r in rows], dtype=bool)
    weight = np.array([r.weight for r in rows], dtype=np.float64)
    minority = int(min(y[tune].sum(), tune.sum() - y[tune].sum()))
    # stratified cross-validation needs at least two documents of each class
    if tune.sum() < 10 or minority < 2:
        return None, {"skipped": "need >= 10 doc labels with >= 2 of each class",
                      "docs": len(rows), "keep": int(y.sum()), "drop": int(len(y) - y.sum())}
    X = model.doc_features(model.analyze([r.text for r in rows]))
    # standardise on the labelled rows: assembled rows must not set the scale of a feature;
    # the math share stays raw (0..1): the labelled web documents hold almost no math
    math_col = F.DOC_FEATURES.index(MATH_DOC_FEATURE)
    mean = X[tune].mean(axis=0)
    scale = X[tune].std(axis=0)
    scale[scale == 0] = 1.0
    mean[math_col], scale[math_col] = 0.0, 1.0
    Z = (X - mean) / scale
    skf = StratifiedKFold(n_splits=min(cfg.folds + 1, minority), shuffle=True, random_state=cfg.seed)
    # assembled rows (tune=False) are spread over the folds too; only the labelled rows choose C and the threshold
    strata = np.where(tune, y, 2)
    best = None
    for C in (0.01, 0.03, 0.1, 0.3, 1.0):
        oof = np.zeros(len(y))
        for tr, te in skf.split(Z, strata):
            coef, intercept = _fit_doc_lr(Z[tr], y[tr], weight[tr], tune[tr], C, math_col)
            oof[te] = sigmoid(Z[te] @ coef + intercept)
        # the drop class is the positive one: threshold on P(drop) = 1 - P(keep)
        thr, f1 = best_threshold(1 - y[tune], 1 - oof[tune])
        if best is None or f1 > best[1] + 1e-9:
            best = (C, f1, 1 - thr, oof)
    C, f1, keep_thr, oof = best
    coef, intercept = _fit_doc_lr(Z, y, weight, tune, C, math_col)
    # P(drop) >= thr  <=>  P(keep) <= 1 - thr; keep when P(keep) > keep_thr (nudged to be strict)
    doc = DocModel(mean, scale, coef, intercept, float(keep_thr) + 1e-9)
    summary = {"docs": int(tune.sum()), "C": C, "cv_drop_f1": round(f1, 4), "keep_threshold": round(keep_thr, 4)}
    if (~tune).any():
        summary["assembled_docs"] = int((~tune).sum())
        summary["assembled_cv_keep"] = round(float((oof[~tune] > keep_thr).mean()), 4)
    return doc, summary


def train(line_rows: Sequence[LineRow], doc_rows: Sequence[DocRow], cfg: TrainConfig | None = None,
          meta: dict | None = None, gold_texts: Mapping[str, str] | None = None) -> BuiltinModel:
    """Train a model; ``gold_texts`` (line row text -> its gold main text) also chooses the
    word-F1 rescue margin (`choose_rescue_margin`)."""
    cfg = cfg or TrainConfig()
    if not line_rows:
        raise ValueError("no line labels to train on")
    _require_sklearn()
    if cfg.threads:
        # import the numeric libraries first: threadpoolctl only limits pools already loaded
        import scipy.sparse  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import sklearn.linear_model  # noqa: F401
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=cfg.threads):
            return _train(line_rows, doc_rows, cfg, meta, gold_texts)
    return _train(line_rows, doc_rows, cfg, meta, gold_texts)


def _train(line_rows: Sequence[LineRow], doc_rows: Sequence[DocRow], cfg: TrainConfig, meta: dict | None,
           gold_texts: Mapping[str, str] | None) -> BuiltinModel:
    weights, bias, trees, thr, cv = train_line_model(line_rows, cfg, gold_texts)
    model = BuiltinModel(vocab=weights, token_bias=bias, trees=trees, line_threshold=thr, doc=None, meta=dict(meta or {}),
                         rescue_margin=cv.get("rescue", {}).get("margin"))
    doc_cv: dict = {}
    if doc_rows:
        model.doc, doc_cv = train_doc_model(model, doc_rows, cfg)
    model.meta.update(
        config={k: v for k, v in cfg.__dict__.items() if k != "threads"}, line_cv=cv, doc_cv=doc_cv,
        line_rows=len(line_rows), doc_rows=len(doc_rows),
        licences=licences({r.source or "unnamed" for r in line_rows} | {r.source or "unnamed" for r in doc_rows}),
    )
    return model
