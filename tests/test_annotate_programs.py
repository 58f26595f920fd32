"""Chunk-stage teacher answers -> merged, validated programs; gold-label programs."""
from __future__ import annotations

from prox.annotate.gold import chunk_gold_program, noisy_runs
from prox.annotate.programs import annotate_chunk, extract_operations, find_calls, merge_operations
from prox.executor import execute
from prox.parse import parse_program
from prox.program import Normalize, NoOp, RemoveLines

CHUNK_LINES = [f"line {i} of the page" for i in range(10, 20)]  # global lines 10..19
CHUNK_TEXT = "\n".join(CHUNK_LINES)


def ops(answer):
    return extract_operations(answer)


def test_plain_program():
    assert ops("remove_lines(line_start=10, line_end=12)") == [RemoveLines(10, 12)]


def test_program_inside_prose_and_fence():
    answer = (
        "Sure! The first lines are navigation.\n\n```python\n"
        "remove_lines(line_start=10, line_end=11)  # menu\n"
        "normalize(source_str=\"line 15\", target_str=\"\")\n```\nHope this helps."
    )
    assert ops(answer) == [RemoveLines(10, 11), Normalize("line 15", "")]


def test_program_after_last_program_mark_ignores_echoed_examples():
    answer = (
        "Example 1 ... Program:\nremove_lines(line_start=0, line_end=1)\n"
        "Now the chunk.\nProgram:\nremove_lines(line_start=17, line_end=19)"
    )
    assert ops(answer) == [RemoveLines(17, 19)]


def test_inline_calls_bracketed_numbers_and_positional():
    assert ops("I would call remove_lines(line_start=[012], line_end=[013]) here.") == [RemoveLines(12, 13)]
    assert ops("remove_lines(14, 15)") == [RemoveLines(14, 15)]
    assert ops("remove_lines(start=16,end=16); skip_chunk()") == [RemoveLines(16, 16), NoOp("skip_chunk")]


def test_paren_inside_string_and_unterminated_calls():
    calls, unterminated = find_calls('normalize(source_str="(c) 2024", target_str="")\nremove_lines(line_start=3, line_e')
    assert calls == ['normalize(source_str="(c) 2024", target_str="")']
    assert unterminated == 1


def test_garbage_and_injection_give_nothing():
    assert ops("I cannot help with that.") == []
    assert ops("__import__('os').system('rm -rf /')") == []
    assert ops("remove_lines(line_start=__import__('os'), line_end=3)") == []
    assert ops("remove_lines(line_start=2, line_end=1)") == []  # reversed range: parser error


def test_merge_unions_ranges_and_dedups():
    merged = merge_operations([
        RemoveLines(14, 15), RemoveLines(10, 11), RemoveLines(12, 12), RemoveLines(15, 17),
        Normalize("a", ""), Normalize("a", ""), NoOp("skip_chunk"),
    ])
    assert merged == [RemoveLines(10, 12), RemoveLines(14, 17), Normalize("a", "")]  # 13 stays
    assert merge_operations([NoOp("skip_chunk")]) == [NoOp("skip_chunk")]


def test_annotate_chunk_merges_three_families():
    answers = [
        "Program:\nremove_lines(line_start=10, line_end=11)",
        "Program:\nskip_chunk()",
        "```\nremove_lines(line_start=18, line_end=19)\n```",
    ]
    result = annotate_chunk(answers, first_line=10, last_line=19, chunk_text=CHUNK_TEXT)
    assert result.rejected is None
    assert result.program == "remove_lines(line_start=10, line_end=11)\nremove_lines(line_start=18, line_end=19)"
    assert abs(result.removed_share - 0.4) < 1e-9
    assert parse_program(result.program, stage="chunk").errors == []


def test_annotate_chunk_drops_ops_outside_chunk_and_hallucinated_normalize():
    answers = [
        "remove_lines(line_start=0, line_end=1)",  # echoed few-shot example: not in this chunk
        'normalize(source_str="not in the text", target_str="")',
        "remove_lines(line_start=19, line_end=25)",  # runs past the chunk
    ]
    result = annotate_chunk(answers, first_line=10, last_line=19, chunk_text=CHUNK_TEXT)
    assert result.program == "skip_chunk()"
    assert result.counts["op_outside_chunk"] == 2
    assert result.counts["normalize_not_in_chunk"] == 1


def test_annotate_chunk_rejections():
    too_much = annotate_chunk(["remove_lines(line_start=10, line_end=19)"], first_line=10, last_line=19,
                              chunk_text=CHUNK_TEXT, max_removed_share=0.8)
    assert too_much.program is None and too_much.rejected == "removed_share_above_max"
    allowed = annotate_chunk(["remove_lines(line_start=10, line_end=19)"], first_line=10, last_line=19,
                             chunk_text=CHUNK_TEXT, max_removed_share=1.0)
    assert allowed.program == "remove_lines(line_start=10, line_end=19)"
    nothing = annotate_chunk(["blah", "I don't know", ""], first_line=10, last_line=19, chunk_text=CHUNK_TEXT)
    assert nothing.program is None and nothing.rejected == "no_program_found"


def test_annotated_program_executes_on_the_document():
    doc_lines = [f"menu item {i}" for i in range(10)] + CHUNK_LINES
    result = annotate_chunk(["remove_lines(line_start=10, line_end=11)"], first_line=10, last_line=19,
                            chunk_text=CHUNK_TEXT)
    out = execute("\n".join(doc_lines), result.program, stage="chunk")
    assert "line 10 of the page" not in out.text and "line 12 of the page" in out.text


def test_gold_runs_bridge_blank_lines_only():
    # noisy 0,1 | blank 2 | noisy 3 | content 4 | noisy 5 | uncertain (non-blank) 6 | noisy 7
    assert noisy_runs([0, 1, 3, 5, 7], 0, 9, bridgeable=[2]) == [(0, 3), (5, 5), (7, 7)]
    assert noisy_runs([0, 1, 3, 5, 7], 2, 6, bridgeable=[2]) == [(3, 3), (5, 5)]  # clipped to the chunk
    assert chunk_gold_program([], 0, 9) == "skip_chunk()"
    assert chunk_gold_program([4, 5, 9], 3, 9) == (
        "remove_lines(line_start=4, line_end=5)\nremove_lines(line_start=9, line_end=9)"
    )
