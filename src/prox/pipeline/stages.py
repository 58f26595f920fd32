"""The two ProX stages as datatrove steps: `ProxDocStage` and `ProxChunkStage`.

Both work the same way, batch by batch: screen the documents (empty and oversized ones never
reach the model), get one program per document from the refiner (from the program cache when
a killed run left it there; a failed batch is retried document by document), execute it with
`prox.executor.execute` and mark the document dropped or failed, or pass on its refined text.
The doc stage's program is ``keep_doc()`` / ``drop_doc()``; the chunk stage's is the joined
programs of the document's chunks (`prox.refiners.join_chunk_programs`).

A document that is dropped or failed is only *marked* (`prox.pipeline.layout.mark`) and later
steps leave it alone, so the writer sees each input document exactly once.

The steps are picklable: a refiner is built lazily inside the worker from its spec and
options (``ProxDocStage("builtin")``), or taken as an already built object. What they count
(programs generated and cached, lines removed, ...) goes to datatrove's per-step stats
(`prox.pipeline.stats.STEP_COUNTERS`).
"""
from __future__ import annotations

import copy
import json
from itertools import islice
from typing import Any, Iterable, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.pipeline.cache import ProgramCache, cache_key
from prox.pipeline.layout import (
    CHUNK_PROGRAMS,
    DOC_EXECUTION,
    DOC_PROGRAM,
    EXECUTION,
    OUTCOME,
    REFINER,
    cache_file,
    mark,
)

DEFAULT_BATCH_SIZE = 32          # documents per refiner call
DEFAULT_MAX_CHARS = 2_000_000    # a bigger document is failed ("too_large") instead of stalling a task
# A document with more lines is failed ("too_large") too: refiners work per line (the builtin
# needs ~1.2 KB and ~6 us per line: 1.5 M one-character lines took 1.9 GB and 11 s), and the
# longest page in the shared benchmarks and the sample has 8,574 lines.
DEFAULT_MAX_LINES = 100_000
DROP_REASON_DOC_STAGE = "doc_program"   # reason for a drop_doc() at the doc stage

# Refiners built in this process, by (spec, options): a model cache, not state of a run. The doc
# and chunk stages and successive tasks of one worker share one model instead of loading it again.
_REFINERS: dict[tuple[str, str], Any] = {}


