"""`ExecutionResult`: what executing one program on one document produced (both modes)."""
from __future__ import annotations

from dataclasses import dataclass, field

from prox.executor.options import count_words
from prox.program import Operation, ProgramError, operation_to_dict


@dataclass(slots=True)
class ExecutionResult:
    """What executing one program on one document produced.

    Exactly one outcome: kept (``not dropped and failed is None``), dropped (with
    ``drop_reason``) or failed (reference mode only: the exception the reference raised).
    ``n_words_in`` / ``n_words_out`` (whitespace-split word counts of the input and of the
    refined text before the drop decision) are computed on first access when the
    executor did not need them.
    """

    text: str  # refined text, "" when dropped or failed
    dropped: bool = False
    drop_reason: str | None = None  # "drop_doc" | "too_few_words" | "low_kept_ratio"
    failed: str | None = None
    program_ignored: bool = False  # too many errors -> original text returned
    operations: list[Operation] = field(default_factory=list)  # operations applied
    removed_ranges: list[tuple[int, int]] = field(default_factory=list)
    normalizations: list[tuple[str, str]] = field(default_factory=list)
    errors: list[ProgramError] = field(default_factory=list)
    stage: str = "chunk"
    mode: str = "strict"
    words_in: int | None = field(default=None, repr=False)  # see n_words_in
    words_out: int | None = field(default=None, repr=False)  # see n_words_out
    details: dict | None = None  # reference mode: the reference's internal values
    source_in: str | None = field(default=None, repr=False, compare=False)
    source_out: str | None = field(default=None, repr=False, compare=False)

    @property
    def n_words_in(self) -> int:
        if self.words_in is None:
            self.words_in = count_words(self.source_in or "")
        return self.words_in

    @property
    def n_words_out(self) -> int:
        if self.words_out is None:
            if self.source_out is not None and self.source_out is self.source_in:
                self.words_out = self.n_words_in
            else:
                self.words_out = count_words(self.source_out or "")
        return self.words_out

    @property
    def outcome(self) -> str:
        if self.failed is not None:
            return "failed"
        return "dropped" if self.dropped else "kept"

    def summary(self) -> dict:
        """JSON-able execution summary, written next to each output record."""
        out = {
            "stage": self.stage,
            "mode": self.mode,
            "outcome": self.outcome,
            "drop_reason": self.drop_reason,
            "program_ignored": self.program_ignored,
            "n_errors": len(self.errors),
            "errors": [e.to_dict() for e in self.errors],
            "operations": [operation_to_dict(op) for op in self.operations],
            "removed_ranges": [list(r) for r in self.removed_ranges],
            "normalizations": [list(p) for p in self.normalizations],
            "n_words_in": self.n_words_in,
            "n_words_out": self.n_words_out,
        }
        if self.failed is not None:
            out["failed"] = self.failed
        if self.details is not None:
            out["branch"] = self.details.get("branch")
        return out
