"""Strict executor: the paper's semantics on properly parsed programs, tuned for speed.

Chunk stage, in this order:
1. the program is ignored (original text kept) if it has a fatal error or
   ``>= max_errors`` errors (parse errors + execution errors below);
2. every ``normalize`` is a global replace on the whole document, in program order,
   before any removal (a replacement that would grow the document past the growth
   bound is refused and counted as an error);
3. ``remove_lines`` ranges (0-based, inclusive, as numbered in the prompt) are unioned;
   a range starting past the last line is an error and dropped, one ending past it is
   clipped and counted as an error (as the reference does);
4. the document is dropped when ``<= (1 - drop_ratio)`` of its words remain
   (``low_kept_ratio``) or when ``<= min_words`` words remain (``too_few_words``; also an
   empty or whitespace-only document).

Doc stage: ``drop_doc()`` drops (``drop_doc``); anything else keeps the document.
"""
from __future__ import annotations

from prox.executor.options import DEFAULT_OPTIONS, ExecOptions, count_words, has_words
from prox.executor.result import ExecutionResult
from prox.parse import _stage_error, parse_program
from prox.program import DropDoc, Normalize, Program, ProgramError, RemoveLines


def _checked(program: str | Program, stage: str, options: ExecOptions) -> Program:
    if isinstance(program, str):
        return parse_program(program, stage, limits=options.limits)
    if not isinstance(program, Program):
        raise TypeError(f"program must be str or Program, not {type(program).__name__}")
    # A Program built elsewhere: refuse operations that do not belong to this stage.
    ops, lines, errors, bad = [], [], list(program.errors), False
    for i, op in enumerate(program.operations):
        line = program.lines[i] if i < len(program.lines) else 0
        reason = _stage_error(op, stage)
        if reason is None and stage == "chunk":
            if type(op) is RemoveLines and not (type(op.start) is int and type(op.end) is int
                                                and 0 <= op.start <= op.end):
                reason = f"invalid line range {op.start!r}-{op.end!r}"
            elif type(op) is Normalize and not (isinstance(op.source, str) and isinstance(op.target, str)):
                reason = "normalize() arguments must be strings"
            elif type(op) is Normalize and (op.source in ("", " ") or "\n" in op.source or "\n" in op.target):
                reason = "normalize() with an empty or single-space source, or a line break"
        if reason:
            errors.append(ProgramError(line, reason))
            bad = True
        else:
            ops.append(op)
            lines.append(line)
    if not bad and len(program.lines) == len(program.operations):
        return program
    return Program(ops, errors, lines)


def execute_doc(text: str, program: str | Program, options: ExecOptions = DEFAULT_OPTIONS) -> ExecutionResult:
    prog = _checked(program, "doc", options)
    errors = prog.errors
    ignored = prog.fatal or len(errors) >= options.max_errors
    if not ignored:
        for op in prog.operations:
            if type(op) is DropDoc:
                return ExecutionResult("", True, "drop_doc", None, False, list(prog.operations),
                                       errors=errors, stage="doc", mode="strict",
                                       source_in=text, source_out=text)
    return ExecutionResult(text, False, None, None, ignored, [] if ignored else list(prog.operations),
                           errors=errors, stage="doc", mode="strict", source_in=text, source_out=text)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ranges.sort()
    merged = []
    ps, pe = ranges[0]
    for s, e in ranges[1:]:
        if s <= pe + 1:
            if e > pe:
                pe = e
        else:
            merged.append((ps, pe))
            ps, pe = s, e
    merged.append((ps, pe))
    return merged


