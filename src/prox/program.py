"""The ProX program language: operations, errors, and canonical formatting.

A program is what a refining model writes for one document (doc stage) or one chunk
(chunk stage). Model output is untrusted text; `prox.parse.parse_program` turns it into
the values below, and `prox.executor.execute` applies them. Nothing here runs model text.

Doc stage:   ``keep_doc()`` / ``drop_doc()``
Chunk stage: ``remove_lines(line_start=A, line_end=B)`` (0-based, inclusive, numbered as
             in the prompt), ``normalize(source_str="..", target_str="..")`` (global
             replace, ``target_str`` optional) and the no-op calls ``skip_chunk()``,
             ``keep_chunk()``, ``untouch_doc()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Container, Iterable, Union

# The two stages a program is written for (doc stage first), in the order they run.
STAGES = ("doc", "chunk")
# Calls that do nothing (a chunk / document the model leaves untouched).
NOOP_NAMES = ("skip_chunk", "keep_chunk", "untouch_doc")


@dataclass(frozen=True, slots=True)
class KeepDoc:
    """``keep_doc()``: keep the document (doc stage)."""


@dataclass(frozen=True, slots=True)
class DropDoc:
    """``drop_doc()``: drop the whole document (doc stage)."""


@dataclass(frozen=True, slots=True)
class NoOp:
    """``skip_chunk()`` / ``keep_chunk()`` / ``untouch_doc()``: change nothing."""

    name: str


@dataclass(frozen=True, slots=True)
class RemoveLines:
    """``remove_lines(line_start=start, line_end=end)``: 0-based, inclusive line range."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Normalize:
    """``normalize(source_str=source, target_str=target)``: replace every occurrence."""

    source: str
    target: str = ""


Operation = Union[KeepDoc, DropDoc, NoOp, RemoveLines, Normalize]


@dataclass(frozen=True, slots=True)
class ProgramError:
    """One problem with a program.

    ``line`` is the 1-based line of the program text the problem comes from (0 when it
    concerns the whole program). ``fatal`` errors (size bounds) make the executor ignore
    the whole program whatever the error count.
    """

    line: int
    reason: str
    text: str = ""
    fatal: bool = False

    def to_dict(self) -> dict:
        out = {"line": self.line, "reason": self.reason}
        if self.text:
            out["text"] = self.text
        if self.fatal:
            out["fatal"] = True
        return out


@dataclass(slots=True)
class Program:
    """Parsed program: operations in program order, errors, and each operation's line."""

    operations: list[Operation] = field(default_factory=list)
    errors: list[ProgramError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based program line of each operation

    @property
    def fatal(self) -> bool:
        return any(e.fatal for e in self.errors)

    def __str__(self) -> str:
        return format_program(self.operations)


class BlankLines:
    """The blank (whitespace-only) lines of a document, as a container for ``line_ranges``.

    Checked lazily: only the lines in gaps between two ranges are ever asked about, which
    keeps range merging off the hot path of refiners that emit a program per document.
    """

    __slots__ = ("lines",)

    def __init__(self, lines: "list[str] | tuple[str, ...]") -> None:
        self.lines = lines

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and 0 <= index < len(self.lines) and not self.lines[index].strip()


def line_ranges(lines: Iterable[int], bridgeable: Container[int] = ()) -> list[tuple[int, int]]:
    """The inclusive ranges (``remove_lines`` arguments) covering the given line indices.

    Two runs separated only by ``bridgeable`` lines (typically blank lines) join into one
    range, so a removed block does not leave its separators behind; a range never starts or
    ends on a bridged line that is not itself in ``lines``.
    """
    ranges: list[list[int]] = []
    for i in sorted(set(lines)):
        if ranges:
            end = ranges[-1][1]
            if i == end + 1 or all(j in bridgeable for j in range(end + 1, i)):
                ranges[-1][1] = i
                continue
        ranges.append([i, i])
    return [(a, b) for a, b in ranges]


def quote_string(value: str) -> str:
    """Double-quoted literal that `prox.parse` reads back to exactly ``value``."""
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and ch != "\x85":
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_operation(op: Operation) -> str:
    """Canonical text of one operation."""
    if isinstance(op, RemoveLines):
        return f"remove_lines(line_start={op.start}, line_end={op.end})"
    if isinstance(op, Normalize):
        if op.target:
            return f"normalize(source_str={quote_string(op.source)}, target_str={quote_string(op.target)})"
        return f"normalize(source_str={quote_string(op.source)})"
    if isinstance(op, KeepDoc):
        return "keep_doc()"
    if isinstance(op, DropDoc):
        return "drop_doc()"
    if isinstance(op, NoOp):
        return f"{op.name}()"
    raise TypeError(f"not a prox operation: {op!r}")


def format_program(ops: Iterable[Operation] | Program) -> str:
    """Canonical program text, one call per line; `parse_program` reads it back."""
    if isinstance(ops, Program):
        ops = ops.operations
    return "\n".join(format_operation(op) for op in ops)


def operation_to_dict(op: Operation) -> dict:
    """JSON-able form of an operation (for execution summaries)."""
    if isinstance(op, RemoveLines):
        return {"op": "remove_lines", "start": op.start, "end": op.end}
    if isinstance(op, Normalize):
        return {"op": "normalize", "source": op.source, "target": op.target}
    if isinstance(op, KeepDoc):
        return {"op": "keep_doc"}
    if isinstance(op, DropDoc):
        return {"op": "drop_doc"}
    if isinstance(op, NoOp):
        return {"op": op.name}
    raise TypeError(f"not a prox operation: {op!r}")


__all__ = [
    "BlankLines",
    "line_ranges",
    "NOOP_NAMES",
    "STAGES",
    "KeepDoc",
    "DropDoc",
    "NoOp",
    "RemoveLines",
    "Normalize",
    "Operation",
    "ProgramError",
    "Program",
    "quote_string",
    "format_operation",
    "format_program",
    "operation_to_dict",
]
