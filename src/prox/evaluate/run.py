"""Score a refiner (or a simple baseline) on gold line / doc / word labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from prox.builtin.data import in_train_split, line_row
from prox.records import load_records
from prox.evaluate.baselines import DOC_BASELINES, LINE_BASELINE_ALIASES, LINE_BASELINES
from prox.evaluate.metrics import DocScorer, LineScorer, WordScorer
from prox.refiners.base import Refiner, join_chunk_programs

BATCH = 256
T = TypeVar("T")


def _chunk_result(text: str, program: str) -> Any:
    from prox.executor import execute

    return execute(text, program, stage="chunk")


def _removed(result: Any) -> list[int]:
    out: list[int] = []
    for start, end in result.removed_ranges:
        out.extend(range(max(start, 0), end + 1))
    return out


def removed_lines(text: str, program: str) -> list[int]:
    """Lines a chunk-stage program removes (its merged, clipped ``remove_lines`` ranges).

    A program the executor ignores for too many errors removes nothing. The kept-ratio
    and word-count drop rules are not applied: the line benchmark scores the lines.
    """
    return _removed(_chunk_result(text, program))


def doc_dropped(text: str, program: str) -> bool:
    from prox.executor import execute

    return execute(text, program, stage="doc").dropped


def _chunk_results(refiner: Refiner, texts: Sequence[str]) -> list[Any]:
    """Each document's joined chunk programs, executed on the whole document."""
    if not texts:
        return []
    return [_chunk_result(t, join_chunk_programs(progs)) for t, progs in zip(texts, refiner.chunk_programs(texts))]


def _batches(items: Sequence[Any], n: int = BATCH) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _select(gold: str | Path, parse: Callable[[dict], T | None], *, keep: Callable[[dict], bool] = lambda r: True,
            views: set[str] | None = None, sources: set[str] | None = None,
            limit: int | None = None) -> tuple[list[T], int]:
    """The gold rows of the wanted views and sources that ``parse`` accepts (first ``limit``), and the
    number it refused (``None``)."""
    rows: list[T] = []
    skipped = 0
    for raw in load_records(gold):
        if views and raw.get("view") not in views:
            continue
        if sources and raw.get("source") not in sources:
            continue
        if not keep(raw):
            continue
        row = parse(raw)
        if row is None:
            skipped += 1
            continue
        rows.append(row)
        if limit and len(rows) >= limit:
            break
    return rows, skipped


def line_predictor(refiner: Refiner | None = None, baseline: str | None = None) -> Callable[[Sequence[str]], list[list[int]]]:
    if baseline is not None:
        name = LINE_BASELINE_ALIASES.get(baseline, baseline)
        if name not in LINE_BASELINES:
            raise ValueError(f"unknown line baseline {baseline!r}; choose one of {', '.join(LINE_BASELINES)}")
        fn = LINE_BASELINES[name]
        return lambda texts: [fn(t) for t in texts]
    if refiner is None:
        raise ValueError("give a refiner or a baseline")
    return lambda texts: [_removed(r) for r in _chunk_results(refiner, texts)]


def doc_predictor(refiner: Refiner | None = None, baseline: str | None = None) -> Callable[[Sequence[str]], list[bool]]:
    if baseline is not None:
        if baseline not in DOC_BASELINES:
            raise ValueError(f"unknown doc baseline {baseline!r}; choose one of {', '.join(DOC_BASELINES)}")
        fn = DOC_BASELINES[baseline]
        return lambda texts: [fn(t) for t in texts]
    if refiner is None:
        raise ValueError("give a refiner or a baseline")
    return lambda texts: [doc_dropped(t, p) for t, p in zip(texts, refiner.doc_programs(texts))]


@dataclass
class TextPredictor:
    """Refined texts as `prox refine` makes them: the doc program first (a dropped document is
    ""), then the joined chunk programs on the documents it keeps (a chunk-stage drop is "" too).
    ``stages``: the stages it runs."""

    refiner: Refiner
    stages: tuple[str, ...]

    def __call__(self, texts: Sequence[str]) -> list[str]:
        dropped = doc_predictor(self.refiner)(texts) if "doc" in self.stages else [False] * len(texts)
        out = ["" if drop else t for t, drop in zip(texts, dropped)]
        if "chunk" in self.stages:
            live = [i for i, drop in enumerate(dropped) if not drop]
            for i, result in zip(live, _chunk_results(self.refiner, [texts[i] for i in live])):
                out[i] = "" if result.dropped else result.text
        return out


