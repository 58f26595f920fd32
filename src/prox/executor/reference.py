"""Reference executor: byte-identical to the ProX reference implementation.

Re-implements (in our own code) ``utils/chunk_utils.execute_meta_operations`` and
``utils/doc_utils.execute_meta_operations`` of GAIR-NLP/ProX @ b3fcbb2, quirks included:
each program line is an "operation" (no stripping), arguments are found by slicing at
the first ``(`` / ``)`` and splitting on ``,`` and ``=``, values are ``int(...)`` or
``.strip('"')``, unknown lines are silently ignored, and a document of 0 words raises
``ZeroDivisionError`` (reported here as ``failed``, never raised). One departure: a
``normalize`` that would grow the document past the growth bound (``ExecOptions.growth_limit``,
shared with strict mode) is not applied; the result is ``failed`` (``growth_bound: ...``).

``int()`` is Python's string-to-integer conversion, used only to reproduce the
reference's number parsing (it accepts spaces, ``+``, ``_`` and non-ASCII digits); it
does not evaluate code. Only the in-range part of each ``range(start, end + 1)`` is
materialised: the lines removed are the same.
"""
from __future__ import annotations

from prox.executor.options import DEFAULT_OPTIONS, ExecOptions
from prox.executor.result import ExecutionResult
from prox.program import DropDoc, Normalize, Program, ProgramError, RemoveLines, format_program


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # ProX merge_intervals: stable sort by start; merge when cur.start <= prev.end + 1.
    if not intervals:
        return []
    intervals = sorted(intervals, key=lambda iv: iv[0])
    merged = [intervals[0]]
    for cur in intervals[1:]:
        prev = merged[-1]
        if cur[0] <= prev[1] + 1:
            merged[-1] = (prev[0], max(prev[1], cur[1]))
        else:
            merged.append(cur)
    return merged


def _args(op: str, lineno: int, errors: list[ProgramError]) -> list[str] | None:
    """The reference's argument slicing; None when there is no '(' (one error)."""
    lp = op.find("(")
    if lp < 0:
        errors.append(ProgramError(lineno, "no '(' (reference)", op[:200]))
        return None
    rp = op.find(")")
    if rp < 0:
        errors.append(ProgramError(lineno, "no ')' (reference; last character dropped)", op[:200]))
        rp = -1
    return op[lp + 1: rp].split(",")


def _growth_failure(text: str, lineno: int, size: int, grown: int, limit: float, options: ExecOptions,
                    applied: list, pairs: list[tuple[str, str]], errors: list[ProgramError]) -> ExecutionResult:
    """A normalize that would grow the document past the growth bound: a failed result.

    The reference would build the grown string (and can run out of memory doing so); the
    bound is strict mode's (``ExecOptions.growth_limit``), checked before replacing.
    """
    failed = (f"growth_bound: the normalize on program line {lineno} would grow the document from "
              f"{size:,} to {grown:,} characters, past the bound of {int(limit):,} "
              f"(growth_factor={options.growth_factor:g}, growth_slack_chars={options.growth_slack_chars})")
    details = {"num_error_op": len(errors), "normalization_pairs": [list(p) for p in pairs], "branch": "growth_bound"}
    return ExecutionResult("", False, None, failed, False, applied, [], pairs, errors, "chunk", "reference",
                           words_out=0, details=details, source_in=text)


