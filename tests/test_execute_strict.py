"""Strict executor: every operation, bound and threshold, edge cases, and agreement with
the reference wherever both read a program the same way."""
from __future__ import annotations

import gzip
import json

import pytest

import prox
from conftest import BENCHMARKS, REFERENCE
from prox.executor import ExecOptions, execute
from prox.parse import parse_program
from prox.program import KeepDoc, NoOp, Normalize, Program, RemoveLines, line_ranges

VECTORS = REFERENCE / "executor-public.jsonl.gz"
LINES_DEV = BENCHMARKS / "lines-public-dev.jsonl.gz"

# 8 lines of 5 words each: 40 words
DOC = "\n".join(f"line{i} alpha beta gamma delta" for i in range(8))


def lines_of(text):
    return [line.split()[0] for line in text.split("\n")]


def test_remove_lines_is_zero_based_inclusive():
    res = execute(DOC, "remove_lines(line_start=1, line_end=2)")
    assert lines_of(res.text) == ["line0", "line3", "line4", "line5", "line6", "line7"]
    assert res.removed_ranges == [(1, 2)] and res.errors == [] and not res.dropped
    assert res.n_words_in == 40 and res.n_words_out == 30


def test_ranges_are_unioned_merged_and_sorted():
    prog = "remove_lines(5, 6)\nremove_lines(0, 0)\nremove_lines(1, 1)\nremove_lines(5, 5)\nremove_lines(start=3, end=3)"
    res = execute(DOC, prog)
    assert lines_of(res.text) == ["line2", "line4", "line7"]
    assert res.removed_ranges == [(0, 1), (3, 3), (5, 6)]
    assert len(res.operations) == 5


def test_first_and_last_lines_and_blank_lines():
    text = "\n" + DOC + "\n"
    res = execute(text, "remove_lines(0, 0)\nremove_lines(9, 9)")
    assert res.text == DOC
    res = execute(DOC, "remove_lines(7, 7)")
    assert res.text == DOC.rsplit("\n", 1)[0]


def test_normalize_is_global_and_runs_before_removals():
    res = execute(DOC, 'remove_lines(0, 0)\nnormalize(source_str="alpha", target_str="A")')
    assert res.text.count("A ") == 7 and "alpha" not in res.text
    assert lines_of(res.text)[0] == "line1"
    assert res.normalizations == [("alpha", "A")]


def test_normalize_chain_in_program_order():
    res = execute(DOC, 'normalize(source_str="alpha", target_str="beta")\nnormalize(source_str="beta", target_str="zeta")')
    assert "beta" not in res.text and res.text.count("zeta") == 16
    res = execute(DOC, 'normalize(source_str="beta", target_str="zeta")\nnormalize(source_str="alpha", target_str="beta")')
    assert res.text.count("zeta") == 8 and res.text.count("beta") == 8


def test_normalize_default_target_and_hostile_literals():
    text = DOC + '\nsee https://x.org/?a=1&b=(2), "quoted" it\'s'
    res = execute(text, 'normalize(source_str="https://x.org/?a=1&b=(2), ")')
    assert res.text.endswith('\nsee "quoted" it\'s')
    res = execute(text, "normalize(source_str='\"quoted\" it\\'s', target_str='Q')")
    assert res.text.endswith("(2), Q")


def test_noop_calls_change_nothing():
    res = execute(DOC, "```python\nskip_chunk()\nkeep_chunk()\nuntouch_doc()\nkeep_doc()\n```")
    assert res.text == DOC and res.errors == [] and not res.program_ignored
    assert res.operations == [NoOp("skip_chunk"), NoOp("keep_chunk"), NoOp("untouch_doc"), KeepDoc()]
    assert execute(DOC, "").text == DOC


def test_one_error_is_tolerated_two_ignore_the_program():
    res = execute(DOC, "remove_lines(0, 0)\nbogus()")
    assert len(res.errors) == 1 and not res.program_ignored and lines_of(res.text)[0] == "line1"
    res = execute(DOC, "remove_lines(0, 0)\nbogus()\nremove_lines(line_start=1)")
    assert len(res.errors) == 2 and res.program_ignored and res.text == DOC
    assert res.operations == [] and res.removed_ranges == []


def test_out_of_range_is_clipped_or_dropped_and_counted():
    res = execute(DOC, "remove_lines(6, 100)")
    assert lines_of(res.text) == [f"line{i}" for i in range(6)]
    assert res.removed_ranges == [(6, 7)] and "clipped" in res.errors[0].reason
    res = execute(DOC, "remove_lines(0, 0)\nremove_lines(8, 9)")
    assert lines_of(res.text)[0] == "line1" and "past the last line" in res.errors[0].reason
    assert res.errors[0].line == 2 and res.operations == [RemoveLines(0, 0)]
    res = execute(DOC, "remove_lines(8, 9)\nremove_lines(7, 12)")
    assert res.program_ignored and res.text == DOC and len(res.errors) == 2


