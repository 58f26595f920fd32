"""From line/doc predictions to ProX program text (pure functions)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from prox.program import DropDoc, KeepDoc, NoOp, RemoveLines, format_program

# What a clean chunk's program says (the ProX chunk model writes ``skip_chunk()``).
CLEAN_CHUNK = NoOp("skip_chunk")


def noisy_ranges(lines: Sequence[str], noisy: np.ndarray, *, bridge_blank: bool = True) -> list[tuple[int, int]]:
    """Merge noisy line indices into inclusive ranges.

    With ``bridge_blank``, blank lines lying between two noisy lines join their range,
    so a removed block does not leave its separators behind.
    """
    ranges: list[tuple[int, int]] = []
    start = end = -1
    for i in np.flatnonzero(noisy).tolist():
        if start >= 0 and (i == end + 1 or (bridge_blank and all(not lines[j].strip() for j in range(end + 1, i)))):
            end = i
            continue
        if start >= 0:
            ranges.append((start, end))
        start = end = i
    if start >= 0:
        ranges.append((start, end))
    return ranges


def chunk_program(lines: Sequence[str], noisy: np.ndarray) -> str:
    ranges = noisy_ranges(lines, noisy)
    if not ranges:
        return format_program([CLEAN_CHUNK])
    return format_program([RemoveLines(a, b) for a, b in ranges])


def doc_program(keep: bool) -> str:
    return format_program([KeepDoc() if keep else DropDoc()])
