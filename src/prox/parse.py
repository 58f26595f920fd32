"""Strict parser: model output text -> `Program` (typed operations + errors).

Model output is untrusted. It is read by a small hand-written tokenizer (compiled
regexes over one call per line); it is never passed to ``eval``, ``exec``, ``compile``
or ``ast.literal_eval``. Anything that is not a well-formed call of a known operation
becomes a `ProgramError` (with its 1-based program line), never code.

Accepted per line (after stripping whitespace):
  * blank lines, ``# comment`` lines, fence lines starting with ```` ``` ```` or ``~~~``;
  * one call ``name(args)``, optionally followed by ``;`` and/or a ``# comment``.
Arguments are keyword (``line_start=3``) or positional; values are ASCII integers
(``[+-]?[0-9]+``), single- or double-quoted string literals with Python escapes, or
``True``/``False``.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from prox.program import (
    NOOP_NAMES,
    STAGES,
    DropDoc,
    KeepDoc,
    NoOp,
    Normalize,
    Operation,
    Program,
    ProgramError,
    RemoveLines,
)

PARSE_STAGES = (*STAGES, "any")  # "any": every operation accepted, whatever its stage


@dataclass(frozen=True)
class ParseLimits:
    """Hard bounds on what the parser accepts (a model can emit anything)."""

    max_program_chars: int = 262_144  # far above any real program (chunk outputs are ~1-2k chars)
    max_operations: int = 4_096  # more calls than lines in any chunk; the rest is refused
    max_literal_chars: int = 16_384  # a normalize literal longer than this is refused
    max_int_digits: int = 12  # line numbers beyond 10^12 are nonsense (and int() is never called)
    max_parse_seconds: float = 1.0  # wall-clock budget; checked every 256 program lines


DEFAULT_LIMITS = ParseLimits()

# --- lexical pieces -------------------------------------------------------------------
_WS = re.compile(r"[ \t\f\v]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?[0-9]+")
_DQ = re.compile(r'"((?:[^"\\\n]|\\.)*)"', re.S)
_SQ = re.compile(r"'((?:[^'\\\n]|\\.)*)'", re.S)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {
    "\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r",
    "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\n": "",
}

# Fast path: one regex for the overwhelmingly common line shapes (calls with plain
# arguments, blank, comment and fence lines). Anything else takes the general path.
_FAST_LINE = re.compile(
    r"[ \t]*(?:"
    r"remove_lines\((?:line_)?start=([0-9]{1,12}), ?(?:line_)?end=([0-9]{1,12})\)"
    r'|normalize\(source_str="((?! ")[^"\\\n]{1,256})"(?:, ?target_str="([^"\\\n]{0,256})")?\)'
    r"|(keep_doc|drop_doc|skip_chunk|keep_chunk|untouch_doc)\(\)"
    r"|(#.*|```.*|~~~.*|)"
    r")[ \t\r]*"
)

_REMOVE_KEYS = {"line_start": 0, "start": 0, "line_end": 1, "end": 1}
_NORMALIZE_KEYS = {"source_str": 0, "source": 0, "target_str": 1, "target": 1}
_KNOWN = ("remove_lines", "normalize", "keep_doc", "drop_doc") + NOOP_NAMES


class _Bad(Exception):
    """A malformed call; the message is the error reason."""


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body

    def repl(m: re.Match) -> str:
        esc = m.group(1)
        head = esc[0]
        if head in "xuU" and len(esc) == 1:
            raise _Bad(f"truncated \\{head} escape")
        if head in "xuU":
            code = int(esc[1:], 16)
            if code > 0x10FFFF:
                raise _Bad(f"escape \\{esc} is not a code point")
            if 0xD800 <= code <= 0xDFFF:
                raise _Bad(f"escape \\{esc} is a lone surrogate")
            return chr(code)
        if head in "01234567":
            return chr(int(esc, 8))
        simple = _SIMPLE_ESCAPES.get(esc)
        if simple is not None:
            return simple
        return "\\" + esc  # unknown escapes keep their backslash, as in Python

    return _ESCAPE.sub(repl, body)


def _read_value(s: str, pos: int, limits: ParseLimits):
    """Read one literal at ``pos``; return (value, new_pos)."""
    ch = s[pos] if pos < len(s) else ""
    if ch == '"' or ch == "'":
        m = (_DQ if ch == '"' else _SQ).match(s, pos)
        if m is None:
            raise _Bad("unterminated string literal")
        body = m.group(1)
        if len(body) > limits.max_literal_chars:
            raise _Bad(f"string literal longer than {limits.max_literal_chars} characters")
        return _unescape(body), m.end()
    m = _INT.match(s, pos)
    if m is not None:
        text = m.group()
        digits = text.lstrip("+-")
        if len(digits) > limits.max_int_digits:
            raise _Bad(f"integer with more than {limits.max_int_digits} digits")
        end = m.end()
        if end < len(s) and (s[end].isalnum() or s[end] in "._"):
            raise _Bad(f"malformed number at column {pos + 1}")
        value = 0
        for d in digits:  # plain ASCII digits; no int() on model text
            value = value * 10 + (ord(d) - 48)
        return (-value if text[0] == "-" else value), end
    m = _NAME.match(s, pos)
    if m is not None and m.group() in ("True", "False"):
        return m.group() == "True", m.end()
    if m is not None:
        raise _Bad(f"expected a literal, found name {m.group()!r}")
    if not ch:
        raise _Bad("call is not closed with ')'")
    raise _Bad(f"expected a literal at column {pos + 1}, found {ch!r}")


def _parse_call(s: str, limits: ParseLimits):
    """Parse ``name(args)`` [;] [# comment]; return (name, positional, keywords)."""
    m = _NAME.match(s)
    if m is None:
        raise _Bad("not a call")
    name = m.group()
    pos = _WS.match(s, m.end()).end()
    if name not in _KNOWN and pos < len(s) and s[pos] == "(":
        raise _Bad(f"unknown operation {name!r}")
    if pos >= len(s) or s[pos] != "(":
        raise _Bad(f"{name!r} is not followed by '('")
    pos += 1
    positional: list = []
    keywords: dict = {}
    pos = _WS.match(s, pos).end()
    if pos < len(s) and s[pos] == ")":
        pos += 1
    else:
        while True:
            pos = _WS.match(s, pos).end()
            key = None
            km = _NAME.match(s, pos)
            if km is not None and km.group() not in ("True", "False"):
                after = _WS.match(s, km.end()).end()
                if after < len(s) and s[after] == "=" and s[after + 1: after + 2] != "=":
                    key = km.group()
                    pos = _WS.match(s, after + 1).end()
            value, pos = _read_value(s, pos, limits)
            if key is None:
                if keywords:
                    raise _Bad("positional argument after keyword argument")
                positional.append(value)
            else:
                if key in keywords:
                    raise _Bad(f"repeated keyword {key!r}")
                keywords[key] = value
            pos = _WS.match(s, pos).end()
            if pos >= len(s):
                raise _Bad("call is not closed with ')'")
            if s[pos] == ")":
                pos += 1
                break
            if s[pos] != ",":
                raise _Bad(f"expected ',' or ')' at column {pos + 1}, found {s[pos]!r}")
            pos = _WS.match(s, pos + 1).end()
            if pos < len(s) and s[pos] == ")":  # trailing comma
                pos += 1
                break
    rest = s[pos:].strip()
    if rest.startswith(";"):
        rest = rest[1:].strip()
    if rest and not rest.startswith("#"):
        raise _Bad(f"unexpected text after the call: {rest[:40]!r}")
    return name, positional, keywords


def _bind(args: list, keywords: dict, keys: dict, name: str) -> list:
    """Map positional + keyword arguments onto two slots by ``keys`` (alias -> slot)."""
    slots = [None, None]
    if len(args) > 2:
        raise _Bad(f"{name}() takes at most 2 arguments")
    for i, v in enumerate(args):
        slots[i] = v
    for key, v in keywords.items():
        slot = keys.get(key)
        if slot is None:
            raise _Bad(f"{name}() got an unknown argument {key!r}")
        if slots[slot] is not None:
            raise _Bad(f"{name}() got argument {key!r} twice")
        slots[slot] = v
    return slots


def _build(name: str, args: list, keywords: dict) -> Operation:
    if name == "remove_lines":
        if "all" in keywords:
            raise _Bad("remove_lines(all=...) is not supported; remove a line range")
        start, end = _bind(args, keywords, _REMOVE_KEYS, name)
        if start is None or end is None:
            raise _Bad("remove_lines() needs line_start and line_end")
        if type(start) is not int or type(end) is not int:
            raise _Bad("remove_lines() arguments must be integers")
        if start < 0 or end < 0:
            raise _Bad(f"negative line number in remove_lines({start}, {end})")
        if start > end:
            raise _Bad(f"line_start {start} is after line_end {end}")
        return RemoveLines(start, end)
    if name == "normalize":
        source, target = _bind(args, keywords, _NORMALIZE_KEYS, name)
        if target is None:
            target = ""
        if not isinstance(source, str) or not isinstance(target, str):
            raise _Bad("normalize() needs string arguments source_str (and target_str)")
        if source == "":
            raise _Bad("normalize() with an empty source_str")
        if source == " ":
            # the reference skips this one (it would glue every word together)
            raise _Bad('normalize(source_str=" ") is refused')
        if "\n" in source or "\n" in target:
            raise _Bad("normalize() may not add or remove line breaks")
        return Normalize(source, target)
    if name in ("keep_doc", "drop_doc") or name in NOOP_NAMES:
        if args or keywords:
            raise _Bad(f"{name}() takes no arguments")
        if name == "keep_doc":
            return KeepDoc()
        if name == "drop_doc":
            return DropDoc()
        return NoOp(name)
    raise _Bad(f"unknown operation {name!r}")


def _stage_error(op: Operation, stage: str) -> str | None:
    if stage == "doc" and isinstance(op, (RemoveLines, Normalize)):
        return f"{type(op).__name__} is a chunk-stage operation, not allowed at the doc stage"
    if stage == "chunk" and isinstance(op, DropDoc):
        return "drop_doc() is a doc-stage operation, not allowed at the chunk stage"
    return None


_KEEP = KeepDoc()
_DROP = DropDoc()
_NOOPS = {n: NoOp(n) for n in NOOP_NAMES}
_FAST_OPS = {"keep_doc": _KEEP, "drop_doc": _DROP, **_NOOPS}


def parse_program(text: str, stage: str = "chunk", *, limits: ParseLimits | None = None) -> Program:
    """Parse model output into a `Program`. Never raises on any string input.

    ``stage`` is ``"chunk"`` (drop_doc() is an error), ``"doc"`` (remove_lines/normalize
    are errors) or ``"any"`` (everything accepted).
    """
    if stage not in PARSE_STAGES:
        raise ValueError(f"stage must be one of {PARSE_STAGES}, not {stage!r}")
    if not isinstance(text, str):
        raise TypeError(f"program must be str, not {type(text).__name__}")
    limits = limits or DEFAULT_LIMITS
    ops: list[Operation] = []
    errors: list[ProgramError] = []
    op_lines: list[int] = []
    if len(text) > limits.max_program_chars:
        errors.append(ProgramError(0, f"program longer than {limits.max_program_chars} characters", fatal=True))
        return Program(ops, errors, op_lines)
    deadline = time.perf_counter() + limits.max_parse_seconds
    fast = _FAST_LINE.fullmatch
    chunk_ok, doc_ok = stage != "doc", stage != "chunk"
    for lineno, raw in enumerate(text.split("\n"), 1):
        if not (lineno & 255) and time.perf_counter() > deadline:
            errors.append(ProgramError(lineno, "parse time limit exceeded; rest ignored", fatal=True))
            break
        m = fast(raw)
        if m is not None:
            kind = m.lastindex
            if kind == 6:  # blank, comment or fence
                continue
            if len(ops) >= limits.max_operations:
                errors.append(ProgramError(lineno, f"more than {limits.max_operations} operations; rest ignored", fatal=True))
                break
            if kind == 2:
                start, end = int(m.group(1)), int(m.group(2))  # regex-checked ASCII digits
                if start <= end:
                    if chunk_ok:
                        ops.append(RemoveLines(start, end))
                        op_lines.append(lineno)
                    else:
                        errors.append(ProgramError(lineno, _stage_error(RemoveLines(start, end), stage), raw.strip()[:200]))
                    continue
            elif kind == 5:
                op = _FAST_OPS[m.group(5)]
                if doc_ok or op is not _DROP:
                    ops.append(op)
                    op_lines.append(lineno)
                else:
                    errors.append(ProgramError(lineno, _stage_error(op, stage), raw.strip()[:200]))
                continue
            else:  # normalize with plain literals (kind 3 or 4)
                source, target = m.group(3), m.group(4) or ""
                if len(source) <= limits.max_literal_chars and len(target) <= limits.max_literal_chars:
                    op = Normalize(source, target)
                    if chunk_ok:
                        ops.append(op)
                        op_lines.append(lineno)
                    else:
                        errors.append(ProgramError(lineno, _stage_error(op, stage), raw.strip()[:200]))
                    continue
                # too long: the general path reports it
        s = raw.strip()
        if not s or s[0] == "#" or s.startswith("```") or s.startswith("~~~"):
            continue
        if len(ops) >= limits.max_operations:
            errors.append(ProgramError(lineno, f"more than {limits.max_operations} operations; rest ignored", fatal=True))
            break
        try:
            name, args, keywords = _parse_call(s, limits)
            op = _build(name, args, keywords)
        except _Bad as exc:
            errors.append(ProgramError(lineno, str(exc), s[:200]))
            continue
        reason = _stage_error(op, stage)
        if reason:
            errors.append(ProgramError(lineno, reason, s[:200]))
            continue
        ops.append(op)
        op_lines.append(lineno)
    return Program(ops, errors, op_lines)


__all__ = ["ParseLimits", "DEFAULT_LIMITS", "PARSE_STAGES", "parse_program"]
