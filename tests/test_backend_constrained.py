"""The program grammar (`prox.generate.constrained`): one language in three spellings, and
every program of that language parses without syntax errors."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prox.generate import constrained as g
from prox.parse import parse_program
from prox.program import Normalize, RemoveLines, format_program

BOUNDS = {"max_ops": 4, "max_chars": 12, "max_digits": 4}
STRING_CHARS = st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs",))

VALID = {
    "doc": ["keep_doc()", "drop_doc()", " keep_doc()"],
    "chunk": [
        "skip_chunk()",
        " skip_chunk()",
        "remove_lines(line_start=0, line_end=12)",
        'normalize(source_str="Click here", target_str="")',
        'normalize(source_str="©2024")',
        'remove_lines(line_start=3, line_end=3)\nnormalize(source_str=" x", target_str="y z")',
    ],
}
INVALID = {
    "doc": ["", "keep_doc", "keep_doc()\n", "drop_doc()drop_doc()", "skip_chunk()", "KEEP_DOC()"],
    "chunk": [
        "", "drop_doc()", "skip_chunk()\nskip_chunk()", "remove_lines(0, 3)",
        "remove_lines(line_start=-1, line_end=3)", 'normalize(source_str="")', 'normalize(source_str=" ")',
        'normalize(source_str="a\\"b")', "remove_lines(line_start=1, line_end=2)\n",
        'normalize(source_str="0123456789abc")',  # longer than max_chars
        "\n".join(["remove_lines(line_start=1, line_end=2)"] * 5),  # more than max_ops
        "remove_lines(line_start=12345, line_end=1)",  # more than max_digits
    ],
}


@pytest.mark.parametrize("stage", ["doc", "chunk"])
def test_regex_accepts_and_rejects(stage):
    for text in VALID[stage]:
        assert g.matches(text, stage, **BOUNDS), text
        assert parse_program(text, stage=stage).errors == [], text
    for text in INVALID[stage]:
        assert not g.matches(text, stage, **BOUNDS), text


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(VALID["chunk"] * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")


@pytest.mark.parametrize("stage", ["doc", "chunk"])
def test_regex_and_gbnf_define_the_same_language(stage):
    """llguidance compiles both spellings; they accept and reject the same strings."""
    llguidance = pytest.importorskip("llguidance")
    pytest.importorskip("transformers")
    import llguidance.gbnf_to_lark
    import llguidance.hf

    hf = tokenizer()
    lltok = llguidance.hf.from_tokenizer(hf)
    grammars = {
        "regex": llguidance.LLMatcher.grammar_from_regex(g.program_regex(stage, **BOUNDS)),
        "gbnf": llguidance.LLMatcher.grammar_from_lark(llguidance.gbnf_to_lark.gbnf_to_lark(g.program_gbnf(stage, **BOUNDS))),
    }
    for name, grammar in grammars.items():
        assert llguidance.LLMatcher.validate_grammar(grammar, lltok) == "", name
        for text, expected in [(t, True) for t in VALID[stage]] + [(t, False) for t in INVALID[stage]]:
            matcher = llguidance.LLMatcher(lltok, grammar, log_level=0)
            ids = hf(text, add_special_tokens=False)["input_ids"]
            accepted = matcher.consume_tokens(ids) and matcher.is_accepting() if ids else matcher.is_accepting()
            assert bool(accepted) == expected, (name, text)


operation = st.one_of(
    st.builds(lambda a, b: f"remove_lines(line_start={min(a, b)}, line_end={max(a, b)})",
              st.integers(0, 9999), st.integers(0, 9999)),
    st.builds(lambda s, t: f'normalize(source_str="{s}", target_str="{t}")',
              st.text(STRING_CHARS, min_size=1, max_size=12).filter(lambda s: s != " "),
              st.text(STRING_CHARS, max_size=12)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, min_size=1, max_size=4), st.booleans())
def test_grammar_programs_parse_without_errors(ops, lead):
    text = (" " if lead else "") + "\n".join(ops)
    assert g.matches(text, "chunk", **BOUNDS)
    program = parse_program(text, stage="chunk")
    assert program.errors == []
    assert len(program.operations) == len(ops)
    # what the parser read is what the grammar spelled: canonical text round-trips
    assert all(isinstance(op, (RemoveLines, Normalize)) for op in program.operations)
    assert parse_program(format_program(program), stage="chunk").operations == program.operations


@given(st.lists(operation, min_size=1, max_size=4), st.integers(0, 400))
def test_complete_prefix_of_a_cut_program_parses(ops, cut):
    text = "\n".join(ops)[:cut]
    kept = g.complete_prefix(text, "chunk", **BOUNDS)
    assert text.startswith(kept)
    assert kept == "" or g.matches(kept, "chunk", **BOUNDS)
    assert parse_program(kept, stage="chunk").errors == []
    assert kept.count("\n") >= text.count("\n") - 1 or kept == ""


def test_bounds_are_checked_and_defaults_cover_prox_outputs():
    with pytest.raises(ValueError, match="max_chars"):
        g.program_regex("chunk", max_chars=1)
    with pytest.raises(ValueError, match="stage"):
        g.program_gbnf("lines")
    long_doc = "remove_lines(line_start=1200, line_end=104857)"
    assert g.matches(long_doc, "chunk") and not g.matches(long_doc, "chunk", max_digits=5)
    assert re.fullmatch(g.program_regex("doc"), "drop_doc()")
    assert g.complete_prefix("keep_d", "doc") == ""
