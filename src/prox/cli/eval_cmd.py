"""`prox eval lines|docs|words GOLD`: score a refiner (and simple baselines) on gold labels.

A readable table on stdout; ``--json`` prints the JSON result instead, ``-o FILE`` writes it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from prox.cli import app
from prox.cli.options import REFINER_OPTION_HELP, parse_refiner_options

eval_app = typer.Typer(help="Score a refiner on gold line labels, doc labels or gold main text.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

REFINER_HELP = "refiner spec for prox.refiners.get_refiner (builtin, builtin:MODEL.npz, rules:..., transformers, ...)"
# the options every `prox eval` command takes
RefinerOptions = Annotated[List[str], typer.Option("--option", "-O", help=REFINER_OPTION_HELP)]
Views = Annotated[Optional[List[str]], typer.Option("--view", help="only rows of this view (repeatable)")]
Sources = Annotated[Optional[List[str]], typer.Option("--source", help="only rows of this source (repeatable)")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="score only the first N rows")]
AsJson = Annotated[bool, typer.Option("--json", help="print the JSON result instead of the table")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", help="also write the JSON result here")]
# lines and docs: the refiner, simple baselines, or both side by side
RefinerOrNone = Annotated[Optional[str], typer.Option(
    "--refiner", "-r", help=REFINER_HELP + "; default builtin, or none when --baseline is given")]


def _emit(result: dict, output: Optional[Path], as_json: bool, tables: Callable[[dict], list]) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)
    else:
        _print_tables(tables(result))


def _print_tables(tables: list) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a pipe or a file: do not squeeze the columns into 80 characters
        console = Console(width=max(console.width, 250))
    for t in tables:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name in t.columns:
            table.add_column(name, justify="left" if name in ("view", "source") else "right")
        for row in t.rows:
            table.add_row(*row)
        console.print(f"[bold]{t.title}[/bold]", highlight=False, soft_wrap=True)
        console.print(table)
        if t.caption:
            console.print(t.caption, highlight=False, soft_wrap=True)
        console.print()


def _sets(values: Optional[List[str]]) -> Optional[set[str]]:
    return set(values) if values else None


def _score(refiner: Optional[str], option: List[str], baseline: Optional[List[str]], all_baselines: Any,
           run: Callable[..., dict], predictor: Callable[..., Any]) -> dict:
    """The refiner's result (``{"refiner": spec, ...}``) and/or ``{"baselines": {name: result}}``.

    Without --baseline the refiner (default builtin) is scored; with --baseline only the
    baselines are, unless --refiner is given too: then both, side by side.
    """
    result: dict = {}
    try:
        if refiner is not None or not baseline:
            from prox.refiners import get_refiner

            spec = refiner or "builtin"
            result = {"refiner": spec, **run(predictor(get_refiner(spec, **parse_refiner_options(option))))}
        if baseline:
            names = list(all_baselines) if "all" in baseline else baseline
            result["baselines"] = {b: run(predictor(baseline=b)) for b in names}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return result


@eval_app.command("lines")
def lines_cmd(
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="line labels: {id, text, noisy_lines, content_lines?, uncertain_lines?, view?, source?, meta.formula_lines?} JSONL(.gz)"),
    refiner: RefinerOrNone = None,
    option: RefinerOptions = [],
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", "-b", help="score a simple baseline: nothing | short | c4-line-rule (the benchmarks README's simplified C4 line rule; also: c4) | all (repeatable)"),
    view: Views = None,
    source: Sources = None,
    limit: Limit = None,
    as_json: AsJson = False,
    output: Output = None,
) -> None:
    """Line-wise P/R/F1 over noisy-line indices, micro and macro, per view and source; on math rows
    (meta.formula_lines) also the formula and content lines kept."""
    from prox.evaluate.baselines import LINE_BASELINES
    from prox.evaluate.run import eval_lines, line_predictor
    from prox.evaluate.tables import lines_tables

    result = _score(refiner, option, baseline, LINE_BASELINES,
                    lambda predict: eval_lines(gold, predict, views=_sets(view), sources=_sets(source), limit=limit),
                    line_predictor)
    _emit(result, output, as_json, lines_tables)


@eval_app.command("docs")
def docs_cmd(
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="doc labels: {id, text, keep, source?} JSONL(.gz)"),
    refiner: RefinerOrNone = None,
    option: RefinerOptions = [],
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", "-b", help="score a simple baseline: keep-all | drop-all | doc-rule | all (repeatable)"),
    source: Sources = None,
    split: str = typer.Option("all", help="all | train | holdout: the id-hash split `prox train builtin` uses (80/20)"),
    limit: Limit = None,
    as_json: AsJson = False,
    output: Output = None,
) -> None:
    """DROP / KEEP P/R/F1 and accuracy per source (DROP is the positive class)."""
    from prox.evaluate.baselines import DOC_BASELINES
    from prox.evaluate.run import doc_predictor, eval_docs
    from prox.evaluate.tables import docs_tables

    result = _score(refiner, option, baseline, DOC_BASELINES,
                    lambda predict: eval_docs(gold, predict, sources=_sets(source), split=split, limit=limit),
                    doc_predictor)
    _emit(result, output, as_json, docs_tables)


@eval_app.command("words")
def words_cmd(
    gold: Path = typer.Argument(..., exists=True, dir_okay=False, help="word-level rows: {id, text, gold_text, baselines?: {name: text}, view?, source?} JSONL(.gz)"),
    refiner: str = typer.Option("builtin", "--refiner", "-r", help=REFINER_HELP),
    option: RefinerOptions = [],
    stages: Optional[str] = typer.Option(None, "--stages", help="stages to run: doc,chunk, doc or chunk (default: all the refiner can run, as `prox refine`)"),
    view: Views = None,
    source: Sources = None,
    limit: Limit = None,
    as_json: AsJson = False,
    output: Output = None,
) -> None:
    """Bag-of-words P/R/F1 of the refined text against gold_text (mean over pages) per view and
    source, beside the raw text and every extractor output of the rows' `baselines`."""
    from prox.evaluate.run import eval_words, text_predictor
    from prox.evaluate.tables import words_tables
    from prox.refiners import get_refiner

    try:
        predict = text_predictor(get_refiner(refiner, **parse_refiner_options(option)),
                                 stages=[s.strip() for s in stages.split(",")] if stages else None)
        result = {"refiner": refiner, "stages": list(predict.stages),
                  **eval_words(gold, predict, views=_sets(view), sources=_sets(source), limit=limit)}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _emit(result, output, as_json, words_tables)
