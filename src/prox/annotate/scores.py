"""Doc-stage teacher scores: parsing the answers and the paper's keep/drop rule."""
from __future__ import annotations

import re
from dataclasses import dataclass

EDU_LABEL = "Educational score"
FORMAT_LABEL = "Extraction Quality Score"
SCORE_MIN, SCORE_MAX = 0, 5  # both rubrics are additive 0-5 scales (FineWeb-Edu; ProX appendix)

# The paper's label rule (ProX §3.2): keep a document when its educational score is >= 3,
# or when it is exactly 2 and the format score is >= 4.
KEEP_EDU_MIN = 3
BORDERLINE_EDU = 2
BORDERLINE_FORMAT_MIN = 4

_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def _label_pattern(label: str) -> re.Pattern[str]:
    # The label, with any markdown emphasis or quoting around it and its words, then a colon
    # or dash (or "is"), then the number: digits (optionally "/5", "out of 5", ".0") or a word.
    words = r"[\s*_`\"']*".join(re.escape(w) for w in label.split())
    return re.compile(
        r"(?<![A-Za-z])" + words + r"[\s*_`\"']*(?:[:=\-–—]|\bis\b)[\s*_`\"'(\[]*"
        r"(?P<value>\d+(?:\.\d+)?|zero|one|two|three|four|five)\b",
        re.IGNORECASE,
    )


_PATTERNS = {label: _label_pattern(label) for label in (EDU_LABEL, FORMAT_LABEL)}


def parse_score(answer: str, label: str = EDU_LABEL) -> int | None:
    """The score the teacher gave under ``label`` (last occurrence wins), or None.

    None when the label never appears with a number, or the number is not an integer in
    0..5 (``3.5``, ``7``): an unparseable answer is a counted skip, never a guess.
    """
    pattern = _PATTERNS.get(label) or _label_pattern(label)
    matches = list(pattern.finditer(answer or ""))
    if not matches:
        return None
    raw = matches[-1].group("value").lower()
    if raw in _NUMBER_WORDS:
        return _NUMBER_WORDS[raw]
    value = float(raw)
    if value != int(value) or not SCORE_MIN <= value <= SCORE_MAX:
        return None
    return int(value)


def keep_label(edu: int, fmt: int | None) -> bool:
    """The paper's rule: keep if edu >= 3, or edu == 2 and format >= 4."""
    if edu >= KEEP_EDU_MIN:
        return True
    return edu == BORDERLINE_EDU and fmt is not None and fmt >= BORDERLINE_FORMAT_MIN


@dataclass(frozen=True)
class DocVerdict:
    edu: int | None
    fmt: int | None
    keep: bool | None  # None: no label (a score could not be parsed)
    reason: str | None  # why there is no label, e.g. "unparsed_edu_score"

    @property
    def program(self) -> str | None:
        if self.keep is None:
            return None
        return "keep_doc()" if self.keep else "drop_doc()"


def doc_verdict(edu_answer: str, format_answer: str) -> DocVerdict:
    """Parse both teacher answers and apply the label rule.

    The format score only matters in the borderline case (edu == 2); an unparseable format
    answer is therefore fatal only there.
    """
    edu = parse_score(edu_answer, EDU_LABEL)
    fmt = parse_score(format_answer, FORMAT_LABEL)
    if edu is None:
        return DocVerdict(edu, fmt, None, "unparsed_edu_score")
    if edu == BORDERLINE_EDU and fmt is None:
        return DocVerdict(edu, fmt, None, "unparsed_format_score")
    return DocVerdict(edu, fmt, keep_label(edu, fmt), None)