def test_chunk_stage_drop_doc_is_an_error_not_a_drop():
    res = execute(DOC, "drop_doc()")
    assert not res.dropped and res.text == DOC and len(res.errors) == 1


def test_min_words_threshold():
    eleven = " ".join(f"w{i}" for i in range(11))
    assert not execute(eleven, "skip_chunk()").dropped
    res = execute(eleven + "\nnoise", "remove_lines(1, 1)")
    assert res.text == eleven and not res.dropped
    ten = " ".join(f"w{i}" for i in range(10))
    res = execute(ten + "\nnoise words", "remove_lines(1, 1)")
    assert res.dropped and res.drop_reason == "too_few_words" and res.text == ""
    res = execute(ten, "skip_chunk()")
    assert res.dropped and res.drop_reason == "too_few_words" and res.n_words_out == 10


def test_kept_ratio_threshold():
    text = "\n".join(f"w{i}" for i in range(400))  # 400 one-word lines
    res = execute(text, "remove_lines(0, 379)")  # 20 of 400 = 5 % left
    assert res.dropped and res.drop_reason == "low_kept_ratio"
    assert (res.n_words_in, res.n_words_out) == (400, 20)
    res = execute(text, "remove_lines(0, 378)")  # 21 left
    assert not res.dropped and res.n_words_out == 21


def test_kept_ratio_with_one_huge_word():
    # few words in many characters: the cheap bound is not conclusive, the exact count is
    text = "x" * 5000 + "\n" + "\n".join(f"w{i}" for i in range(300))
    res = execute(text, "remove_lines(1, 286)")  # 1 + 14 = 15 of 301 words: 4.98 %
    assert res.dropped and res.drop_reason == "low_kept_ratio"
    res = execute(text, "remove_lines(1, 284)")  # 17 of 301
    assert not res.dropped and res.text.startswith("x" * 5000)


def test_empty_and_whitespace_documents_are_dropped_not_crashed():
    for text in ("", " ", "\n\n", "\t\u3000\u2028"):
        for prog in ("", "skip_chunk()", "remove_lines(0, 0)", "garbage"):
            res = execute(text, prog)
            assert res.dropped and res.drop_reason == "too_few_words" and res.failed is None
            assert res.n_words_in == 0


def test_ignored_program_still_drops_a_short_document():
    res = execute("only four words here", "a()\nb()")
    assert res.program_ignored and res.dropped and res.drop_reason == "too_few_words"


def test_growth_bound_refuses_a_normalize():
    text = "a b " * 300 + "\n" + DOC
    res = execute(text, f'normalize(source_str="a", target_str="{"x" * 100}")')
    assert res.text == text and "grow" in res.errors[0].reason and res.normalizations == []
    res = execute(text, 'normalize(source_str="a", target_str="xy")')
    assert res.text.startswith("xy b ") and res.errors == []
    tight = ExecOptions(growth_factor=1.0, growth_slack_chars=0)
    res = execute(text, 'normalize(source_str="a", target_str="xy")', options=tight)
    assert res.text == text and len(res.errors) == 1


def test_options_are_configurable_and_validated():
    res = execute(DOC, "remove_lines(0, 5)", options=ExecOptions(min_words=9))
    assert not res.dropped and res.n_words_out == 10
    res = execute(DOC, "remove_lines(0, 5)", options=ExecOptions(min_words=9, drop_ratio=0.5))
    assert res.dropped and res.drop_reason == "low_kept_ratio"
    res = execute(DOC, "remove_lines(0, 0)\nfoo()", options=ExecOptions(max_errors=1))
    assert res.program_ignored and res.text == DOC
    res = execute(DOC, "remove_lines(0, 3)", options=ExecOptions(keep_ratio=0.6))
    assert res.program_ignored and res.text == DOC and not res.dropped
    for bad in ({"drop_ratio": 1.5}, {"min_words": -1}, {"max_errors": 0}, {"growth_factor": 0.5}):
        with pytest.raises(ValueError):
            ExecOptions(**bad)


def test_doc_stage():
    assert execute(DOC, "drop_doc()", stage="doc").drop_reason == "drop_doc"
    res = execute(DOC, "```python\ndrop_doc()\n```", stage="doc")
    assert res.dropped and res.text == ""
    for prog in ("keep_doc()", "", "untouch_doc()", "I think this is fine", "# drop it\nkeep_doc()"):
        res = execute(DOC, prog, stage="doc")
        assert not res.dropped and res.text == DOC, prog
    res = execute(DOC, "remove_lines(0, 1)", stage="doc")
    assert res.text == DOC and len(res.errors) == 1
    res = execute(DOC, "drop_doc()\nfoo()\nbar()", stage="doc")  # too many errors: ignored
    assert not res.dropped and res.program_ignored
    assert execute("", "keep_doc()", stage="doc").text == ""


