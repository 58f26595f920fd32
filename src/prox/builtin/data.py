"""Training data for the builtin refiner: label files and `prox refine` output folders.

Line rows: ``{id, text, noisy_lines, content_lines?, uncertain_lines?}``. When
``content_lines`` is absent, every non-blank line not in ``noisy_lines`` or
``uncertain_lines`` is content. Doc rows: ``{id, text, keep}``.

A `prox refine` output folder (``OUTDIR/kept/*.jsonl.gz``, ``OUTDIR/dropped/*.jsonl.gz``)
gives both: doc labels from kept vs dropped (or the record's ``doc_program``), and line
labels of kept documents from the removed ranges of the execution summary (or from the
parsed ``chunk_programs`` when the summary is missing). This distils that refiner.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prox.records import load_records

# DCLM human-quality labels: the part of docs-public to train a pre-training doc model on.
DCLM_HUMAN_SOURCE = "dclm-human-majority"
# Held-out split of doc labels: a doc is in train when int(sha1(id)) % 100 < 80
# (the same rule the benchmarks README uses for the line split).
TRAIN_PERCENT = 80


# Licences of the public label sets (benchmarks README, "Provenance and licences").
SOURCE_LICENCES = {
    "scrapinghub-aeb": "MIT (scrapinghub/article-extraction-benchmark)",
    "wcxb-dev": "CC-BY-4.0: WCXB — Web Content Extraction Benchmark, by Murrough Foley (2026), CC BY 4.0",
    "trafilatura-eval": "Apache-2.0 (adbar/trafilatura tests/evaldata; annotations by BBAW and tsolewski)",
    "dclm-human-majority": "MIT (mlfoundations/dclm data/majority_data.jsonl)",
    "mathse-math": "MIT (EleutherAI/math-lm); text CC BY-SA (math.stackexchange.com authors)",
    "noisepage-wcxb-dev": "CC-BY-4.0: WCXB — Web Content Extraction Benchmark, by Murrough Foley (2026), CC BY 4.0",
}


def licences(sources: set[str]) -> dict[str, str]:
    """Licence note for every data source a model was trained on."""
    return {s: SOURCE_LICENCES.get(s, "user-supplied data: licence not recorded") for s in sorted(sources)}


@dataclass
class LineRow:
    id: str
    text: str
    noisy: set[int]
    content: set[int]
    group: str  # documents of one group never straddle cross-validation folds
    view: str = ""
    source: str = ""
    weight: float = 1.0  # sample weight of the row's lines in the line model's fit


@dataclass
class DocRow:
    id: str
    text: str
    keep: bool
    source: str = ""
    weight: float = 1.0  # sample weight in the doc model's fit
    tune: bool = True  # used to choose C and the threshold (assembled rows only add evidence)


@dataclass
class Loaded:
    lines: list[LineRow] = field(default_factory=list)
    docs: list[DocRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def in_train_split(doc_id: str, percent: int = TRAIN_PERCENT) -> bool:
    """Deterministic split by id: ``int(sha1(id), 16) % 100 < percent``."""
    return int(hashlib.sha1(doc_id.encode("utf-8")).hexdigest(), 16) % 100 < percent


def _files(folder: Path) -> list[Path]:
    pats = ("*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.json.gz")
    return sorted(p for pat in pats for p in folder.rglob(pat))


def _int_set(values: Any) -> set[int]:
    return {int(v) for v in (values or [])}


def line_row(row: dict[str, Any]) -> LineRow | None:
    text = row.get("text")
    if not isinstance(text, str) or "noisy_lines" not in row:
        return None
    n = len(text.split("\n"))
    noisy = {i for i in _int_set(row["noisy_lines"]) if 0 <= i < n}
    uncertain = _int_set(row.get("uncertain_lines"))
    if "content_lines" in row:
        content = {i for i in _int_set(row["content_lines"]) if 0 <= i < n} - noisy
    else:
        lines = text.split("\n")
        content = {i for i in range(n) if lines[i].strip() and i not in noisy and i not in uncertain}
    rid = str(row.get("id", ""))
    return LineRow(rid, text, noisy, content - uncertain, str(row.get("doc_id") or rid),
                   str(row.get("view", "")), str(row.get("source", "")))


_REMOVE = re.compile(r"remove_lines\s*\(([^)]*)\)")


def _removed_from_programs(programs: list[str], n_lines: int) -> set[int]:
    try:
        from prox.parse import parse_program
        from prox.program import RemoveLines
    except ImportError:  # pragma: no cover - core parser missing
        parse_program = None
    out: set[int] = set()
    for prog in programs:
        if parse_program is not None:
            for op in parse_program(prog, stage="chunk").operations:
                if isinstance(op, RemoveLines):
                    out.update(range(max(op.start, 0), min(op.end, n_lines - 1) + 1))
    return out


def refine_record(rec: dict[str, Any], folder_kept: bool, out: Loaded) -> None:
    """Labels from one `prox refine` output record (see the module docstring)."""
    meta = rec.get("metadata") or {}
    raw = meta.get("raw_text")
    if not isinstance(raw, str):
        raw = rec.get("text") if folder_kept is False else None
    if not isinstance(raw, str):
        out.skip("no_raw_text")
        return
    rid = str(rec.get("id", ""))
    doc_prog = meta.get("doc_program")
    keep = folder_kept
    if isinstance(doc_prog, str) and doc_prog.strip():
        keep = "drop_doc" not in doc_prog  # the reference doc-stage rule: any "drop" drops
    out.docs.append(DocRow(rid, raw, keep, "distill"))
    if not folder_kept:
        return  # dropped documents never reach the chunk stage: no line labels
    n = len(raw.split("\n"))
    execution = meta.get("execution") or {}
    ranges = execution.get("removed_ranges") if isinstance(execution, dict) else None
    if ranges is not None:
        noisy: set[int] = set()
        for r in ranges:
            try:
                a, b = int(r[0]), int(r[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            noisy.update(range(max(a, 0), min(b, n - 1) + 1))
    else:
        progs = meta.get("chunk_programs")
        if isinstance(progs, str):
            progs = [progs]
        if not isinstance(progs, list):
            out.skip("no_line_labels")
            return
        noisy = _removed_from_programs([str(p) for p in progs], n)
    lines = raw.split("\n")
    content = {i for i in range(n) if lines[i].strip() and i not in noisy}
    out.lines.append(LineRow(rid, raw, noisy, content, rid, "distill", "distill"))


def load_refine_output(folder: Path, out: Loaded) -> None:
    found = False
    for sub, kept in (("kept", True), ("dropped", False)):
        d = folder / sub
        if d.is_dir():
            for f in _files(d):
                found = True
                for rec in load_records(f):
                    refine_record(rec, kept, out)
    if not found:
        raise ValueError(f"{folder}: no kept/ or dropped/ *.jsonl[.gz] files (is it a `prox refine` output?)")


def load_lines(path: str | Path, out: Loaded) -> None:
    path = Path(path)
    if path.is_dir():
        load_refine_output(path, out)
        return
    for row in load_records(path):
        r = line_row(row)
        if r is None:
            out.skip("bad_line_row")
        else:
            out.lines.append(r)


def load_docs(path: str | Path, out: Loaded, *, sources: set[str] | None = None, split: str = "train") -> None:
    """Doc labels; ``split`` is ``train`` / ``holdout`` / ``all`` by :func:`in_train_split`."""
    path = Path(path)
    if path.is_dir():
        tmp = Loaded()
        load_refine_output(path, tmp)
        out.docs.extend(tmp.docs)
        out.lines.extend(tmp.lines)
        return
    for row in load_records(path):
        text, keep = row.get("text"), row.get("keep")
        if not isinstance(text, str) or not isinstance(keep, bool):
            out.skip("bad_doc_row")
            continue
        src = str(row.get("source", ""))
        if sources and src not in sources:
            out.skip("other_source")
            continue
        rid = str(row.get("id", ""))
        if split != "all" and in_train_split(rid) != (split == "train"):
            out.skip("other_split")
            continue
        out.docs.append(DocRow(rid, text, keep, src))