def _batched(data: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(data)
    while batch := list(islice(iterator, size)):
        yield batch


def _pending(doc: Document) -> bool:
    return doc.metadata.get(OUTCOME) is None


def short_error(exc: BaseException) -> str:
    """``Type: first line of the message``, capped: how an exception is named in a failed record."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:500]


class _RefinerStage(PipelineStep):
    """One stage: lazy refiner, program cache, batching, retry per document, execution."""

    type = "ProX"
    stage: str          # "doc" or "chunk"
    program_key: str    # where the document keeps its program(s)
    execution_key: str  # where it keeps the execution summary

    def __init__(
        self,
        refiner: Any = "builtin",
        refiner_options: dict[str, Any] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: str | None = None,
        mode: str = "strict",
        max_chars: int = DEFAULT_MAX_CHARS,
        max_lines: int = DEFAULT_MAX_LINES,
    ):
        super().__init__()
        self.refiner_spec = refiner if isinstance(refiner, str) else None
        self._refiner = None if isinstance(refiner, str) else refiner
        self.refiner_options = dict(refiner_options or {})
        self.batch_size = max(1, int(batch_size))
        self.cache_dir = cache_dir
        self.mode = mode
        self.max_chars = max_chars
        self.max_lines = max_lines

    @property
    def refiner(self):
        if self._refiner is None:
            key = (self.refiner_spec, json.dumps(self.refiner_options, sort_keys=True, default=str))
            if key not in _REFINERS:
                from prox.refiners import get_refiner

                _REFINERS[key] = get_refiner(self.refiner_spec, **self.refiner_options)
            self._refiner = _REFINERS[key]
        return self._refiner

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.refiner_spec is not None:
            state["_refiner"] = None  # rebuilt in the worker
        return state

    def __deepcopy__(self, memo):
        # datatrove deep-copies the pipeline for each in-process task: share a refiner object
        # (it may hold a loaded model) instead of copying it.
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, value if key == "_refiner" else copy.deepcopy(value, memo))
        return clone

    def _count(self, name: str, value: int = 1) -> None:
        if value:
            self.stat_update(name, value=value)

    # -- what differs between the stages ----------------------------------------------
    def _call(self, texts: list[str]) -> list[Any]:
        """The refiner's output per document."""
        raise NotImplementedError

    def _valid(self, output: Any) -> bool:
        """Whether one document's output has the stage's shape."""
        raise NotImplementedError

    def _program(self, output: Any) -> str:
        """The program text a document's output stands for."""
        raise NotImplementedError

    def _drop_reason(self, result: Any) -> str:
        raise NotImplementedError

    # -- generation with cache and per-document retry ---------------------------------
    def _generate(self, texts: list[str]) -> list[Any]:
        """Outputs for ``texts``; an Exception in place of a document's output on failure."""
        self._count("refiner_batches")
        try:
            outputs = self._call(texts)
            if len(outputs) != len(texts) or not all(self._valid(o) for o in outputs):
                raise ValueError(f"refiner returned {len(outputs)} outputs of unexpected shape for {len(texts)} documents")
            return list(outputs)
        except Exception:  # noqa: BLE001 - retry one by one to isolate the bad document
            self._count("refiner_batch_failures")
            results: list[Any] = []
            for text in texts:
                try:
                    single = self._call([text])
                    if len(single) != 1 or not self._valid(single[0]):
                        raise ValueError(f"refiner returned an output of unexpected shape: {str(single)[:200]}")
                    results.append(single[0])
                except Exception as exc:  # noqa: BLE001 - becomes a failed record
                    results.append(exc)
            return results

    def _outputs_for(self, docs: list[Document], cache: ProgramCache | None) -> list[Any]:
        keys = [cache_key(doc.id, doc.text) for doc in docs]
        outputs: list[Any] = [cache.get(k) if cache else None for k in keys]
        missing = [i for i, p in enumerate(outputs) if p is None]
        self._count(f"{self.stage}_programs_cached", len(docs) - len(missing))
        if missing:
            generated = self._generate([docs[i].text for i in missing])
            fresh = []
            for i, output in zip(missing, generated):
                outputs[i] = output
                if not isinstance(output, Exception):
                    fresh.append((keys[i], docs[i].id, output))
            self._count(f"{self.stage}_programs_generated", len(fresh))
            if cache is not None:
                cache.add_batch(fresh)
        return outputs

    def _open_cache(self, rank: int) -> ProgramCache | None:
        if not self.cache_dir:
            return None
        return ProgramCache(cache_file(self.cache_dir, self.stage, rank), self.stage)

    def _screen(self, doc: Document) -> bool:
        """Empty and oversized documents never reach the model. True if the doc goes on."""
        if not doc.text.strip():
            mark(doc, "dropped", "empty_text")
            return False
        if len(doc.text) > self.max_chars:
            mark(doc, "failed", f"too_large: {len(doc.text)} characters > max_chars={self.max_chars}")
            return False
        if len(doc.text) >= self.max_lines:  # fewer characters cannot make more lines: no count needed
            n_lines = doc.text.count("\n") + 1
            if n_lines > self.max_lines:
                mark(doc, "failed", f"too_large: {n_lines} lines > max_lines={self.max_lines}")
                return False
        return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        refiner_name = str(getattr(self.refiner, "name", type(self.refiner).__name__))
        cache = self._open_cache(rank)
        try:
            for batch in _batched(data, self.batch_size):
                for doc in batch:
                    doc.metadata.setdefault(REFINER, refiner_name)
                todo = [doc for doc in batch if _pending(doc) and self._screen(doc)]
                if todo:
                    with self.track_time(unit="batch"):
                        outputs = self._outputs_for(todo, cache)
                        for doc, output in zip(todo, outputs):
                            if isinstance(output, Exception):
                                mark(doc, "failed", f"refiner_error: {self.stage} stage: {short_error(output)}")
                                self.stat_update("refiner_error")
                            else:
                                self._execute(doc, output)
                yield from batch
        finally:
            if cache is not None:
                cache.close()

    def _execute(self, doc: Document, output: Any) -> None:
        """Execute the document's program on it; mark it dropped or failed, or refine its text."""
        from prox.executor import execute

        doc.metadata[self.program_key] = output
        try:
            result = execute(doc.text, self._program(output), stage=self.stage, mode=self.mode)
        except Exception as exc:  # noqa: BLE001 - the executor should not raise; never crash a corpus on it
            mark(doc, "failed", f"execute_error: {self.stage} stage: {short_error(exc)}")
            return
        self._count("program_errors", len(result.errors or []))
        self._count("programs_ignored", int(bool(result.program_ignored)))
        doc.metadata[self.execution_key] = result.summary()
        if result.failed:
            mark(doc, "failed", f"reference_failed: {self.stage} stage: {result.failed}")
        elif result.dropped:
            reason = self._drop_reason(result)
            mark(doc, "dropped", reason)
            self.stat_update(f"dropped_{reason}")
        else:
            self._count("lines_removed", sum(end - start + 1 for start, end in (result.removed_ranges or [])))
            self._count("normalizations", len(result.normalizations or []))
            doc.text = result.text
            self.stat_update("kept")


class ProxDocStage(_RefinerStage):
    """Doc level: one ``keep_doc()`` / ``drop_doc()`` program per document."""

    name = "ProX doc stage"
    stage = "doc"
    program_key, execution_key = DOC_PROGRAM, DOC_EXECUTION

    def _call(self, texts: list[str]) -> list[Any]:
        return self.refiner.doc_programs(texts)

    def _valid(self, output: Any) -> bool:
        return isinstance(output, str)

    def _program(self, output: str) -> str:
        return output

    def _drop_reason(self, result: Any) -> str:
        return DROP_REASON_DOC_STAGE


class ProxChunkStage(_RefinerStage):
    """Chunk level: per document, one program per chunk, joined and executed on the whole document."""

    name = "ProX chunk stage"
    stage = "chunk"
    program_key, execution_key = CHUNK_PROGRAMS, EXECUTION

    def _call(self, texts: list[str]) -> list[Any]:
        return self.refiner.chunk_programs(texts)

    def _valid(self, output: Any) -> bool:
        return isinstance(output, (list, tuple)) and all(isinstance(p, str) for p in output)

    def _program(self, output: list[str]) -> str:
        from prox.refiners import join_chunk_programs

        return join_chunk_programs(output)

    def _drop_reason(self, result: Any) -> str:
        return result.drop_reason or "chunk_program"
