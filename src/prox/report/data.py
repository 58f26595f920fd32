"""Read a refine output folder into plain per-document rows and aggregate statistics."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prox.mathtext import protected_lines
from prox.pipeline.layout import OUTCOMES, OutputRecord, read_outputs, read_stats

TOP_N = 25  # most frequent removed lines / normalizations shown


@dataclass
class ReportRow:
    """What the report shows of one output record."""

    id: str
    outcome: str
    raw: str
    text: str                      # refined text for kept, "" otherwise
    reason: str | None
    doc_program: str | None
    chunk_programs: list[str]
    removed_ranges: list[tuple[int, int]]
    normalizations: list[tuple[str, str]]
    errors: list[dict]

    @property
    def n_ops(self) -> int:
        return len(self.removed_ranges) + len(self.normalizations)

    @classmethod
    def from_record(cls, rec: OutputRecord) -> "ReportRow":
        execution = rec.execution or {}
        return cls(
            id=str(rec.id), outcome=rec.outcome, raw=rec.raw_text if rec.raw_text is not None else rec.text,
            text=rec.text if rec.outcome == "kept" else "", reason=rec.reason if rec.outcome == "dropped" else rec.error,
            doc_program=rec.doc_program, chunk_programs=list(rec.chunk_programs or []),
            removed_ranges=[(int(a), int(b)) for a, b in execution.get("removed_ranges") or []],
            normalizations=[(str(s), str(t)) for s, t in execution.get("normalizations") or []],
            errors=list(execution.get("errors") or []),
        )


def load_rows(outdir: str | Path) -> list[ReportRow]:
    return [ReportRow.from_record(rec) for rec in read_outputs(outdir)]


def load_stats(outdir: str | Path) -> dict:
    return read_stats(outdir)


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)       # "dropped: drop_doc", "failed: ..."
    chars_in: int = 0
    chars_out: int = 0
    lines_removed: int = 0
    # formula lines (`prox.mathtext` evidence) of the input, and where they went
    formula_lines_in: int = 0
    formula_lines_removed: int = 0  # inside removed ranges of kept documents
    formula_lines_dropped: int = 0  # in dropped documents
    removed_lines: Counter = field(default_factory=Counter)
    normalizations: Counter = field(default_factory=Counter)
    # (source, target) -> one line it changed, before and after
    normalization_examples: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    error_reasons: Counter = field(default_factory=Counter)
    len_before: list[int] = field(default_factory=list)     # chars, kept docs
    len_after: list[int] = field(default_factory=list)
    kept_ratio: list[float] = field(default_factory=list)   # chars out / chars in, kept docs
    ops_per_doc: list[int] = field(default_factory=list)    # operations applied, kept docs
    errors_per_doc: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts[o] for o in OUTCOMES)

    @property
    def formula_lines_kept(self) -> int:
        return self.formula_lines_in - self.formula_lines_removed - self.formula_lines_dropped


def summarize(rows: list[ReportRow]) -> Summary:
    s = Summary()
    for r in rows:
        s.counts[r.outcome] += 1
        s.chars_in += len(r.raw)
        if r.outcome != "kept":
            detail = (r.reason or "unknown")
            if r.outcome == "failed":
                detail = detail.split(":", 1)[0]
            elif detail == "doc_program" and r.doc_program:
                # rule refiners name the rule in a comment line: "# gopher_short_doc"
                notes = [ln.strip()[1:].strip() for ln in r.doc_program.split("\n") if ln.strip().startswith("#")]
                if notes:
                    detail = f"doc_program: {notes[0][:80]}"
            s.reasons[f"{r.outcome}: {detail}"] += 1
        formula = protected_lines(r.raw.split("\n")) if r.outcome != "failed" else None
        if formula is not None:
            s.formula_lines_in += int(formula.sum())
            if r.outcome == "dropped":
                s.formula_lines_dropped += int(formula.sum())
        s.errors_per_doc.append(len(r.errors))
        for e in r.errors:
            s.error_reasons[str(e.get("reason", "error"))] += 1
        if r.outcome != "kept":
            continue
        s.chars_out += len(r.text)
        s.len_before.append(len(r.raw))
        s.len_after.append(len(r.text))
        s.kept_ratio.append(len(r.text) / len(r.raw) if r.raw else 1.0)
        s.ops_per_doc.append(r.n_ops)
        lines = r.raw.split("\n")
        for a, b in r.removed_ranges:
            for i in range(max(a, 0), min(b, len(lines) - 1) + 1):
                s.lines_removed += 1
                s.formula_lines_removed += bool(formula[i])
                if lines[i].strip():
                    s.removed_lines[lines[i].strip()[:200]] += 1
        for src, tgt in r.normalizations:
            key = (src[:200], tgt[:200])
            s.normalizations[key] += 1
            if key not in s.normalization_examples and src:
                line = next((ln for ln in lines if src in ln), None)
                if line is not None:
                    s.normalization_examples[key] = (line[:300], line.replace(src, tgt)[:300])
    return s
