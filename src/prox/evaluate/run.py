"""Score a refiner (or a simple baseline) on gold line / doc labels."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from prox.builtin.data import in_train_split, line_row
from prox.jsonl import load_records
from prox.evaluate.baselines import DOC_BASELINES, LINE_BASELINES
from prox.evaluate.metrics import DocScorer, LineScorer
from prox.refiners.base import Refiner, join_chunk_programs

BATCH = 256


def removed_lines(text: str, program: str) -> list[int]:
    """Lines a chunk-stage program removes (its merged, clipped ``remove_lines`` ranges).

    A program the executor ignores for too many errors removes nothing. The kept-ratio
    and word-count drop rules are not applied: the line benchmark scores the lines.
    """
    from prox.executor import execute

    result = execute(text, program, stage="chunk")
    out: list[int] = []
    for start, end in result.removed_ranges:
        out.extend(range(max(start, 0), end + 1))
    return out


def doc_dropped(text: str, program: str) -> bool:
    from prox.executor import execute

    return execute(text, program, stage="doc").dropped


def _batches(items: Sequence[Any], n: int = BATCH) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def line_predictor(refiner: Refiner | None = None, baseline: str | None = None) -> Callable[[Sequence[str]], list[list[int]]]:
    if baseline is not None:
        if baseline not in LINE_BASELINES:
            raise ValueError(f"unknown line baseline {baseline!r}; choose one of {', '.join(LINE_BASELINES)}")
        fn = LINE_BASELINES[baseline]
        return lambda texts: [fn(t) for t in texts]
    if refiner is None:
        raise ValueError("give a refiner or a baseline")
    return lambda texts: [
        removed_lines(t, join_chunk_programs(progs)) for t, progs in zip(texts, refiner.chunk_programs(texts))
    ]


def doc_predictor(refiner: Refiner | None = None, baseline: str | None = None) -> Callable[[Sequence[str]], list[bool]]:
    if baseline is not None:
        if baseline not in DOC_BASELINES:
            raise ValueError(f"unknown doc baseline {baseline!r}; choose one of {', '.join(DOC_BASELINES)}")
        fn = DOC_BASELINES[baseline]
        return lambda texts: [fn(t) for t in texts]
    if refiner is None:
        raise ValueError("give a refiner or a baseline")
    return lambda texts: [doc_dropped(t, p) for t, p in zip(texts, refiner.doc_programs(texts))]


def eval_lines(gold: str | Path, predict: Callable[[Sequence[str]], list[list[int]]], *,
               views: set[str] | None = None, sources: set[str] | None = None, limit: int | None = None) -> dict:
    """Line-wise P/R/F1 (micro and macro) per view and source; see `prox.evaluate.metrics`."""
    rows = []
    skipped = 0
    for raw in load_records(gold):
        if views and raw.get("view") not in views:
            continue
        if sources and raw.get("source") not in sources:
            continue
        r = line_row(raw)
        if r is None:
            skipped += 1
            continue
        rows.append(r)
        if limit and len(rows) >= limit:
            break
    scorer = LineScorer()
    for batch in _batches(rows):
        for r, removed in zip(batch, predict([r.text for r in batch])):
            scorer.add(r.view or "-", r.source or "-", removed, r.noisy, r.content)
    return {"gold": str(gold), "rows": len(rows), "skipped_rows": skipped, "scores": scorer.to_dict()}


def eval_docs(gold: str | Path, predict: Callable[[Sequence[str]], list[bool]], *,
              sources: set[str] | None = None, split: str = "all", limit: int | None = None) -> dict:
    """DROP / KEEP P/R/F1 and accuracy per source. ``split``: all | train | holdout (hash of id)."""
    if split not in ("all", "train", "holdout"):
        raise ValueError(f"split must be all, train or holdout, not {split!r}")
    rows = []
    skipped = 0
    for raw in load_records(gold):
        if sources and raw.get("source") not in sources:
            continue
        if split != "all" and in_train_split(str(raw.get("id", ""))) != (split == "train"):
            continue
        if not isinstance(raw.get("text"), str) or not isinstance(raw.get("keep"), bool):
            skipped += 1
            continue
        rows.append(raw)
        if limit and len(rows) >= limit:
            break
    scorer = DocScorer()
    for batch in _batches(rows):
        for r, drop in zip(batch, predict([r["text"] for r in batch])):
            scorer.add(str(r.get("source", "-")), bool(drop), not r["keep"])
    return {"gold": str(gold), "split": split, "docs": len(rows), "skipped_rows": skipped, "scores": scorer.to_dict()}
