"""Doc-stage teacher answers: score parsing and the paper's keep/drop rule."""
from __future__ import annotations

import pytest

from prox.annotate.scores import EDU_LABEL, FORMAT_LABEL, doc_verdict, keep_label, parse_score


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("The extract is a recipe.\nEducational score: 3", 3),
        ("Educational score: 0", 0),
        ("Educational score:5", 5),
        ("**Educational score:** 4", 4),
        ("**Educational Score**: 2", 2),
        ("educational score - 1", 1),
        ("Educational score: 3/5", 3),
        ("Educational score: 4 points.", 4),
        ("Educational score: 3.0", 3),
        ("Educational score: (2)", 2),
        ("Educational score: [5]", 5),
        ("Educational score is 4", 4),
        ("Educational score: three", 3),
        ('"Educational score: 1"', 1),
        ("Justification... Educational score: 2\n\nEducational score: 4", 4),  # the last one wins
        ("Educational score:\n3", 3),
        ("I would say educational score: 2 overall", 2),
        # no usable score
        ("Educational score: <total points>", None),
        ("Educational score: 7", None),
        ("Educational score: 3.5", None),
        ("Educational score: -1", None),
        ("The score is 3.", None),
        ("", None),
        ("Extraction Quality Score: 4", None),  # the other rubric's label
        ("NonEducational score: 3", None),
    ],
)
def test_parse_edu_score(answer, expected):
    assert parse_score(answer, EDU_LABEL) == expected


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("Clean text.\nExtraction Quality Score: 5", 5),
        ("extraction quality score: 2", 2),
        ("**Extraction Quality Score:** 4/5", 4),
        ("Extraction  Quality  Score :1", 1),
        ("Extraction Quality Score: zero", 0),
        ("Educational score: 4", None),
        ("Extraction Quality Score: 10", None),
    ],
)
def test_parse_format_score(answer, expected):
    assert parse_score(answer, FORMAT_LABEL) == expected


def test_label_rule_full_table():
    # keep if edu >= 3, or edu == 2 and format >= 4 (ProX §3.2)
    for edu in range(6):
        for fmt in range(6):
            expected = edu >= 3 or (edu == 2 and fmt >= 4)
            assert keep_label(edu, fmt) is expected, (edu, fmt)
    assert keep_label(3, None) is True
    assert keep_label(2, None) is False


@pytest.mark.parametrize(
    "edu_answer, fmt_answer, keep, program, reason",
    [
        ("Educational score: 3", "Extraction Quality Score: 0", True, "keep_doc()", None),
        ("Educational score: 2", "Extraction Quality Score: 4", True, "keep_doc()", None),
        ("Educational score: 2", "Extraction Quality Score: 3", False, "drop_doc()", None),
        ("Educational score: 1", "Extraction Quality Score: 5", False, "drop_doc()", None),
        ("Educational score: 4", "rambling without a score", True, "keep_doc()", None),  # format irrelevant
        ("Educational score: 0", "rambling", False, "drop_doc()", None),
        ("Educational score: 2", "rambling", None, None, "unparsed_format_score"),
        ("no score at all", "Extraction Quality Score: 5", None, None, "unparsed_edu_score"),
    ],
)
def test_doc_verdict(edu_answer, fmt_answer, keep, program, reason):
    verdict = doc_verdict(edu_answer, fmt_answer)
    assert verdict.keep is keep
    assert verdict.program == program
    assert verdict.reason == reason
