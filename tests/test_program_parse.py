"""Parser: every accepted form, every error kind, bounds, and canonical round-trips."""
from __future__ import annotations

import pytest

from prox.parse import ParseLimits, parse_program
from prox.program import (
    DropDoc,
    KeepDoc,
    NoOp,
    Normalize,
    Program,
    ProgramError,
    RemoveLines,
    format_program,
    quote_string,
)


def ops(text, stage="chunk"):
    prog = parse_program(text, stage)
    assert prog.errors == [], prog.errors
    return prog.operations


def errs(text, stage="chunk", **limits):
    prog = parse_program(text, stage, limits=ParseLimits(**limits) if limits else None)
    assert prog.operations == [] or prog.errors, prog
    return [e.reason for e in prog.errors]


@pytest.mark.parametrize("line", [
    "remove_lines(line_start=3, line_end=7)",
    "remove_lines(start=3, end=7)",
    "remove_lines(line_start = 3 , line_end = 7 )",
    "remove_lines(3, 7)",
    "remove_lines(3, line_end=7)",
    "remove_lines(line_end=7, line_start=3)",
    "remove_lines(line_start=+3, line_end=0007)",
    "remove_lines(line_start=3, line_end=7,)",
    "  remove_lines(line_start=3, line_end=7)\r",
    "\tremove_lines(line_start=3, line_end=7);  # the footer",
])
def test_remove_lines_forms(line):
    assert ops(line) == [RemoveLines(3, 7)]


@pytest.mark.parametrize("line,expected", [
    ('normalize(source_str="foo", target_str="bar")', Normalize("foo", "bar")),
    ("normalize(source_str='foo', target_str='bar')", Normalize("foo", "bar")),
    ('normalize(source_str="foo")', Normalize("foo", "")),
    ('normalize("foo", "bar")', Normalize("foo", "bar")),
    ('normalize(source="foo", target="")', Normalize("foo", "")),
    ('normalize(target_str="b", source_str="a")', Normalize("a", "b")),
    # literals may contain anything: = , ) ( quotes, '#'
    ('normalize(source_str="https://x.org/?a=1&b=2", target_str="")', Normalize("https://x.org/?a=1&b=2", "")),
    ('normalize(source_str="a, b), (c", target_str="(c)")', Normalize("a, b), (c", "(c)")),
    ('normalize(source_str="say \\"hi\\"", target_str=\'it\\\'s\')', Normalize('say "hi"', "it's")),
    ("normalize(source_str='He said \"x\"')", Normalize('He said "x"', "")),
    ('normalize(source_str="# not a comment")  # a comment', Normalize("# not a comment", "")),
    ('normalize(source_str="\\t\\x41\\u00e9\\U0001F600\\\\d\\101")', Normalize("\tA\u00e9\U0001F600\\d" + "A", "")),
    ('normalize(source_str="\\q")', Normalize("\\q", "")),  # unknown escape keeps its backslash
    ('normalize(source_str="naïve — ok", target_str="naive - ok")', Normalize("naïve — ok", "naive - ok")),
])
def test_normalize_forms(line, expected):
    assert ops(line) == [expected]


def test_noops_fences_comments_blank_lines():
    text = "```python\n# remove the nav\n\nskip_chunk()\nkeep_chunk()\nuntouch_doc()\n```\n~~~\n"
    assert ops(text) == [NoOp("skip_chunk"), NoOp("keep_chunk"), NoOp("untouch_doc")]
    assert ops("keep_doc()") == [KeepDoc()]


def test_doc_stage():
    assert ops("keep_doc()", "doc") == [KeepDoc()]
    assert ops("```python\ndrop_doc()\n```", "doc") == [DropDoc()]
    assert ops("untouch_doc()", "doc") == [NoOp("untouch_doc")]
    prog = parse_program("remove_lines(line_start=0, line_end=1)\nnormalize(source_str='a')", "doc")
    assert prog.operations == [] and len(prog.errors) == 2
    assert all("doc stage" in e.reason for e in prog.errors)


