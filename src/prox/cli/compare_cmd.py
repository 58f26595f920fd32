"""`prox compare`: refine one corpus with several refiners and pre-train a proxy LM on each."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prox.cli import app


@app.command("compare")
def compare(
    inputs: List[Path] = typer.Argument(..., help="corpus files or folders (JSONL/.gz/.zst or Parquet)"),
    output: Path = typer.Option(..., "-o", "--output", help="folder for refined/<variant>/, compare.{json,md,png}"),
    refiners: str = typer.Option(",".join(("raw", "rules:gopher", "rules:c4", "rules:fineweb",
                                           "rules:gopher+c4+fineweb", "builtin")),
                                 "--refiners", help="comma-separated refiner specs; 'raw' = no refining"),
    eval_set: Optional[List[Path]] = typer.Option(None, "--eval-set",
        help="clean reference texts (JSONL; rows with content_lines use only those lines). "
             "Default: hold out --eval-percent of the pages and use their gold-clean text"),
    eval_percent: int = typer.Option(10, help="held-out share of pages when no --eval-set is given"),
    tokenizer: Optional[str] = typer.Option(None, help="local tokenizer.json or folder (e.g. Llama-2); default: bytes"),
    text_field: str = typer.Option("text", help="field holding the text"),
    where: Optional[List[str]] = typer.Option(None, help="keep only rows with FIELD=VALUE (repeatable), e.g. view=dclm"),
    limit: Optional[int] = typer.Option(None, help="use only the first N documents"),
    train_tokens: int = typer.Option(1_000_000, help="training tokens per variant (same budget for every variant)"),
    seq_len: int = typer.Option(256),
    batch_size: int = typer.Option(16),
    hidden: int = typer.Option(128),
    layers: int = typer.Option(2),
    heads: int = typer.Option(4),
    lr: float = typer.Option(2e-3),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto | cpu | cuda | mps"),
    mode: str = typer.Option("strict", help="executor mode: strict | reference"),
    workers: int = typer.Option(2, help="refine each variant as this many pipeline tasks/processes"),
) -> None:
    """Paper-style comparison: Raw vs rule filters vs ProX, judged by a small proxy pre-training run."""
    from prox.compare import ProxyConfig, load_corpus, run_compare
    from prox.compare.data import clean_text, parse_where

    cond = parse_where(where)
    docs = load_corpus(inputs, text_field=text_field, where=cond, limit=limit)
    if not docs:
        raise typer.BadParameter("no documents with a text field in the inputs")
    eval_texts = None
    if eval_set:
        eval_texts = [t for t in (clean_text(d) for d in load_corpus(eval_set, text_field=text_field, where=cond)) if t.strip()]
    cfg = ProxyConfig(seq_len=seq_len, batch_size=batch_size, train_tokens=train_tokens, hidden=hidden, layers=layers,
                      heads=heads, lr=lr, seed=seed, device=device)
    specs = [s.strip() for s in refiners.split(",") if s.strip()]
    result = run_compare(docs, output, refiners=specs, eval_texts=eval_texts, eval_percent=eval_percent,
                         tokenizer=tokenizer, proxy=cfg, mode=mode, workers=workers, log=typer.echo)
    typer.echo((output / "compare.md").read_text())
    if all("error" in v for v in result["variants"]):
        raise typer.Exit(1)