def text_predictor(refiner: Refiner, stages: Sequence[str] | None = None) -> TextPredictor:
    """A `TextPredictor` for ``stages`` (default: all the refiner can run, see `refiner_stages`)."""
    from prox.program import STAGES
    from prox.refiners import refiner_stages

    can = refiner_stages(refiner)
    run = tuple(s for s in STAGES if s in stages) if stages is not None else can
    if not run or set(run) - set(can) or set(stages or ()) - set(STAGES):
        raise ValueError(f"stages must be a non-empty subset of the stages refiner {getattr(refiner, 'name', '?')!r} "
                         f"can run ({','.join(can)}), got {','.join(stages or ()) or '(none)'}")
    return TextPredictor(refiner, run)


@dataclass
class WordRow:
    id: str
    view: str
    source: str
    text: str
    gold: str
    baselines: dict[str, str]


def word_row(raw: dict) -> WordRow | None:
    """A row of the word-level files (README "Word-level files"), or None without text and gold_text."""
    text, gold = raw.get("text"), raw.get("gold_text")
    if not isinstance(text, str) or not isinstance(gold, str):
        return None
    extracted = raw.get("baselines") or {}
    return WordRow(str(raw.get("id", "")), str(raw.get("view") or "-"), str(raw.get("source") or "-"), text, gold,
                   {str(k): v if isinstance(v, str) else "" for k, v in extracted.items()})


def eval_words(gold: str | Path, predict: Callable[[Sequence[str]], list[str]] | None = None, *,
               views: set[str] | None = None, sources: set[str] | None = None, limit: int | None = None) -> dict:
    """Mean word P/R/F1 per view and source of the refined text (``predict``; output ``refiner``), the raw
    ``text`` (``raw``) and every extractor output in the rows' ``baselines``, side by side."""
    rows, skipped = _select(gold, word_row, views=views, sources=sources, limit=limit)
    scorer = WordScorer()
    for batch in _batches(rows):
        refined = predict([r.text for r in batch]) if predict is not None else [None] * len(batch)
        for r, text in zip(batch, refined):
            outputs = {} if text is None else {"refiner": text}
            scorer.add(r.view, r.source, {**outputs, "raw": r.text, **r.baselines}, r.gold)
    return {"gold": str(gold), "rows": len(rows), "skipped_rows": skipped, "scores": scorer.to_dict()}


def _line_row_with_formulas(raw: dict) -> tuple[Any, set[int] | None] | None:
    """A line row and, for math rows (README "Math lines"), its ``meta.formula_lines``."""
    row = line_row(raw)
    if row is None:
        return None
    meta = raw.get("meta")
    formula = meta.get("formula_lines") if isinstance(meta, dict) else None
    return row, (None if formula is None else {int(i) for i in formula})


def eval_lines(gold: str | Path, predict: Callable[[Sequence[str]], list[list[int]]], *,
               views: set[str] | None = None, sources: set[str] | None = None, limit: int | None = None) -> dict:
    """Line-wise P/R/F1 (micro and macro) per view and source; see `prox.evaluate.metrics`."""
    rows, skipped = _select(gold, _line_row_with_formulas, views=views, sources=sources, limit=limit)
    scorer = LineScorer()
    for batch in _batches(rows):
        for (r, formula), removed in zip(batch, predict([r.text for r, _ in batch])):
            scorer.add(r.view or "-", r.source or "-", removed, r.noisy, r.content, formula)
    return {"gold": str(gold), "rows": len(rows), "skipped_rows": skipped, "scores": scorer.to_dict()}


def eval_docs(gold: str | Path, predict: Callable[[Sequence[str]], list[bool]], *,
              sources: set[str] | None = None, split: str = "all", limit: int | None = None) -> dict:
    """DROP / KEEP P/R/F1 and accuracy per source. ``split``: all | train | holdout (hash of id)."""
    if split not in ("all", "train", "holdout"):
        raise ValueError(f"split must be all, train or holdout, not {split!r}")
    rows, skipped = _select(
        gold, lambda raw: raw if isinstance(raw.get("text"), str) and isinstance(raw.get("keep"), bool) else None,
        keep=lambda raw: split == "all" or in_train_split(str(raw.get("id", ""))) == (split == "train"),
        sources=sources, limit=limit)
    scorer = DocScorer()
    for batch in _batches(rows):
        for r, drop in zip(batch, predict([r["text"] for r in batch])):
            scorer.add(str(r.get("source", "-")), bool(drop), not r["keep"])
    return {"gold": str(gold), "split": split, "docs": len(rows), "skipped_rows": skipped, "scores": scorer.to_dict()}