def test_chunk_stage_refuses_drop_doc():
    prog = parse_program("drop_doc()", "chunk")
    assert prog.operations == [] and "chunk stage" in prog.errors[0].reason
    assert parse_program("drop_doc()\nremove_lines(0, 1)", "any").operations == [DropDoc(), RemoveLines(0, 1)]


def test_error_lines_are_one_based_and_carry_text():
    prog = parse_program("skip_chunk()\n\nfoo(1)\nremove_lines(line_start=2, line_end=3)")
    assert prog.errors == [ProgramError(3, "unknown operation 'foo'", "foo(1)")]
    assert prog.operations == [NoOp("skip_chunk"), RemoveLines(2, 3)] and prog.lines == [1, 4]


@pytest.mark.parametrize("line,fragment", [
    ("remove_lines(line_start=5, line_end=2)", "after"),
    ("remove_lines(line_start=-1, line_end=2)", "negative"),
    ("remove_lines(line_start=1)", "needs"),
    ("remove_lines(line_start=1, line_end=2, line_end=3)", "repeated"),
    ("remove_lines(line_start=1, stop=2)", "unknown argument"),
    ("remove_lines(1, 2, 3)", "at most 2"),
    ("remove_lines(line_start='1', line_end='2')", "integers"),
    ("remove_lines(line_start=1.5, line_end=2)", "malformed number"),
    ("remove_lines(line_start=0x1, line_end=2)", "malformed number"),
    ("remove_lines(line_start=1_0, line_end=20)", "malformed number"),
    ("remove_lines(line_start=١, line_end=2)", "expected a literal"),
    ("remove_lines(line_start=True, line_end=2)", "integers"),
    ("remove_lines(line_start=1+1, line_end=2)", "expected ','"),
    ("remove_lines(line_start=1, line_end=1234567890123)", "digits"),
    ("remove_lines(all=True)", "all"),
    ("remove_lines(line_start=1, line_end=2", "not closed"),
    ("remove_lines line_start=1, line_end=2)", "not followed by '('"),
    ("remove_lines[line_start=1, line_end=2]", "not followed by '('"),
    ("remove_lines(line_start=1, line_end=2) and more", "unexpected text"),
    ("remove_lines(line_start=1, line_end=2); remove_lines(line_start=3, line_end=4)", "unexpected text"),
    ("remove_lines(line_start=x, line_end=2)", "found name"),
    ("remove_lines(line_start==1, line_end=2)", "expected a literal"),
    ("Remove_Lines(line_start=1, line_end=2)", "unknown operation"),
    ("remove_lines_all(line_start=1, line_end=2)", "unknown operation"),
    ("normalize(source_str=\"abc)", "unterminated"),
    ("normalize(source_str='abc\")", "unterminated"),
    ('normalize(source_str="")', "empty source"),
    ('normalize(source_str=" ", target_str="_")', "refused"),
    ("normalize(' ')", "refused"),
    ("normalize()", "string arguments"),
    ('normalize(source_str=3)', "string arguments"),
    ('normalize(source_str="a", target_str="b", count=2)', "unknown argument"),
    ('normalize(source_str="a\\nb")', "line breaks"),
    ('normalize(source_str="a", target_str="\\n")', "line breaks"),
    ('normalize(source_str="\\x4g")', "truncated"),
    ('normalize(source_str="\\ud800")', "surrogate"),
    ('normalize(source_str="\\U00110000")', "code point"),
    ('normalize(source_str=f"{x}")', "found name"),
    ("skip_chunk(1)", "no arguments"),
    ("__import__('os').system('echo hi')", "unknown operation"),
    ("eval('1')", "unknown operation"),
    ("Program:", "not followed by '('"),
    ("Here is the program you asked for", "not followed by '('"),
    ("[remove_lines(line_start=1, line_end=2)]", "not a call"),
    ("- remove_lines(line_start=1, line_end=2)", "not a call"),
])
def test_malformed_lines_are_errors(line, fragment):
    prog = parse_program(line)
    assert prog.operations == []
    assert len(prog.errors) == 1 and fragment in prog.errors[0].reason, prog.errors
    assert prog.errors[0].line == 1 and not prog.errors[0].fatal


