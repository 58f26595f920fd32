"""Rule-baseline refiners: programs that parse, execute, and agree with datatrove's filters."""
from __future__ import annotations

import gzip
import json

import pytest

from conftest import BENCHMARKS
from prox.executor import execute
from prox.refiners import get_refiner, join_chunk_programs
from prox.refiners.rules import c4_line_reason, removed_ranges

LINES = BENCHMARKS / "lines-public-train.jsonl.gz"

DOC = "\n".join([
    "Home | News | Contact",                                              # 0 no terminal punct
    "The council approved the new budget on Tuesday after a long debate.",  # 1 kept
    "",                                                                    # 2 blank
    "Please enable JavaScript to view the comments powered by Disqus.",   # 3 javascript
    "Members said the plan would fund schools, roads and the library.",   # 4 kept
    "This site uses cookies. Read our cookie policy to learn more.",      # 5 policy
    "Share this",                                                          # 6 no punct
    "",                                                                    # 7 blank
    "Related:",                                                            # 8 no punct
    "Officials expect the first projects to start next spring.",          # 9 kept
])


@pytest.fixture(scope="module")
def dclm_texts():
    if not LINES.exists():
        pytest.skip(f"shared benchmarks not found at {LINES}")
    out = []
    with gzip.open(LINES, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["view"] == "dclm":
                out.append(row["text"])
            if len(out) >= 40:
                break
    return out


def test_c4_line_program_removes_exactly_the_c4_lines_and_executes():
    refiner = get_refiner("rules:c4")
    (program,) = refiner.chunk_programs([DOC])[0]
    assert program.splitlines() == [
        "remove_lines(line_start=0, line_end=0)",
        "remove_lines(line_start=3, line_end=3)",
        "remove_lines(line_start=5, line_end=8)",  # blank line 7 bridged between removed 6 and 8
    ]
    result = execute(DOC, join_chunk_programs([program]), stage="chunk")
    assert not result.dropped
    kept = [line for line in result.text.split("\n") if line.strip()]
    assert kept == [DOC.split("\n")[i] for i in (1, 4, 9)]


def test_clean_document_gets_skip_chunk_and_keep_doc():
    clean = "The first sentence is fine.\nThe second one is also complete and long enough."
    refiner = get_refiner("rules:c4")
    assert refiner.chunk_programs([clean]) == [["skip_chunk()"]]
    assert execute(clean, "skip_chunk()", stage="chunk").text == clean


def test_gopher_drops_short_doc_with_reason_comment():
    refiner = get_refiner("rules:gopher")
    (prog,) = refiner.doc_programs(["Too short to be a web page."])
    assert prog.splitlines() == ["# gopher_short_doc", "drop_doc()"]
    result = execute("Too short to be a web page.", prog, stage="doc")
    assert result.dropped
    # gopher/fineweb have no line rules: chunk programs are no-ops
    assert refiner.chunk_programs([DOC]) == [["skip_chunk()"]]


def test_spec_parsing_and_names():
    assert get_refiner("rules:gopher+c4+fineweb").name == "rules:gopher+c4+fineweb"
    with pytest.raises(ValueError, match="unknown rule set"):
        get_refiner("rules:gopher+nope")
    with pytest.raises(ValueError, match="needs components"):
        get_refiner("rules")
    assert get_refiner("rules:fineweb", line_rules=True).line_components == ("c4",)
    assert get_refiner("rules:c4", line_rules=False).chunk_programs([DOC]) == [["skip_chunk()"]]


def test_badwords_from_local_path(tmp_path):
    words = tmp_path / "en.txt"
    words.write_text("frobnicate\nzorp\n", encoding="utf-8")
    refiner = get_refiner("rules:c4", badwords=str(words))
    good = "\n".join(["This sentence is clean and has enough words."] * 6)
    bad = good + "\nWe will frobnicate the widget today, she said."
    progs = refiner.doc_programs([good, bad])
    assert progs[1] == "# c4_badwords\ndrop_doc()"
    assert progs[0] == "keep_doc()"


def test_removed_ranges_does_not_remove_isolated_blank_lines():
    lines = ["a", "", "b", "", "", "c"]
    assert removed_ranges([True, False, False, False, False, True], lines) == [(0, 0), (5, 5)]
    assert removed_ranges([True, False, True, False, False, True], lines) == [(0, 5)]


def test_line_rules_agree_with_datatrove_c4_filter(dclm_texts):
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4QualityFilter
    from datatrove.pipeline.filters.c4_filters import CITATION_REGEX

    flt = C4QualityFilter(min_num_sentences=-1, filter_lorem_ipsum=False, filter_curly_bracket=False)
    checked = 0
    for text in dclm_texts:
        if text.splitlines() != text.split("\n"):
            continue  # other line separators: datatrove splits differently
        doc = Document(text=text, id="x")
        assert flt.filter(doc) is True
        ours = [CITATION_REGEX.sub("", ln.strip()) for ln in text.split("\n") if ln.strip() and c4_line_reason(ln) is None]
        assert "\n".join(ours).strip() == doc.text
        checked += 1
    assert checked >= 20


def test_doc_programs_on_real_pages_parse_and_execute(dclm_texts):
    refiner = get_refiner("rules:gopher+c4+fineweb")
    progs = refiner.doc_programs(dclm_texts)
    chunks = refiner.chunk_programs(dclm_texts)
    assert len(progs) == len(chunks) == len(dclm_texts)
    dropped = 0
    for text, prog, chunk in zip(dclm_texts, progs, chunks):
        res = execute(text, prog, stage="doc")
        assert not res.errors and not res.program_ignored
        if prog != "keep_doc()":
            assert prog.startswith("# ") and res.dropped
            dropped += 1
            continue
        res = execute(text, join_chunk_programs(chunk), stage="chunk")
        assert not res.errors
    assert 0 < dropped < len(dclm_texts)
