"""The one interface every refiner implements: documents in, program texts out."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class Refiner(Protocol):
    """Writes ProX programs for documents.

    LM refiners render prompts and generate; the builtin and rule refiners predict
    directly from the text. Either way the output is program *text*, parsed and executed
    by the same core, so outputs, stats and reports are shared by all refiners.
    """

    name: str
    # Optional: ``stages`` (default ``("doc", "chunk")``), the stages this refiner can run;
    # `prox refine` refuses a --stages it cannot do before starting (e.g. an LM refiner with
    # only a chunk model).

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        """One doc-level program (``keep_doc()`` / ``drop_doc()``) per document."""
        ...

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        """Per document, one chunk-level program text per chunk, in chunk order."""
        ...


def join_chunk_programs(outputs: Sequence[str]) -> str:
    """Join the per-chunk outputs of one document into one whole-document program.

    Same as the reference pipeline's `merge_chunks`: each output stripped of spaces
    (vLLM's `.strip(" ")`), joined with newlines. Line numbers in chunk programs are
    already global, so no offsetting is needed.
    """
    return "\n".join(output.strip(" ") for output in outputs)
