"""`prox eval lines|docs GOLD`: score a refiner or a simple baseline on gold labels (JSON on stdout)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from prox.cli import app
from prox.cli.options import REFINER_OPTION_HELP, parse_refiner_options

eval_app = typer.Typer(help="Score a refiner on gold line labels or doc labels (JSON on stdout).", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

REFINER_HELP = "refiner spec for prox.refiners.get_refiner (builtin, builtin:MODEL.npz, rules:..., transformers, ...)"


def _emit(result: dict, output: Optional[Path]) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)


@eval_app.command("lines")
def lines_cmd(
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="line labels: {id, text, noisy_lines, content_lines?, uncertain_lines?, view?, source?} JSONL(.gz)"),
    refiner: str = typer.Option("builtin", "--refiner", "-r", help=REFINER_HELP),
    option: List[str] = typer.Option([], "--option", "-O", help=REFINER_OPTION_HELP),
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", "-b", help="score a simple baseline instead: nothing | short | c4 | all (repeatable)"),
    view: Optional[List[str]] = typer.Option(None, "--view", help="only rows of this view (repeatable)"),
    source: Optional[List[str]] = typer.Option(None, "--source", help="only rows of this source (repeatable)"),
    limit: Optional[int] = typer.Option(None, help="score only the first N rows"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="also write the JSON here"),
) -> None:
    """Line-wise P/R/F1 over noisy-line indices, micro and macro, per view and source."""
    from prox.evaluate.baselines import LINE_BASELINES
    from prox.evaluate.run import eval_lines, line_predictor

    opts = dict(views=set(view) if view else None, sources=set(source) if source else None, limit=limit)
    try:
        if baseline:
            names = list(LINE_BASELINES) if "all" in baseline else baseline
            result = {"baselines": {b: eval_lines(gold, line_predictor(baseline=b), **opts) for b in names}}
        else:
            from prox.refiners import get_refiner

            result = {"refiner": refiner, **eval_lines(gold, line_predictor(get_refiner(refiner, **parse_refiner_options(option))), **opts)}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _emit(result, output)


@eval_app.command("docs")
def docs_cmd(
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="doc labels: {id, text, keep, source?} JSONL(.gz)"),
    refiner: str = typer.Option("builtin", "--refiner", "-r", help=REFINER_HELP),
    option: List[str] = typer.Option([], "--option", "-O", help=REFINER_OPTION_HELP),
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", "-b", help="score a simple baseline instead: keep-all | drop-all | doc-rule | all (repeatable)"),
    source: Optional[List[str]] = typer.Option(None, "--source", help="only documents of this source (repeatable)"),
    split: str = typer.Option("all", help="all | train | holdout: the id-hash split `prox train builtin` uses (80/20)"),
    limit: Optional[int] = typer.Option(None, help="score only the first N documents"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="also write the JSON here"),
) -> None:
    """DROP / KEEP P/R/F1 and accuracy per source (DROP is the positive class)."""
    from prox.evaluate.baselines import DOC_BASELINES
    from prox.evaluate.run import doc_predictor, eval_docs

    opts = dict(sources=set(source) if source else None, split=split, limit=limit)
    try:
        if baseline:
            names = list(DOC_BASELINES) if "all" in baseline else baseline
            result = {"baselines": {b: eval_docs(gold, doc_predictor(baseline=b), **opts) for b in names}}
        else:
            from prox.refiners import get_refiner

            result = {"refiner": refiner, **eval_docs(gold, doc_predictor(get_refiner(refiner, **parse_refiner_options(option))), **opts)}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _emit(result, output)
