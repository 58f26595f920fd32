"""Reference mode against every public vector recorded from the ProX reference code."""
from __future__ import annotations

import gzip
import json
import time
from collections import Counter

import pytest

from conftest import REFERENCE
from prox.executor import DEFAULT_OPTIONS, ExecOptions, execute

VECTORS = REFERENCE / "executor-public.jsonl.gz"


def _load():
    if not VECTORS.exists():
        return []
    with gzip.open(VECTORS, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


RECORDS = _load()
needs_vectors = pytest.mark.skipif(not RECORDS, reason=f"reference vectors not found at {VECTORS}")


@needs_vectors
def test_vector_file_is_complete():
    assert len(RECORDS) == 1006
    stages = Counter(r["stage"] for r in RECORDS)
    assert stages == {"chunk": 921, "doc": 85}


@needs_vectors
@pytest.mark.parametrize("rec", RECORDS, ids=[r["id"] for r in RECORDS])
def test_reference_vector(rec):
    res = execute(rec["text"], rec["program"], stage=rec["stage"], mode="reference")
    if rec["expected_error"] is not None:
        assert res.failed is not None and res.failed.split(":")[0] == rec["expected_error"]
        assert res.text == "" and not res.dropped
    else:
        assert res.failed is None
        assert res.text == rec["expected_output"]
        if rec["details"] is not None:
            assert res.dropped == (rec["details"]["branch"] in ("drop_low_ratio", "drop_short"))
    d = rec["details"]
    if d is None:
        assert rec["stage"] == "doc"
        assert res.dropped == ("drop" in rec["program"].strip(" "))
        return
    got = res.details
    # every recorded field of the reference's internals
    assert got["num_error_op"] == d["num_error_op"] == len(res.errors)
    assert got["n_lines"] == d["n_lines"]
    assert got["removed_line_indices"] == d["removed_line_indices"]
    assert got["remove_operations"] == d["remove_operations"]
    assert [list(r) for r in res.removed_ranges] == d["remove_operations"]
    assert got["normalization_pairs"] == d["normalization_pairs"]
    assert [list(p) for p in res.normalizations] == d["normalization_pairs"]
    assert got["processed_text"] == d["processed_text"]
    assert got["n_words_text"] == d["n_words_text"] == res.n_words_in
    assert got["n_words_processed"] == d["n_words_processed"] == res.n_words_out
    assert got["branch"] == d["branch"]
    assert set(got) == set(d)
    # the branch and the result flags agree
    branch = d["branch"]
    assert res.program_ignored == (branch == "original_too_many_errors")
    assert res.drop_reason == {"drop_low_ratio": "low_kept_ratio", "drop_short": "too_few_words"}.get(branch)
    summary = res.summary()
    json.dumps(summary)
    assert summary["branch"] == branch
    assert summary["n_errors"] == d["num_error_op"]


@needs_vectors
def test_outcome_counts_match_readme():
    branches = Counter()
    for rec in RECORDS:
        if rec["stage"] != "chunk":
            continue
        res = execute(rec["text"], rec["program"], stage="chunk", mode="reference")
        branches[res.details["branch"] or "raised"] += 1
    assert branches == {"refined": 752, "original_too_many_errors": 92, "drop_low_ratio": 46,
                        "drop_short": 20, "raised": 11}


def test_reference_quirks_on_handwritten_cases():
    text = "\n".join(f"line {i} has some words in it" for i in range(6))
    # values are cut at the first ')' and ',' and split at '='
    res = execute(text, 'normalize(source_str="a=b", target_str="x")', mode="reference")
    assert res.normalizations == [("a", "x")] and res.errors == []
    # a missing ')' is an error, and the last character is dropped
    res = execute(text, "remove_lines(line_start=1, line_end=22", mode="reference")
    assert res.details["remove_operations"] == [[1, 2]] and len(res.errors) == 1
    # unknown lines are silently ignored; leading spaces make a line unknown
    res = execute(text, "foo()\n  remove_lines(line_start=0, line_end=0)", mode="reference")
    assert res.errors == [] and res.text == text
    # int() spellings the reference accepts
    res = execute(text, "remove_lines(start= +1_0, end=11)\nremove_lines(start=٣, end=3)", mode="reference")
    assert res.details["removed_line_indices"] == [3] and len(res.errors) == 1
    # all=True removes every line -> the document is dropped as too short
    res = execute(text, "remove_lines(all=True)", mode="reference")
    assert res.dropped and res.drop_reason == "low_kept_ratio"
    # " " as a 2-argument source is recorded but not applied; 1-argument is applied
    res = execute(text, 'normalize(source_str=" ", target_str="_")', mode="reference")
    assert res.text == text and res.normalizations == [(" ", "_")]
    # 0 words: the reference divides by zero -> a recorded failure, not an exception
    res = execute(" \n\t", "skip_chunk()", mode="reference")
    assert res.failed.startswith("ZeroDivisionError") and res.outcome == "failed"
    # doc stage: any "drop" substring drops
    assert execute("t", "# no dropping here", stage="doc", mode="reference").dropped
    assert not execute("t", "keep_doc()", stage="doc", mode="reference").dropped


def test_reference_growth_bound_fails_instead_of_exhausting_memory():
    # issue 13: this ran ~12 s and raised MemoryError (a 4 GB string)
    text = "a " * 200_000
    program = 'normalize(source_str="a", target_str="' + "b" * 20_000 + '")'
    started = time.perf_counter()
    res = execute(text, program, stage="chunk", mode="reference")
    assert time.perf_counter() - started < 1.0
    assert res.outcome == "failed" and res.text == "" and not res.dropped
    assert res.failed.startswith("growth_bound: the normalize on program line 1 would grow the document "
                                 "from 400,000 to 4,000,200,000 characters, past the bound of 800,000")
    assert res.summary()["outcome"] == "failed" and res.summary()["branch"] == "growth_bound"
    assert DEFAULT_OPTIONS.growth_limit(len(text)) == 800_000
    # strict mode refuses this program (its 20,000-character literal is over the parser's limit);
    # under that limit, the same named bound refuses the normalize in strict mode and fails reference mode
    assert execute(text, program).text == text
    program = 'normalize(source_str="a", target_str="' + "b" * 10_000 + '")'
    strict = execute(text, program)
    assert strict.text == text and "grow" in strict.errors[0].reason
    assert execute(text, program, mode="reference").failed.startswith("growth_bound:")


def test_reference_growth_within_the_bound_is_the_reference_replace():
    text = "\n".join(f"line {i} has a few words and an a" for i in range(400))
    # grows by 1 character per "a": well within 2 x the length -> exactly str.replace
    res = execute(text, 'normalize(source_str="a", target_str="aa")', mode="reference")
    assert res.failed is None and res.text == text.replace("a", "aa")
    # a later normalize is measured against the original length, after the earlier ones
    program = 'normalize(source_str="a", target_str="aa")\nnormalize(source_str="aa", target_str="' + "a" * 10 + '")'
    res = execute(text, program, mode="reference")
    grown = text.replace("a", "aa")
    assert len(grown) <= DEFAULT_OPTIONS.growth_limit(len(text)) < len(grown) + grown.count("aa") * 8
    assert res.failed.startswith("growth_bound: the normalize on program line 2")
    # the bound is configurable, as in strict mode
    tight = ExecOptions(growth_factor=1.0, growth_slack_chars=0)
    res = execute(text, 'normalize(source_str="a", target_str="aa")', mode="reference", options=tight)
    assert res.failed.startswith("growth_bound:")
    # shrinking or same-length replacements are never bounded
    res = execute(text, 'normalize(source_str="a", target_str="b")', mode="reference", options=tight)
    assert res.failed is None and res.text == text.replace("a", "b")
