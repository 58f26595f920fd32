"""Chunk-stage teacher answers -> one validated chunk program.

A teacher answer is free text: prose, fences, echoed examples, half-finished calls. We
never trust it: calls are *located* here (name + balanced parentheses, quote-aware), each
call is parsed by the core parser (`prox.parse.parse_program`), and the operations are
validated against the chunk they are for. The answers of the three prompt families are
merged into one canonical program (`prox.program.format_program`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from prox.parse import parse_program
from prox.program import NOOP_NAMES, NoOp, Normalize, Operation, RemoveLines, format_program

# A teacher that removes more than this share of a chunk's lines is not trusted for that
# chunk: the record is rejected (counted). Our default, not a paper constant.
DEFAULT_MAX_REMOVED_SHARE = 0.8
SKIP = NoOp("skip_chunk")

_CALL_START = re.compile(r"\b(remove_lines|normalize|skip_chunk|keep_chunk|untouch_doc)\s*\(")
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PROGRAM_MARK = re.compile(r"program\s*:", re.I)
_BRACKETED_INT = re.compile(r"\[\s*(\d{1,6})\s*\]")


def _call_end(text: str, open_paren: int) -> int | None:
    """Index just past the ``)`` closing the call opened at ``open_paren``, or None.

    Quote-aware (a ``)`` inside a string literal does not close the call); a call that
    reaches a newline outside a string, or the end of the text, is unterminated.
    """
    depth = 0
    quote: str | None = None
    i = open_paren
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
            elif ch == "\n":
                return None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch == "\n":
            return None
        i += 1
    return None


def _answer_region(answer: str) -> str:
    """The part of an answer most likely to hold the program.

    Fenced code blocks if any hold a call; else the text after the last ``Program:``
    mark if that holds a call; else the whole answer.
    """
    fenced = "\n".join(m.group(1) for m in _FENCE.finditer(answer))
    if _CALL_START.search(fenced):
        return fenced
    marks = list(_PROGRAM_MARK.finditer(answer))
    if marks:
        tail = answer[marks[-1].end():]
        if _CALL_START.search(tail):
            return tail
    return answer


def find_calls(answer: str) -> tuple[list[str], int]:
    """The call texts found in a teacher answer, and how many calls were unterminated."""
    region = _answer_region(answer or "")
    calls: list[str] = []
    unterminated = 0
    pos = 0
    while True:
        m = _CALL_START.search(region, pos)
        if m is None:
            break
        end = _call_end(region, m.end() - 1)
        if end is None:
            unterminated += 1
            pos = m.end()
            continue
        call = region[m.start():end]
        if m.group(1) == "remove_lines":  # "[003]" copied from the line prefixes -> 3
            call = _BRACKETED_INT.sub(lambda g: str(int(g.group(1))), call)
        calls.append(call)
        pos = end
    return calls, unterminated


@dataclass
class ChunkAnnotation:
    """The merged, validated program of one chunk and the counted reasons behind it."""

    program: str | None  # canonical program text; None when rejected
    operations: list[Operation] = field(default_factory=list)
    removed_share: float = 0.0
    rejected: str | None = None  # e.g. "removed_share_above_max", "no_program_found"
    counts: Counter = field(default_factory=Counter)


def extract_operations(answer: str, counts: Counter | None = None) -> list[Operation]:
    """All chunk-stage operations the parser accepts from one teacher answer."""
    counts = counts if counts is not None else Counter()
    calls, unterminated = find_calls(answer)
    counts["calls_unterminated"] += unterminated
    ops: list[Operation] = []
    for call in calls:
        parsed = parse_program(call, stage="chunk")
        if parsed.errors or not parsed.operations:
            counts["calls_rejected_by_parser"] += 1
            continue
        counts["calls_parsed"] += len(parsed.operations)
        ops.extend(parsed.operations)
    return ops


def merge_operations(ops: Iterable[Operation]) -> list[Operation]:
    """Union of line ranges (sorted, overlapping/adjacent ones merged), then the distinct
    normalizations in first-seen order; no-ops vanish. Empty -> ``[skip_chunk()]``."""
    ranges = sorted((op.start, op.end) for op in ops if isinstance(op, RemoveLines))
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[Operation] = [RemoveLines(s, e) for s, e in merged]
    seen: set[tuple[str, str]] = set()
    for op in ops:
        if isinstance(op, Normalize) and (op.source, op.target) not in seen:
            seen.add((op.source, op.target))
            out.append(op)
    return out or [SKIP]


def validate_operations(
    ops: Sequence[Operation], *, first_line: int, last_line: int, chunk_text: str, counts: Counter
) -> list[Operation]:
    """Keep only operations that make sense for this chunk.

    ``remove_lines`` must lie inside the chunk's global line range (a teacher echoing a
    few-shot example usually names lines that are not there); ``normalize`` must have a
    non-empty source that occurs in the chunk's text.
    """
    kept: list[Operation] = []
    for op in ops:
        if isinstance(op, RemoveLines):
            if op.start < first_line or op.end > last_line or op.start > op.end:
                counts["op_outside_chunk"] += 1
                continue
        elif isinstance(op, Normalize):
            if not op.source.strip() or op.source not in chunk_text or op.source == op.target:
                counts["normalize_not_in_chunk"] += 1
                continue
        elif isinstance(op, NoOp) and op.name in NOOP_NAMES:
            continue
        kept.append(op)
    return kept


def annotate_chunk(
    answers: Sequence[str],
    *,
    first_line: int,
    last_line: int,
    chunk_text: str,
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE,
) -> ChunkAnnotation:
    """Merge the answers of the prompt families for one chunk into one validated program.

    ``chunk_text`` is the chunk's raw text (lines ``first_line..last_line`` of the document,
    without the ``[NNN]`` prefixes); normalize sources are checked against it.
    """
    counts: Counter = Counter()
    ops: list[Operation] = []
    found_any = False
    for answer in answers:
        answer_ops = extract_operations(answer, counts)
        found_any = found_any or bool(answer_ops)
        ops.extend(answer_ops)
    if not found_any:  # no family answered with any call, not even skip_chunk(): no label
        counts["answers_without_program"] += len(answers)
        return ChunkAnnotation(None, [], 0.0, "no_program_found", counts)
    ops = validate_operations(ops, first_line=first_line, last_line=last_line, chunk_text=chunk_text, counts=counts)
    merged = merge_operations(ops)
    n_lines = last_line - first_line + 1
    removed = sum(op.end - op.start + 1 for op in merged if isinstance(op, RemoveLines))
    share = removed / n_lines if n_lines > 0 else 0.0
    if share > max_removed_share:
        return ChunkAnnotation(None, merged, share, "removed_share_above_max", counts)
    program = format_program(merged)
    check = parse_program(program, stage="chunk")  # the canonical text must read back exactly
    if check.errors or check.operations != merged:
        return ChunkAnnotation(None, merged, share, "program_does_not_round_trip", counts)
    return ChunkAnnotation(program, merged, share, None, counts)


__all__ = [
    "DEFAULT_MAX_REMOVED_SHARE",
    "ChunkAnnotation",
    "annotate_chunk",
    "extract_operations",
    "find_calls",
    "merge_operations",
    "validate_operations",
]
