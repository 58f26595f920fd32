"""Readable tables of `prox eval` results: plain rows of strings, one column per scored system.

The result dicts of `eval_lines`, `eval_docs` and `eval_words` (the JSON of ``--json``) go
in; `Table` values come out, for the CLI to print. Cells are formatted like the tables of
the benchmarks README (three decimals, ``P / R / F1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""


def _f(x: float) -> str:
    return f"{x:.3f}"


def _prf(d: dict) -> str:
    return f"{_f(d['precision'])} / {_f(d['recall'])} / {_f(d['f1'])}"


def _systems(result: dict) -> list[tuple[str, dict]]:
    """``(label, scores)`` of every system in a lines/docs result: the refiner, then each baseline."""
    out = [(str(result["refiner"]), result["scores"])] if "scores" in result else []
    out += [(name, res["scores"]) for name, res in result.get("baselines", {}).items()]
    return out


def _caption(result: dict) -> str:
    """Where the numbers come from: the gold file, its rows and the rows it could not score."""
    run = result if "gold" in result else next(iter(result.get("baselines", {}).values()), {})
    if "gold" not in run:
        return ""
    n = run.get("rows", run.get("docs"))
    extra = f" (split {run['split']})" if run.get("split", "all") != "all" else ""
    return f"{run['gold']}{extra}: {n} rows scored, {run.get('skipped_rows', 0)} skipped"


def _groups(scores: dict) -> Iterator[tuple[str, str]]:
    for view, by_source in scores.items():
        for source in by_source:
            yield view, source


def lines_tables(result: dict) -> list[Table]:
    """Micro P / R / F1 / macro F1 per view and source; for math rows also a table of the
    formula and content lines each system keeps."""
    named = _systems(result)
    if not named:
        return []
    first = named[0][1]
    main = Table("Lines: micro P / R / F1 / macro F1 (noise = positive)",
                 ["view", "source", "rows"] + [label for label, _ in named])
    math = Table("Math rows: formula lines kept (deleted) / content lines kept",
                 ["view", "source", "rows", "formula lines", "content lines"] + [label for label, _ in named])
    for view, source in _groups(first):
        cells = [s[view][source] for _, s in named]
        main.rows.append([view, source, str(cells[0]["rows"])] + [
            f"{_prf(c['micro'])} / {_f(c['macro']['f1'])}" for c in cells])
        if "math" in cells[0]:
            m = cells[0]["math"]
            math.rows.append([view, source, str(m["rows"]), str(m["formula_lines"]), str(m["content_lines"])] + [
                f"{_f(c['math']['formula_kept'])} ({c['math']['formula_deleted']}) / {_f(c['math']['content_kept'])}"
                for c in cells])
    main.caption = _caption(result)
    return [main, math] if math.rows else [main]


def docs_tables(result: dict) -> list[Table]:
    """DROP P / R / F1, KEEP F1 and accuracy per source."""
    named = _systems(result)
    if not named:
        return []
    table = Table("Docs: DROP P / R / F1 · KEEP F1 · accuracy (drop = positive)",
                  ["source", "docs", "gold drop"] + [label for label, _ in named])
    for source, first in named[0][1].items():
        cells = [s[source] for _, s in named]
        table.rows.append([source, str(first["docs"]), str(first["gold_drop"])] + [
            f"{_prf(c['drop'])} · {_f(c['keep']['f1'])} · {_f(c['accuracy'])}" for c in cells])
    table.caption = _caption(result)
    return [table]


def words_tables(result: dict) -> list[Table]:
    """Mean word P / R / F1 per view and source, one column per output (refiner, raw, extractors)."""
    scores = result["scores"]
    names: list[str] = []
    for view, source in _groups(scores):
        names += [n for n in scores[view][source]["outputs"] if n not in names]
    stages = f" ({'+'.join(result['stages'])})" if result.get("stages") else ""
    label = {"refiner": f"{result.get('refiner') or 'refiner'}{stages}", "raw": "raw text"}
    table = Table("Words: mean P / R / F1 against gold_text",
                  ["view", "source", "rows"] + [label.get(n, n) for n in names])
    for view, source in _groups(scores):
        group = scores[view][source]
        table.rows.append([view, source, str(group["rows"])] + [
            _prf(group["outputs"][n]) if n in group["outputs"] else "–" for n in names])
    table.caption = _caption(result)
    return [table]