def test_parsed_program_input_matches_text_input():
    prog = 'remove_lines(1, 2)\nnormalize(source_str="beta")'
    assert execute(DOC, parse_program(prog)).text == execute(DOC, prog).text
    res = execute(DOC, Program([RemoveLines(3, 1), Normalize("")], [], [1, 2]))
    assert res.program_ignored and len(res.errors) == 2
    res = execute(DOC, Program([RemoveLines(0, 0)]))  # lines not given
    assert lines_of(res.text)[0] == "line1"
    res = execute(DOC, Program([RemoveLines(6, 10**30)]))  # built in code: huge end clipped
    assert lines_of(res.text) == [f"line{i}" for i in range(6)] and "clipped" in res.errors[0].reason
    res = execute(DOC, Program([Normalize(b"x", "y"), RemoveLines("1", 2)]))
    assert res.program_ignored and len(res.errors) == 2


def test_summary_is_json_and_complete():
    res = execute(DOC, 'remove_lines(0, 0)\nnormalize(source_str="alpha", target_str="A")\nfoo()')
    summary = json.loads(json.dumps(res.summary()))
    assert summary["outcome"] == "kept" and summary["n_errors"] == 1
    assert summary["removed_ranges"] == [[0, 0]] and summary["normalizations"] == [["alpha", "A"]]
    assert summary["operations"][0] == {"op": "remove_lines", "start": 0, "end": 0}
    assert summary["n_words_in"] == 40 and summary["n_words_out"] == 35
    assert summary["errors"][0]["line"] == 3


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        execute(DOC, "", mode="fast")
    with pytest.raises(ValueError):
        execute(DOC, "", stage="page")
    with pytest.raises(TypeError):
        execute(DOC.encode(), "")
    with pytest.raises(TypeError):
        execute(DOC, ["remove_lines(0, 0)"])


def test_public_entry_points():
    assert prox.execute(DOC, "remove_lines(0, 0)").text == execute(DOC, "remove_lines(0, 0)").text
    assert prox.execute(DOC, "remove_lines(0, 0)").text == prox.execute(DOC, "remove_lines(0, 0)").text
    assert prox.parse_program("skip_chunk()").operations == [NoOp("skip_chunk")]


@pytest.mark.skipif(not VECTORS.exists(), reason=f"reference vectors not found at {VECTORS}")
def test_strict_agrees_with_reference_when_both_read_the_program_alike():
    checked = 0
    with gzip.open(VECTORS, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            d = rec["details"]
            if rec["stage"] != "chunk" or rec["expected_error"] or d["num_error_op"]:
                continue
            res = execute(rec["text"], rec["program"])
            if res.errors or [list(p) for p in res.normalizations] != d["normalization_pairs"]:
                continue
            if [list(r) for r in res.removed_ranges] != d["remove_operations"]:
                continue
            assert res.text == rec["expected_output"], rec["id"]
            assert res.drop_reason == {"drop_low_ratio": "low_kept_ratio", "drop_short": "too_few_words"}.get(d["branch"])
            checked += 1
    assert checked >= 300


@pytest.mark.skipif(not LINES_DEV.exists(), reason=f"benchmark pages not found at {LINES_DEV}")
def test_gold_noisy_line_programs_on_real_pages():
    with gzip.open(LINES_DEV, "rt", encoding="utf-8") as fh:
        recs = [json.loads(line) for _, line in zip(range(150), fh)]
    for rec in recs:
        text = rec["text"]
        prog = "\n".join(f"remove_lines(line_start={s}, line_end={e})" for s, e in line_ranges(rec["noisy_lines"]))
        res = execute(text, prog)
        ref = execute(text, prog, mode="reference")
        assert res.text == ref.text and res.errors == []
        noisy = set(rec["noisy_lines"])
        kept = [line for i, line in enumerate(text.split("\n")) if i not in noisy]
        if not res.dropped:
            assert res.text == "\n".join(kept)
            assert res.n_words_out == ref.n_words_out


def test_count_words_by_slices_is_exact(monkeypatch):
    import random

    import prox.executor.options as options

    monkeypatch.setattr(options, "WORD_COUNT_SLICE_CHARS", 7)  # many slice boundaries on short texts
    rng = random.Random(13)
    alphabet = ["a", "bc", " ", "\n", "\t", "\x1c", "\x85", "\u2028", "\u00a0", "\u3000", "\u200b", "é"]
    for _ in range(2000):
        text = "".join(rng.choices(alphabet, k=rng.randrange(0, 60)))
        assert options.count_words(text) == len(text.split()), repr(text)
