"""SFT targets straight from human gold labels (no teacher).

Chunk stage (`lines-public*.jsonl.gz` rows): per chunk, the gold ``noisy_lines`` become
``remove_lines`` calls with global (document) line numbers; a chunk with no noisy line
gets ``skip_chunk()``. Doc stage (`docs-public.jsonl.gz` rows): ``keep`` becomes
``keep_doc()`` / ``drop_doc()``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from prox.program import NoOp, Operation, RemoveLines, format_program, line_ranges

SKIP_CHUNK = NoOp("skip_chunk")


def noisy_runs(
    noisy: Iterable[int], first_line: int, last_line: int, bridgeable: Iterable[int] = ()
) -> list[tuple[int, int]]:
    """Maximal runs of noisy lines inside ``first_line..last_line`` (inclusive).

    Two runs separated only by ``bridgeable`` lines (blank lines, never scored) are joined
    into one ``remove_lines`` call: the program gets shorter and no labelled line changes
    side. A run never starts or ends on a bridged line. (Uncertain non-blank lines are not
    bridged: in partly labelled sources most of the page is uncertain.)
    """
    return line_ranges((i for i in noisy if first_line <= i <= last_line), set(bridgeable))


def chunk_gold_program(
    noisy: Iterable[int], first_line: int, last_line: int, bridgeable: Iterable[int] = ()
) -> str:
    ops: list[Operation] = [RemoveLines(a, b) for a, b in noisy_runs(noisy, first_line, last_line, bridgeable)]
    return format_program(ops or [SKIP_CHUNK])


def doc_gold_program(keep: bool) -> str:
    return "keep_doc()" if keep else "drop_doc()"


def chunk_programs_for_row(text: str, noisy_lines: Iterable[int], chunks: Sequence) -> list[str]:
    """One gold program per chunk of a line-labelled document (``chunks`` from the renderer)."""
    noisy = list(noisy_lines)
    blank = [i for i, line in enumerate(text.split("\n")) if not line.strip()]
    return [chunk_gold_program(noisy, c.first_line, c.last_line, blank) for c in chunks]


__all__ = ["noisy_runs", "chunk_gold_program", "doc_gold_program", "chunk_programs_for_row"]
