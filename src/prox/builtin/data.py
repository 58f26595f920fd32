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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prox.parse import parse_program
from prox.pipeline.layout import OutputRecord, RunLayout, read_outputs
from prox.program import RemoveLines
from prox.records import load_records

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


def _removed_from_programs(programs: list[str], n_lines: int) -> set[int]:
    out: set[int] = set()
    for prog in programs:
        for op in parse_program(prog, stage="chunk").operations:
            if isinstance(op, RemoveLines):
                out.update(range(max(op.start, 0), min(op.end, n_lines - 1) + 1))
    return out


def refine_record(rec: OutputRecord, out: Loaded) -> None:
    """Labels from one `prox refine` output record (see the module docstring)."""
    kept = rec.outcome == "kept"
    raw = rec.raw_text if rec.raw_text is not None else (None if kept else rec.text)
    if raw is None:
        out.skip("no_raw_text")
        return
    rid = str(rec.id if rec.id is not None else "")
    keep = kept
    if rec.doc_program is not None and rec.doc_program.strip():
        keep = "drop_doc" not in rec.doc_program  # the reference doc-stage rule: any "drop" drops
    out.docs.append(DocRow(rid, raw, keep, "distill"))
    if not kept:
        return  # dropped documents never reach the chunk stage: no line labels
    n = len(raw.split("\n"))
    ranges = (rec.execution or {}).get("removed_ranges")
    if ranges is not None:
        noisy: set[int] = set()
        for r in ranges:
            try:
                a, b = int(r[0]), int(r[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            noisy.update(range(max(a, 0), min(b, n - 1) + 1))
    elif rec.chunk_programs is not None:
        noisy = _removed_from_programs(rec.chunk_programs, n)
    else:
        out.skip("no_line_labels")
        return
    lines = raw.split("\n")
    content = {i for i in range(n) if lines[i].strip() and i not in noisy}
    out.lines.append(LineRow(rid, raw, noisy, content, rid, "distill", "distill"))


def load_refine_output(folder: Path, out: Loaded) -> None:
    layout = RunLayout(folder)
    if not layout.output_files("kept") and not layout.output_files("dropped"):
        raise ValueError(f"{folder}: no kept/ or dropped/ *.jsonl[.gz] files (is it a `prox refine` output?)")
    for rec in read_outputs(folder, "kept", "dropped"):
        refine_record(rec, out)


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