def test_program_size_bound_is_fatal():
    text = "skip_chunk()\n" * 100
    prog = parse_program(text, limits=ParseLimits(max_program_chars=len(text) - 1))
    assert prog.operations == [] and prog.fatal and "longer than" in prog.errors[0].reason


def test_operation_count_bound():
    text = "\n".join(f"remove_lines(line_start={i}, line_end={i})" for i in range(50))
    prog = parse_program(text, limits=ParseLimits(max_operations=10))
    assert len(prog.operations) == 10 and prog.fatal and "more than 10" in prog.errors[-1].reason


def test_literal_length_bound():
    long = "x" * 101
    prog = parse_program(f'normalize(source_str="{long}")', limits=ParseLimits(max_literal_chars=100))
    assert prog.operations == [] and "longer than 100" in prog.errors[0].reason
    assert parse_program(f'normalize(source_str="{long}")').operations == [Normalize(long, "")]


def test_parse_time_bound():
    text = "\n".join(["skip_chunk()"] * 3000)
    prog = parse_program(text, limits=ParseLimits(max_parse_seconds=0.0))
    assert prog.fatal and "time limit" in prog.errors[-1].reason
    assert len(prog.operations) == 255


def test_bad_arguments():
    with pytest.raises(ValueError):
        parse_program("skip_chunk()", stage="document")
    with pytest.raises(TypeError):
        parse_program(b"skip_chunk()")


@pytest.mark.parametrize("value", [
    "", "plain", 'quo"te', "it's", "back\\slash", "tab\there", "cr\rhere", "\x00\x85\u2028\u200b",
    "emoji 👩‍👩‍👧 flag 🇫🇷", "a=b,c)(d", "\\x41 not an escape", "'\"'\"",
])
def test_quote_string_round_trips(value):
    if value:
        assert ops(f"normalize(source_str={quote_string(value)})") == [Normalize(value, "")]
    assert ops(f"normalize(source_str=\"x\", target_str={quote_string(value)})") == [Normalize("x", value)]


def test_format_program_round_trips():
    program = [RemoveLines(0, 3), Normalize('a "b", c=d)', "e"), Normalize("x"), NoOp("skip_chunk"),
               KeepDoc(), DropDoc()]
    text = format_program(program)
    assert text.splitlines()[0] == "remove_lines(line_start=0, line_end=3)"
    assert parse_program(text, "any").operations == program
    assert format_program(Program(program)) == text == str(Program(program))
    with pytest.raises(TypeError):
        format_program(["remove_lines(0, 1)"])


def test_line_ranges_merge_runs_and_bridge_only_given_lines():
    from prox.program import line_ranges

    assert line_ranges([]) == []
    assert line_ranges([5, 3, 4, 4, 9]) == [(3, 5), (9, 9)]
    # 6 and 7 are bridgeable (blank): 5 and 8 join; 10 is not bridgeable, so 9 and 11 stay apart
    assert line_ranges([5, 8, 9, 11], bridgeable={6, 7}) == [(5, 9), (11, 11)]
    # a bridgeable line never starts or ends a range by itself
    assert line_ranges([2], bridgeable={0, 1, 3}) == [(2, 2)]


def test_blank_lines_container_bridges_only_whitespace_lines():
    from prox.program import BlankLines, line_ranges

    lines = ["nav", "", "  \t", "nav", "content", "", "footer"]
    blank = BlankLines(lines)
    assert [i in blank for i in range(len(lines))] == [False, True, True, False, False, True, False]
    assert -1 not in blank and 99 not in blank and "1" not in blank
    assert line_ranges([0, 3, 6], blank) == [(0, 3), (6, 6)]
