"""Numbered lines and token-budget chunks: the chunk stage's view of a document (pure functions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# ProX apply_chunk_refining.py: trunc_text(text, tokenizer, max_token=1500, ...).
CHUNK_TOKEN_BUDGET = 1500
# ProX apply_chunk_refining.py: trunc_text(..., max_digits=3) -> "[000]" (a minimum width).
LINE_NUMBER_DIGITS = 3
# ProX apply_chunk_refining.py: the user message wraps the numbered chunk in these markers.
DOC_OPEN, DOC_CLOSE = "[doc]", "[/doc]"


@dataclass
class Chunk:
    """A run of whole lines of one document, numbered across the whole document."""

    first_line: int  # 0-based index of the first line (lines = text.split("\n"))
    last_line: int  # 0-based, inclusive
    text: str  # the numbered lines, joined with "\n" (the reference `trunc_text` element)
    budget_tokens: int  # sum of the per-line token counts (what the budget was checked against)


def number_line(index: int, line: str, digits: int = LINE_NUMBER_DIGITS) -> str:
    """``[007]line``: the reference's zero-padded, minimum-width line prefix."""
    return f"[{index:0{digits}d}]{line}"


def numbered_lines(text: str, digits: int = LINE_NUMBER_DIGITS) -> list[str]:
    """Every line of ``text`` (split on "\\n" only, as the reference does), numbered from 0."""
    return [number_line(i, line, digits) for i, line in enumerate(text.split("\n"))]


def greedy_chunks(counts: Sequence[int], budget: int) -> list[tuple[int, int, int]]:
    """Greedy line-granular chunking: ``(first_line, last_line, budget_tokens)`` per chunk.

    A line joins the current chunk while the running total stays within ``budget``; otherwise
    the current chunk is closed and the line starts the next one. A line that alone exceeds the
    budget becomes a chunk of its own (the reference sends it over budget rather than cut it).
    """
    out: list[tuple[int, int, int]] = []
    start, total = -1, 0
    for i, count in enumerate(counts):
        if start >= 0 and total + count <= budget:
            total += count
            continue
        if start < 0 and count <= budget:
            start, total = i, count
            continue
        if start >= 0:
            out.append((start, i - 1, total))
        if count > budget:
            out.append((i, i, count))
            start, total = -1, 0
        else:
            start, total = i, count
    if start >= 0:
        out.append((start, len(counts) - 1, total))
    return out


def chunks_of(text: str, line_counts: Sequence[int], budget: int, digits: int = LINE_NUMBER_DIGITS) -> list[Chunk]:
    """The chunks of ``text`` given each numbered line's token count."""
    lines = numbered_lines(text, digits) if text else []
    return [Chunk(a, b, "\n".join(lines[a : b + 1]), n) for a, b, n in greedy_chunks(line_counts, budget)]


def wrap_chunk(chunk_text: str) -> str:
    """The chunk-stage user message: ``[doc]\\n<numbered lines>\\n[/doc]``."""
    return f"{DOC_OPEN}\n{chunk_text}\n{DOC_CLOSE}"
