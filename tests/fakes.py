"""A small, real Refiner for the pipeline tests (no model): word-count rules.

Doc stage: ``drop_doc()`` for documents under ``min_doc_words`` words, else ``keep_doc()``.
Chunk stage: the document is cut into chunks of ``chunk_lines`` lines; each chunk's program
removes the runs of non-blank lines with fewer than ``min_line_words`` words (global line
numbers), or is ``skip_chunk()``. Every generated program is logged to ``calls_file``
(one ``stage<TAB>sha1(text)`` line per document) so tests can count model calls.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Sequence


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class WordRuleRefiner:
    name = "test-word-rules"

    def __init__(self, min_doc_words: int = 50, min_line_words: int = 3, chunk_lines: int = 40,
                 calls_file: str | None = None, delay: float = 0.0, fail_on: str | None = None,
                 **_pipeline_options):  # e.g. batch_size, which `prox refine` passes to every refiner
        self.min_doc_words = int(min_doc_words)
        self.min_line_words = int(min_line_words)
        self.chunk_lines = int(chunk_lines)
        self.calls_file = calls_file
        self.delay = float(delay)
        self.fail_on = fail_on

    def _log(self, stage: str, texts: Sequence[str]) -> None:
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise RuntimeError(f"refiner cannot handle text containing {self.fail_on!r}")
        if self.delay:
            time.sleep(self.delay * len(texts))
        if self.calls_file:
            with open(self.calls_file, "a", encoding="utf-8") as handle:
                handle.writelines(f"{stage}\t{text_hash(t)}\n" for t in texts)
                handle.flush()
                os.fsync(handle.fileno())

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        self._log("doc", texts)
        return ["drop_doc()" if len(t.split()) < self.min_doc_words else "keep_doc()" for t in texts]

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        self._log("chunk", texts)
        return [self._chunks(t) for t in texts]

    def _chunks(self, text: str) -> list[str]:
        lines = text.split("\n")
        outputs = []
        for first in range(0, len(lines), self.chunk_lines):
            last = min(first + self.chunk_lines, len(lines)) - 1
            ops, start = [], None
            for i in range(first, last + 2):
                short = i <= last and lines[i].strip() != "" and len(lines[i].split()) < self.min_line_words
                if short and start is None:
                    start = i
                elif not short and start is not None:
                    ops.append(f"remove_lines(line_start={start}, line_end={i - 1})")
                    start = None
            outputs.append("\n".join(ops) if ops else "skip_chunk()")
        return outputs


def make_refiner(**options) -> WordRuleRefiner:
    return WordRuleRefiner(**options)


def expected_text(refiner: WordRuleRefiner, text: str) -> str:
    """What the chunk programs above should leave (for checking kept outputs)."""
    return "\n".join(line for line in text.split("\n")
                     if line.strip() == "" or len(line.split()) >= refiner.min_line_words)
