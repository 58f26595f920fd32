"""`prox train encoder`: train the encoder refiner's page-level line model from line labels."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer

from prox.cli.train_cmd import train_app


@train_app.command("encoder")
def train_encoder(
    lines: List[Path] = typer.Option(..., "--lines", exists=True, help="line labels JSONL(.gz) {id, text, noisy_lines, ...}, or a `prox refine` output folder to distil (repeatable)"),
    output: Path = typer.Option(..., "--output", "-o", help="model file (.npz) or folder to write encoder.npz into"),
    embed_cache: Optional[Path] = typer.Option(None, "--embed-cache", help="line-vector cache (.npz): read when it exists, written after encoding (re-runs skip the encoder)"),
    wet_share: float = typer.Option(1.0, help="share of the `wet`-view rows used (page-hash sample; they are 3x the `dclm` lines)"),
    epochs: int = typer.Option(8, help="passes over the training pages (the best held-out epoch is kept)"),
    lr: float = typer.Option(2e-3, help="peak learning rate (one-cycle schedule)"),
    hidden: int = typer.Option(64, help="GRU units per direction"),
    layers: int = typer.Option(2, help="stacked BiGRU layers"),
    proj: int = typer.Option(64, help="width each input group (line vector, builtin features) is projected to"),
    dropout: float = typer.Option(0.2, help="dropout on the projected inputs and the GRU outputs"),
    stack: bool = typer.Option(True, help="feed the builtin trees' (out-of-fold) log-odds of each line to the sequence model"),
    seed: int = typer.Option(0, help="seed (training is deterministic for a seed)"),
    threads: Optional[int] = typer.Option(None, help="torch / BLAS threads (default: all cores)"),
    words: Optional[List[Path]] = typer.Option(None, "--words", exists=True, help="pages with a gold main text {id, text, gold_text} (words-public-train.jsonl.gz): the word-F1 rescue margin is chosen on the held-out pages among them (prox.builtin.train.choose_rescue_margin); repeatable"),
    compare_builtin: bool = typer.Option(False, "--compare-builtin", help="also fit the builtin's trees on the same pages and report their held-out F1"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Train the encoder refiner's sequence model; prints a JSON summary (held-out scores)."""
    from prox.builtin.data import Loaded, load_lines
    from prox.encoder.embed import LineEncoder, load_cache, save_cache
    from prox.encoder.model import SeqConfig
    from prox.encoder.train import EncoderTrainConfig, build_pages, builtin_on_holdout, train

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
    if threads:
        import torch

        torch.set_num_threads(threads)
    data = Loaded()
    try:
        for p in lines:
            load_lines(p, data)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if wet_share < 1.0:
        from prox.encoder.train import page_share

        data.lines = [r for r in data.lines if r.view != "wet" or page_share(r.group, seed) < wet_share]
    if not data.lines:
        raise typer.BadParameter("no usable line labels found")
    encoder = LineEncoder(cache_size=10**8)
    if embed_cache is not None and embed_cache.exists():
        load_cache(embed_cache, encoder)
    cfg = EncoderTrainConfig(seed=seed, epochs=epochs, lr=lr, threads=threads, stack=stack,
                             seq=SeqConfig(hidden=hidden, layers=layers, proj=proj, dropout=dropout))
    pages = build_pages(data.lines, encoder, cfg)
    if embed_cache is not None:
        save_cache(embed_cache, encoder)
    meta = {"trained_on": {"lines": [str(p) for p in lines], "wet_share": wet_share, "rows": len(data.lines)},
            "skipped": data.skipped}
    from prox.builtin.fragments import load_word_pages

    gold_texts = {text: gold for _, text, gold in load_word_pages(words or [])}
    if words:
        meta["trained_on"]["words"] = [str(p) for p in words]
    model = train(data.lines, encoder, cfg, meta=meta, pages=pages, gold_texts=gold_texts)
    if compare_builtin:
        model.meta["builtin_trees_held_out"] = builtin_on_holdout(pages, seed)
    path = model.save(output)
    summary = {"model": str(path), "bytes": path.stat().st_size, "line_rows": len(data.lines),
               "held_out": model.meta["held_out"], "rescue_margin": model.rescue_margin, "history": model.meta["history"],
               "builtin_trees_held_out": model.meta.get("builtin_trees_held_out"), "seconds": model.meta["seconds"]}
    typer.echo(json.dumps(summary, indent=2))
