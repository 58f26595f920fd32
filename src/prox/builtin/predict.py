"""From line/doc predictions to ProX program text (pure functions)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from prox.program import BlankLines, DropDoc, KeepDoc, NoOp, RemoveLines, format_program, line_ranges

# What a clean chunk's program says (the ProX chunk model writes ``skip_chunk()``).
CLEAN_CHUNK = NoOp("skip_chunk")


def noisy_ranges(lines: Sequence[str], noisy: np.ndarray, *, bridge_blank: bool = True) -> list[tuple[int, int]]:
    """Merge noisy line indices into inclusive ranges (blank lines between two noisy lines join them)."""
    return line_ranges(np.flatnonzero(noisy).tolist(), BlankLines(lines) if bridge_blank else ())


def chunk_program(lines: Sequence[str], noisy: np.ndarray) -> str:
    ranges = noisy_ranges(lines, noisy)
    if not ranges:
        return format_program([CLEAN_CHUNK])
    return format_program([RemoveLines(a, b) for a, b in ranges])


def doc_program(keep: bool) -> str:
    return format_program([KeepDoc() if keep else DropDoc()])