def execute_chunk(text: str, program: str | Program, options: ExecOptions = DEFAULT_OPTIONS) -> ExecutionResult:
    prog = _checked(program, "chunk", options)
    ops = prog.operations
    errors = list(prog.errors)
    max_errors = options.max_errors
    ignored = prog.fatal or len(errors) >= max_errors
    out = text
    applied: list = []
    norms: list[tuple[str, str]] = []
    merged: list[tuple[int, int]] = []
    slack = 0  # upper bound on words the normalizations removed (see _decide)
    lines: list[str] = []
    if not ignored and ops:
        cur = text
        ranges = []  # (start, end, op index)
        refused = None
        limit = options.growth_limit(len(text))
        for i, op in enumerate(ops):
            cls = type(op)
            if cls is RemoveLines:
                ranges.append((op.start, op.end, i))
            elif cls is Normalize:
                src, tgt = op.source, op.target
                grow = len(tgt) - len(src)
                if grow > 0:
                    count = cur.count(src)
                    if count and len(cur) + count * grow > limit:
                        errors.append(ProgramError(prog.lines[i], "normalize would grow the document past the bound"))
                        refused = refused or set()
                        refused.add(i)
                        continue
                new = cur.replace(src, tgt)
                if new is not cur:
                    hits = (len(new) - len(cur)) // grow if grow else cur.count(src)
                    # one replacement removes at most words(src) + 2 words (two joins may merge)
                    slack += hits * (count_words(src) + 2)
                    cur = new
                norms.append((src, tgt))
        n_lines = -1  # unknown: more lines than any range reaches
        if ranges:
            reach = min(max(e for _, e, _ in ranges), len(cur)) + 1  # never more lines than chars + 1
            lines = cur.split("\n", reach)  # lines[reach], if present, is the rest of the text
            if len(lines) <= reach:
                n_lines = len(lines)
            clipped = []
            for start, end, i in ranges:
                if n_lines >= 0:
                    if start >= n_lines:
                        errors.append(ProgramError(prog.lines[i], f"remove_lines({start}, {end}) starts past the last line {n_lines - 1}"))
                        refused = refused or set()
                        refused.add(i)
                        continue
                    if end >= n_lines:
                        errors.append(ProgramError(prog.lines[i], f"remove_lines({start}, {end}) clipped to the last line {n_lines - 1}"))
                        end = n_lines - 1
                clipped.append((start, end))
            if clipped:
                merged = _merge(clipped)
        if len(errors) >= max_errors:
            ignored = True
            norms = []
            merged = []
        else:
            applied = [op for i, op in enumerate(ops) if i not in refused] if refused else list(ops)
            if merged:
                kept: list[str] = []
                a = 0  # first line of the current kept block
                for s, e in merged:
                    if s > a:
                        kept += lines[a:s]
                    a = e + 1
                kept += lines[a:]
                out = "\n".join(kept)
            else:
                out = cur
    result = ExecutionResult(out, False, None, None, ignored, applied, merged, norms, errors,
                             "chunk", "strict", source_in=text, source_out=out)
    _decide(result, text, out, lines, merged, slack, options)
    return result


def _decide(result: ExecutionResult, text: str, out: str, lines: list[str],
            merged: list[tuple[int, int]], slack: int, options: ExecOptions) -> None:
    """The keep/drop decision, counting as few words as it can.

    Words never span a line break, so words(normalized) = n_out + words(removed lines),
    and n_in <= words(normalized) + slack. Hence ``n_out > r / (1 - r) * (removed + slack)``
    proves ``n_out > r * n_in``: the kept ratio is above the drop threshold, read from
    the first few words of ``out``. Otherwise both texts are counted exactly.
    """
    need = options.min_words + 1
    if out is text:  # nothing changed: the kept ratio is 1
        if not has_words(out, need):
            result.text, result.dropped, result.drop_reason = "", True, "too_few_words"
        return
    keep_max = 1.0 - options.drop_ratio
    r = max(keep_max, options.keep_ratio)
    if r < 1.0:
        removed = sum(count_words("\n".join(lines[s: e + 1])) for s, e in merged)
        if has_words(out, max(int(r / (1.0 - r) * (removed + slack)) + 2, need)):
            return
    n_in, n_out = count_words(text), count_words(out)
    result.words_in, result.words_out = n_in, n_out
    if n_in and n_out / n_in <= keep_max:
        result.text, result.dropped, result.drop_reason = "", True, "low_kept_ratio"
    elif n_out <= options.min_words:
        result.text, result.dropped, result.drop_reason = "", True, "too_few_words"
    elif n_in and n_out / n_in < options.keep_ratio:
        result.text, result.program_ignored = text, True


def execute_strict(text: str, program: str | Program, stage: str = "chunk",
                   options: ExecOptions = DEFAULT_OPTIONS) -> ExecutionResult:
    if stage == "chunk":
        return execute_chunk(text, program, options)
    if stage == "doc":
        return execute_doc(text, program, options)
    raise ValueError(f"stage must be 'doc' or 'chunk', not {stage!r}")
