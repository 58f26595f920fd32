"""`prox train builtin`: train the embedded CPU refiner from labels or from another refiner's output."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer

from prox.cli.train_cmd import train_app


@train_app.command("builtin")
def train_builtin(
    lines: List[Path] = typer.Option(..., "--lines", exists=True, help="line labels JSONL(.gz) {id, text, noisy_lines, ...}, or a `prox refine` output folder to distil (repeatable)"),
    docs: Optional[List[Path]] = typer.Option(None, "--docs", exists=True, help="doc labels JSONL(.gz) {id, text, keep, source?}, or a `prox refine` output folder (repeatable)"),
    output: Path = typer.Option(..., "--output", "-o", help="model file (.npz) or folder to write builtin.npz into"),
    doc_source: Optional[List[str]] = typer.Option(None, "--doc-source", help="use only doc rows of this source (repeatable), e.g. dclm-human-majority"),
    math_docs: Optional[Path] = typer.Option(None, "--math-docs", exists=True, help="math Q&A texts (docs-public.jsonl.gz: its mathse-math rows) assembled into labelled math pages with the chrome of the --lines pages (train split only; see prox.builtin.mathpages)"),
    words: Optional[List[Path]] = typer.Option(None, "--words", exists=True, help="pages with a gold main text {id, text, gold_text} (words-public-train.jsonl.gz): junk prefixes/suffixes are learned from them and cut with normalize (prox.builtin.fragments), and the word-F1 rescue margin is chosen on those that are --lines rows (prox.builtin.train.choose_rescue_margin); repeatable"),
    math_line_weight: float = typer.Option(1.0, help="sample weight of the assembled math pages' lines in the line model (the web rows weigh 1)"),
    math_doc_weight: float = typer.Option(0.5, help="total weight of the assembled math pages as keep documents in the doc model, relative to the labelled docs (0: lines only)"),
    doc_split: str = typer.Option("train", help="train | all: `train` keeps ids with int(sha1(id)) % 100 < 80 and leaves the rest for `prox eval docs --split holdout`"),
    seed: int = typer.Option(0, help="seed (training is deterministic for a seed)"),
    trees: int = typer.Option(120, help="boosting iterations of the line model"),
    max_depth: int = typer.Option(6, help="depth limit of each tree (inference cost grows with trees x depth)"),
    learning_rate: float = typer.Option(0.15, help="boosting learning rate"),
    folds: int = typer.Option(4, help="cross-validation folds (out-of-fold token scores, threshold tuning)"),
    threads: Optional[int] = typer.Option(None, help="OpenMP/BLAS threads while training (default: all cores)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train the builtin model; prints a JSON summary (cross-validated scores, counts)."""
    from prox.builtin.data import Loaded, load_docs, load_lines
    from prox.builtin.mathpages import MATH_SOURCE, MathPageConfig, build_pages, keep_docs
    from prox.builtin.train import TrainConfig, train

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    if doc_split not in ("train", "all"):
        raise typer.BadParameter("--doc-split must be train or all")
    data = Loaded()
    try:
        for p in lines:
            load_lines(p, data)
        for p in docs or []:
            load_docs(p, data, sources=set(doc_source) if doc_source else None, split=doc_split)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not data.lines:
        raise typer.BadParameter("no usable line labels found")
    math_pages = 0
    if math_docs is not None:
        math = Loaded()
        load_docs(math_docs, math, sources={MATH_SOURCE}, split="train")
        page_cfg = MathPageConfig(seed=seed, doc_weight_share=math_doc_weight, line_weight=math_line_weight)
        pages = build_pages(math.docs, data.lines, page_cfg)
        if not pages:
            raise typer.BadParameter(f"{math_docs}: no {MATH_SOURCE} rows in the train split")
        data.lines.extend(pages)
        data.docs.extend(keep_docs(pages, len(data.docs), page_cfg))
        math_pages = len(pages)
    cfg = TrainConfig(seed=seed, trees=trees, folds=folds, threads=threads, max_depth=max_depth,
                      learning_rate=learning_rate)
    meta = {
        "trained_on": {"lines": [str(p) for p in lines], "docs": [str(p) for p in docs or []],
                       "math_docs": str(math_docs) if math_docs else None, "math_pages": math_pages,
                       "doc_source": doc_source or [], "doc_split": doc_split},
        "skipped": data.skipped,
    }
    from prox.builtin.fragments import load_word_pages, mine

    pages = load_word_pages(words or [])
    model = train(data.lines, data.docs, cfg, meta=meta, gold_texts={text: gold for _, text, gold in pages})
    if words:
        model.fragments = mine(pages)
        model.meta["trained_on"]["words"] = [str(p) for p in words]
    path = model.save(output)
    summary = {"model": str(path), "bytes": path.stat().st_size, "line_rows": len(data.lines),
               "doc_rows": len(data.docs), "math_pages": math_pages, "skipped": data.skipped,
               "line_cv": model.meta.get("line_cv"), "doc_cv": model.meta.get("doc_cv"),
               "fragments": len(model.fragments), "rescue_margin": model.rescue_margin}
    typer.echo(json.dumps(summary, indent=2))
