"""Executor options: named thresholds with their sources, and words as the paper counts them."""
from __future__ import annotations

from dataclasses import dataclass, field

from prox.parse import ParseLimits

# ProX `data_gen/tasks/apply_chunk_refining.py` CLI default `threshold_2=0.95`: a chunk
# program that removes >= 95 % of the words drops the document.
DROP_RATIO = 0.95
# ProX `utils/chunk_utils.py` "ad-hoc rule integrated from the fineweb": <= 10 words left -> drop.
MIN_WORDS = 10
# ProX `apply_chunk_refining.py` CLI default `error_op=2`: a program with >= 2 errors is ignored.
MAX_ERRORS = 2
# ProX `apply_chunk_refining.py` CLI default `threshold_1=0.0` (minimum kept ratio to refine).
KEEP_RATIO = 0.0
# prox bound (not from the paper): a normalize may not grow the document past
# max(GROWTH_FACTOR * original length, original length + GROWTH_SLACK_CHARS)
# (`ExecOptions.growth_limit`; strict mode refuses such a normalize, reference mode fails the
# document): one short program may otherwise multiply a document's size (and memory) without bound.
GROWTH_FACTOR = 2.0
GROWTH_SLACK_CHARS = 4_096


@dataclass(frozen=True)
class ExecOptions:
    """Knobs of the executor. Defaults are the paper's (see the module constants)."""

    drop_ratio: float = DROP_RATIO
    min_words: int = MIN_WORDS
    max_errors: int = MAX_ERRORS
    keep_ratio: float = KEEP_RATIO
    growth_factor: float = GROWTH_FACTOR
    growth_slack_chars: int = GROWTH_SLACK_CHARS
    limits: ParseLimits = field(default_factory=ParseLimits)

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_ratio <= 1.0:
            raise ValueError(f"drop_ratio must be in [0, 1], got {self.drop_ratio}")
        if self.min_words < 0:
            raise ValueError(f"min_words must be >= 0, got {self.min_words}")
        if self.max_errors < 1:
            raise ValueError(f"max_errors must be >= 1, got {self.max_errors}")
        if self.growth_factor < 1.0 or self.growth_slack_chars < 0:
            raise ValueError("growth_factor must be >= 1 and growth_slack_chars >= 0")

    def growth_limit(self, n_chars: int) -> float:
        """The most characters normalizations may grow a document of ``n_chars`` characters to."""
        return max(n_chars * self.growth_factor, n_chars + self.growth_slack_chars)


DEFAULT_OPTIONS = ExecOptions()


# prox (not from the paper): count words of a longer text slice by slice, so a huge document
# (stats count the raw text of every document, of any size) never builds one list of all its words.
WORD_COUNT_SLICE_CHARS = 1 << 20


def count_words(text: str) -> int:
    """Words as the paper counts them: ``len(text.split())`` (runs of non-whitespace).

    Exact for any length: slices are counted alone, and a word cut by a slice boundary
    (non-whitespace on both sides; ``str.isspace`` and ``str.split`` share one definition
    of whitespace) is counted once.
    """
    size = len(text)
    if size <= WORD_COUNT_SLICE_CHARS:
        return len(text.split())
    step = WORD_COUNT_SLICE_CHARS
    words = 0
    for start in range(0, size, step):
        words += len(text[start: start + step].split())
        if start and not text[start - 1].isspace() and not text[start].isspace():
            words -= 1
    return words


def has_words(text: str, k: int) -> bool:
    """``count_words(text) >= k``, reading only the first ``k`` words."""
    if k <= 0:
        return True
    return len(text.split(None, k - 1)) >= k
