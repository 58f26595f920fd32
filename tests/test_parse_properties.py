"""Property tests: arbitrary and hostile model output never runs as code, never crashes
the parser or the executors, terminates fast, and strict execution matches a naive oracle."""
from __future__ import annotations

import builtins
import time
from contextlib import contextmanager
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox.executor import execute
from prox.parse import parse_program
from prox.program import (
    DropDoc,
    KeepDoc,
    NoOp,
    Normalize,
    Program,
    ProgramError,
    RemoveLines,
    format_program,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    "remove_lines", "normalize", "keep_doc", "drop_doc", "skip_chunk", "keep_chunk", "untouch_doc",
    "(", ")", "(", ")", ",", "=", "==", ";", ":", "#", " ", "\t", "\n", "\r\n", "\\", '"', "'", '"""',
    "line_start", "line_end", "start", "end", "source_str", "target_str", "all=True", "True",
    "0", "1", "12", "-3", "+4", "1_0", "0x1f", "1.5", "٣", "999999999999999", "9" * 40,
    "__import__('os').system('touch /tmp/prox-pwned')", "eval(", "exec(", "compile(", "open(",
    "lambda: 0", "f\"{x}\"", "```python", "```", "~~~", "\\x41", "\\u00e9", "\\U0001F600", "\\ud800",
    "\\N{BULLET}", "\\", "\u2028", "\x00", "\x85", "\u200b", "😀", "ǅ",
]
hostile = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)
any_program = st.one_of(st.text(max_size=400), hostile)


@contextmanager
def no_code_execution():
    def refuse(*args, **kwargs):
        raise AssertionError("model text reached eval/exec/compile")

    with mock.patch.object(builtins, "eval", refuse), mock.patch.object(builtins, "exec", refuse), \
            mock.patch.object(builtins, "compile", refuse):
        yield


def check_program(prog: Program, text: str) -> None:
    n_lines = text.count("\n") + 1
    assert isinstance(prog, Program)
    assert len(prog.operations) == len(prog.lines)
    for op, line in zip(prog.operations, prog.lines):
        assert isinstance(op, (KeepDoc, DropDoc, NoOp, RemoveLines, Normalize))
        assert 1 <= line <= n_lines
        if isinstance(op, RemoveLines):
            assert 0 <= op.start <= op.end
        if isinstance(op, Normalize):
            assert op.source not in ("", " ") and "\n" not in op.source + op.target
    for err in prog.errors:
        assert isinstance(err, ProgramError) and 0 <= err.line <= n_lines and err.reason


@SETTINGS
@given(program=any_program, stage=st.sampled_from(["chunk", "doc", "any"]))
def test_parser_total_on_any_input(program, stage):
    with no_code_execution():
        t0 = time.perf_counter()
        prog = parse_program(program, stage)
        assert time.perf_counter() - t0 < 1.0
    check_program(prog, program)
    if stage == "chunk":
        assert not any(isinstance(op, DropDoc) for op in prog.operations)
    if stage == "doc":
        assert not any(isinstance(op, (RemoveLines, Normalize)) for op in prog.operations)


@settings(max_examples=20, deadline=None)
@given(unit=hostile, reps=st.integers(100, 2000))
def test_parser_terminates_fast_on_long_repetitions(unit, reps):
    program = (unit + "\n") * reps
    program = program[:200_000]
    with no_code_execution():
        t0 = time.perf_counter()
        prog = parse_program(program)
        assert time.perf_counter() - t0 < 2.0
    check_program(prog, program)


literal = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1, max_size=30)
operation = st.one_of(
    st.builds(RemoveLines, st.integers(0, 50), st.integers(0, 50)).filter(lambda op: op.start <= op.end),
    st.builds(Normalize, literal.filter(lambda s: s != " "), st.one_of(st.just(""), literal)),
    st.sampled_from([KeepDoc(), DropDoc(), NoOp("skip_chunk"), NoOp("keep_chunk"), NoOp("untouch_doc")]),
)


@SETTINGS
@given(ops=st.lists(operation, max_size=8))
def test_format_then_parse_round_trips(ops):
    text = format_program(ops)
    with no_code_execution():
        prog = parse_program(text, "any")
    assert prog.errors == [] and prog.operations == ops


doc_line = st.lists(st.sampled_from(list("ab c\t\u00a0\u3000xyz.=,()'\"") + ["\r", "\u2028", "word "]),
                    max_size=20).map("".join)
document = st.lists(doc_line, max_size=30).map("\n".join)


@SETTINGS
@given(text=st.one_of(document, st.text(max_size=300)), program=any_program,
       stage=st.sampled_from(["chunk", "doc"]), mode=st.sampled_from(["strict", "reference"]))
def test_executors_total_on_any_input(text, program, stage, mode):
    with no_code_execution():
        res = execute(text, program, stage=stage, mode=mode)
    assert res.outcome in ("kept", "dropped", "failed")
    if res.failed is not None:
        assert mode == "reference" and res.failed.startswith("ZeroDivisionError") and not text.split()
    if res.dropped or res.failed:
        assert res.text == ""
    if res.program_ignored and not res.dropped:
        assert res.text == text
    if mode == "strict" and stage == "chunk" and not res.dropped and not res.normalizations:
        lines = text.split("\n")
        removed = {i for s, e in res.removed_ranges for i in range(s, e + 1)}
        assert res.text == "\n".join(line for i, line in enumerate(lines) if i not in removed)
    assert res.n_words_in == len(text.split())
    summary = res.summary()
    assert summary["n_errors"] == len(res.errors)


def oracle(text, ops):
    """Naive strict semantics: all normalizations, then remove line sets, then thresholds."""
    errors = 0
    cur = text
    for op in ops:
        if isinstance(op, Normalize):
            cur = cur.replace(op.source, op.target)
    lines = cur.split("\n")
    removed = set()
    for op in ops:
        if isinstance(op, RemoveLines):
            if op.start >= len(lines):
                errors += 1
                continue
            if op.end >= len(lines):
                errors += 1
            removed.update(range(op.start, min(op.end, len(lines) - 1) + 1))
    if errors >= 2:
        out, ignored = text, True
    else:
        out, ignored = "\n".join(line for i, line in enumerate(lines) if i not in removed), False
    n_in, n_out = len(text.split()), len(out.split())
    if n_in and not ignored and n_out / n_in <= 1 - 0.95:
        return "", "low_kept_ratio"
    if n_out <= 10:
        return "", "too_few_words"
    return out, None


small_literal = st.text(st.sampled_from(list("abc xyz.")), min_size=1, max_size=4).filter(lambda s: s != " ")
chunk_op = st.one_of(
    st.builds(RemoveLines, st.integers(0, 40), st.integers(0, 45)).filter(lambda op: op.start <= op.end),
    st.builds(Normalize, small_literal, st.text(st.sampled_from(list("ab xyz")), max_size=6)),
    st.just(NoOp("skip_chunk")),
)
word_doc = st.lists(st.text(st.sampled_from(list("abcxyz  .")), max_size=40), min_size=1, max_size=40).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=word_doc, ops=st.lists(chunk_op, max_size=6))
def test_strict_matches_naive_oracle(text, ops):
    program = format_program(ops)
    res = execute(text, program)
    want_text, want_reason = oracle(text, ops)
    assert (res.text, res.drop_reason) == (want_text, want_reason)
    assert execute(text, Program(list(ops))).text == want_text