def execute_reference_chunk(text: str, program: str, options: ExecOptions = DEFAULT_OPTIONS) -> ExecutionResult:
    errors: list[ProgramError] = []
    intervals: list[tuple[int, int]] = []
    pairs: list[tuple[str, str]] = []
    applied: list = []
    n_lines = text.count("\n") + 1  # == len(text.split("\n")); normalize never changes it
    remove = bytearray(n_lines)
    remove_all = False
    cur = text
    limit = options.growth_limit(len(text))
    for lineno, op in enumerate(program.strip(" ").split("\n"), 1):
        if op.startswith("remove_lines"):
            if "all=True" in op:
                remove_all = True
                continue
            params = _args(op, lineno, errors)
            if params is None:
                continue
            try:
                start = int(params[0].split("=")[1])
                end = int(params[1].split("=")[1])
            except (IndexError, ValueError) as exc:
                errors.append(ProgramError(lineno, f"bad line numbers (reference): {type(exc).__name__}", op[:200]))
                continue
            intervals.append((start, end))
            applied.append(RemoveLines(start, end))
            lo, hi = max(start, 0), min(end, n_lines - 1)
            if lo <= hi:
                remove[lo: hi + 1] = b"\x01" * (hi - lo + 1)
        elif op.startswith("normalize"):
            params = _args(op, lineno, errors)
            if params is None:
                continue
            if len(params) == 1:
                parts = params[0].split("=")
                if len(parts) < 2:
                    errors.append(ProgramError(lineno, "no '=' in the argument (reference)", op[:200]))
                    continue
                source = parts[1].strip('"')
                cur = cur.replace(source, "")
                pairs.append((source, ""))
                applied.append(Normalize(source, ""))
            elif len(params) == 2:
                a, b = params[0].split("="), params[1].split("=")
                if len(a) < 2 or len(b) < 2:
                    errors.append(ProgramError(lineno, "no '=' in an argument (reference)", op[:200]))
                    continue
                source, target = a[1].strip('"'), b[1].strip('"')
                if source != " " and source != "":
                    grow = len(target) - len(source)
                    if grow > 0:
                        hits = cur.count(source)  # measured before replacing: the bound costs one scan
                        if hits and len(cur) + hits * grow > limit:
                            return _growth_failure(text, lineno, len(cur), len(cur) + hits * grow, limit,
                                                   options, applied, pairs, errors)
                    cur = cur.replace(source, target)
                pairs.append((source, target))
                applied.append(Normalize(source, target))
            # 3 or more arguments: silently nothing (reference)
    lines = cur.split("\n")
    if remove_all:
        removed = list(range(n_lines))
        processed = ""  # every line removed: "\n".join([])
    else:
        removed = [i for i in range(n_lines) if remove[i]] if intervals else []
        if removed:
            processed = "\n".join([line for line, r in zip(lines, remove) if not r])
        else:
            processed = cur
    remove_operations: list[tuple[int, int]] = []
    for start, end in _merge(intervals):
        if start >= n_lines:
            errors.append(ProgramError(0, f"range {start}-{end} starts past the last line (reference)"))
            continue
        if end >= n_lines:
            errors.append(ProgramError(0, f"range {start}-{end} clipped to the last line (reference)"))
            end = n_lines - 1
        remove_operations.append((start, end))
    n_proc = len(processed.split())
    n_text = len(text.split())
    n_err = len(errors)
    details = {
        "num_error_op": n_err,
        "n_lines": n_lines,
        "removed_line_indices": removed,
        "remove_operations": [list(r) for r in remove_operations],
        "normalization_pairs": [list(p) for p in pairs],
        "processed_text": processed,
        "n_words_text": n_text,
        "n_words_processed": n_proc,
        "branch": None,
    }
    result = ExecutionResult("", False, None, None, False, applied, remove_operations, pairs, errors,
                             "chunk", "reference", n_text, n_proc, details)
    if n_text == 0:
        result.failed = "ZeroDivisionError: division by zero"
        return result
    ratio = n_proc / n_text
    if ratio <= 1 - options.drop_ratio and n_err < options.max_errors:
        branch, result.dropped, result.drop_reason = "drop_low_ratio", True, "low_kept_ratio"
    elif n_proc <= options.min_words:
        branch, result.dropped, result.drop_reason = "drop_short", True, "too_few_words"
    elif ratio >= options.keep_ratio and n_err < options.max_errors:
        branch, result.text = "refined", processed
    else:
        branch, result.text, result.program_ignored = "original_too_many_errors", text, True
    details["branch"] = branch
    return result


def execute_reference_doc(text: str, program: str) -> ExecutionResult:
    # ProX utils/doc_utils.execute_meta_operations: any "drop" substring drops.
    drop = "drop" in program.strip(" ")
    if drop:
        return ExecutionResult("", True, "drop_doc", None, False, [DropDoc()], stage="doc",
                               mode="reference", source_in=text, source_out=text)
    return ExecutionResult(text, False, None, None, False, [], stage="doc", mode="reference",
                           source_in=text, source_out=text)


def execute_reference(text: str, program: str | Program, stage: str = "chunk",
                      options: ExecOptions = DEFAULT_OPTIONS) -> ExecutionResult:
    if isinstance(program, Program):
        program = format_program(program)
    if not isinstance(program, str):
        raise TypeError(f"program must be str or Program, not {type(program).__name__}")
    if stage == "chunk":
        return execute_reference_chunk(text, program, options)
    if stage == "doc":
        return execute_reference_doc(text, program)
    raise ValueError(f"stage must be 'doc' or 'chunk', not {stage!r}")
