"""From line/doc predictions to ProX program text (pure functions)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from prox.builtin.fragments import FragmentMatcher, normalizations
from prox.program import BlankLines, DropDoc, KeepDoc, NoOp, Normalize, RemoveLines, format_program, line_ranges

# What a clean chunk's program says (the ProX chunk model writes ``skip_chunk()``).
CLEAN_CHUNK = NoOp("skip_chunk")


def noisy_ranges(lines: Sequence[str], noisy: np.ndarray, *, bridge_blank: bool = True) -> list[tuple[int, int]]:
    """Merge noisy line indices into inclusive ranges (blank lines between two noisy lines join them)."""
    return line_ranges(np.flatnonzero(noisy).tolist(), BlankLines(lines) if bridge_blank else ())


def removed_mask(n_lines: int, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(n_lines, dtype=bool)
    for a, b in ranges:
        out[a:b + 1] = True
    return out


def chunk_program(lines: Sequence[str], noisy: np.ndarray, *, protected: np.ndarray | None = None,
                  matcher: FragmentMatcher | None = None) -> str:
    """The merged ranges of the noisy lines; with ``matcher``, first the safe ``normalize`` cuts of
    the lines kept (`fragments.normalizations`; ``protected`` lines are never touched)."""
    ranges = noisy_ranges(lines, noisy)
    ops: list = []
    if matcher is not None:
        keep_out = np.zeros(len(lines), dtype=bool) if protected is None else protected
        cuts = normalizations(lines, removed_mask(len(lines), ranges), keep_out, matcher)
        ops += [Normalize(source, target) for source, target in cuts]
    ops += [RemoveLines(a, b) for a, b in ranges]
    return format_program(ops or [CLEAN_CHUNK])


def doc_program(keep: bool) -> str:
    return format_program([KeepDoc() if keep else DropDoc()])
