"""Learned junk prefixes/suffixes, cut with `normalize` only where every occurrence is junk."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from prox import execute
from prox.builtin.fragments import PREFIX, SUFFIX, Fragment, FragmentMatcher, mine, normalizations, word_pages
from prox.builtin.model import BuiltinModel
from prox.parse import parse_program
from prox.program import Normalize
from prox.refiners.builtin import BuiltinRefiner

BODY = ["the quick brown fox jumps over the lazy dog near the river bank",
        "a second sentence about the weather in the northern hills today",
        "finally the third sentence closes the story of the little fox"]


def _page(i: int, suffix: str = " Read more »", prefix: str = "Posted by admin: ") -> tuple[str, str, str]:
    lines = [f"{prefix}{BODY[0]} {i}", f"{BODY[1]}{suffix}", BODY[2]]
    gold = "\n".join([f"{BODY[0]} {i}", BODY[1], BODY[2]])
    return f"page{i}", "\n".join(lines), gold


def test_mining_finds_junk_edges_seen_on_several_pages():
    frags = mine([_page(i) for i in range(4)])
    got = {(f.side, f.pattern): f for f in frags}
    assert (SUFFIX, "Read more »") in got and (PREFIX, "Posted by admin:") in got
    assert got[(SUFFIX, "Read more »")].pages == 4 and got[(SUFFIX, "Read more »")].clean == 0
    # one page is not a rule
    assert mine([_page(0)]) == []
    # a fragment that is often part of the gold at a line edge is not junk
    clean_pages = [(f"c{i}", f"{BODY[0]} Read more »", f"{BODY[0]} Read more »") for i in range(40)]
    assert (SUFFIX, "Read more »") not in {(f.side, f.pattern) for f in mine([_page(i) for i in range(4)] + clean_pages)}


def test_patterns_generalise_digits_and_need_letters():
    pages = [(f"p{i}", f"{BODY[0]} - Picture {i} of {i + 3}\n{BODY[1]}", f"{BODY[0]}\n{BODY[1]}") for i in range(5)]
    pages += [(f"n{i}", f"{i}. {BODY[2]}", BODY[2]) for i in range(5)]  # list numbers the gold leaves out
    pats = {f.pattern for f in mine(pages)}
    assert "- Picture 0 of 0" in pats
    assert "0." not in pats  # no letters: never learned (numbers are not cut)


def test_word_pages_share_the_page_id_of_both_views():
    rows = [{"id": "wcxb-dev:0168:dclm", "text": "a", "gold_text": "b"}, {"id": "wcxb-dev:0168:wet", "text": "c", "gold_text": "b"},
            {"id": "x", "text": "no gold"}]
    assert [p[0] for p in word_pages(rows)] == ["wcxb-dev:0168", "wcxb-dev:0168"]


MATCHER = FragmentMatcher([Fragment(SUFFIX, "Read more »", 5, 0, 4), Fragment(PREFIX, "Posted by admin:", 5, 0, 4),
                           Fragment(SUFFIX, "Picture 0 of 0", 5, 0, 3)])


def test_matcher_cuts_only_at_a_separating_space_and_keeps_enough_words():
    line = "The storm closed three coastal roads on Tuesday Read more »"
    a, b = MATCHER.cut(line)
    assert line[:a] + line[b:] == "The storm closed three coastal roads on Tuesday"
    assert MATCHER.cut("Posted by admin: The storm closed the roads") is not None
    assert MATCHER.cut("Short Read more »") is None  # fewer than 3 words would be left
    assert MATCHER.cut("Storm closed the roadsRead more »") is None  # glued to a word: not a separate fragment
    assert MATCHER.cut("Storm closed the roads today Picture 1 of 12") is not None


def _norms(lines, removed=None, protected=None):
    n = len(lines)
    return normalizations(lines, np.zeros(n, bool) if removed is None else np.array(removed),
                          np.zeros(n, bool) if protected is None else np.array(protected), MATCHER)


def test_a_cut_is_emitted_only_when_every_occurrence_is_junk():
    lines = ["The storm closed three coastal roads Read more »", "Rain flooded the old harbour again Read more »", ""]
    assert _norms(lines) == [(" Read more »", "")]
    # the same text inside a kept sentence: replacing it everywhere would cut content -> no normalize
    mid = lines + ["He said Read more » is a bad button label for readers"]
    assert _norms(mid) == []
    # ... unless that line is removed anyway
    assert _norms(mid, removed=[False, False, False, True]) == [(" Read more »", "")]
    # formula lines are never touched
    assert _norms(["We have $x^2 + y^2$ as the sum here Read more »"], protected=[True]) == []


def test_programs_execute_to_the_expected_text():
    text = "Posted by admin: The storm closed three coastal roads\nMenu\nRain flooded the old harbour Read more »\n"
    norms = _norms(text.split("\n"), removed=[False, True, False, False])
    program = "\n".join(f'normalize(source_str="{s}", target_str="{t}")' for s, t in norms) + "\nremove_lines(line_start=1, line_end=1)"
    assert not parse_program(program, stage="chunk").errors
    out = execute(text, program, stage="chunk")
    assert out.text == "The storm closed three coastal roads\nRain flooded the old harbour\n"


@pytest.fixture(scope="module")
def shipped() -> BuiltinModel:
    return BuiltinModel.load()


def test_the_builtin_writes_normalize_for_learned_fragments(shipped):
    model = dataclasses.replace(shipped, fragments=list(MATCHER.fragments))
    text = ("Storm closes the coastal roads\n\nHeavy rain flooded three roads near the harbour on Tuesday, "
            "and the council closed them until Friday morning. Read more »\n\n"
            "Engineers will inspect the sea wall next week before the roads reopen to traffic.")
    with_norm = BuiltinRefiner(model).chunk_programs([text])[0][0]
    ops = parse_program(with_norm, stage="chunk").operations
    assert Normalize(" Read more »", "") in ops
    assert "Read more" not in execute(text, with_norm, stage="chunk").text
    without = BuiltinRefiner(model, normalize=False).chunk_programs([text])[0][0]
    assert "normalize" not in without
    # a model without fragments writes no normalize at all
    assert "normalize" not in BuiltinRefiner(dataclasses.replace(shipped, fragments=[])).chunk_programs([text])[0][0]


def test_fragments_survive_save_and_load(shipped, tmp_path):
    model = dataclasses.replace(shipped, fragments=list(MATCHER.fragments))
    again = BuiltinModel.load(model.save(tmp_path / "m.npz"))
    assert again.fragments == model.fragments
