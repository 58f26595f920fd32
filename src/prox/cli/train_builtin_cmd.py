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
    cfg = TrainConfig(seed=seed, trees=trees, folds=folds, threads=threads, max_depth=max_depth,
                      learning_rate=learning_rate)
    meta = {
        "trained_on": {"lines": [str(p) for p in lines], "docs": [str(p) for p in docs or []],
                       "doc_source": doc_source or [], "doc_split": doc_split},
        "skipped": data.skipped,
    }
    model = train(data.lines, data.docs, cfg, meta=meta)
    path = model.save(output)
    summary = {"model": str(path), "bytes": path.stat().st_size, "line_rows": len(data.lines),
               "doc_rows": len(data.docs), "skipped": data.skipped,
               "line_cv": model.meta.get("line_cv"), "doc_cv": model.meta.get("doc_cv")}
    typer.echo(json.dumps(summary, indent=2))
