"""The ProX stages as datatrove ``PipelineStep``s.

A document flows through ``ProxReader -> ProxDocStage -> ProxChunkStage -> ProxExecute ->
ProxOutcomeWriter``. Every step passes every document on; a document that is dropped or
failed is only *marked* (``metadata["prox_outcome"]``) and later steps leave it alone, so
the writer sees each input document exactly once and the accounting is exact.

The steps are picklable: a refiner is built lazily inside the worker from its spec and
options (``ProxDocStage("builtin")``), or taken as an already built object.

Use them in your own datatrove pipeline::

    pipeline = [
        ProxReader(["data/"]),
        ProxDocStage("builtin"), ProxChunkStage("builtin"), ProxExecute(),
        ProxOutcomeWriter("out/"),
    ]
    LocalPipelineExecutor(pipeline, tasks=4, logging_dir="out/.prox/logs").run()
"""
from __future__ import annotations

import copy
import json
import os
from collections import Counter
from itertools import islice
from typing import Any, Iterable, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.records import json_safe
from prox.pipeline import progress
from prox.pipeline.cache import ProgramCache, cache_key
from prox.pipeline.layout import (
    CHUNK_PROGRAMS,
    DOC_EXECUTION,
    DOC_PROGRAM,
    ERROR,
    EXECUTION,
    INPUT_META,
    OUTCOMES,
    OUTPUT_FORMATS,
    OUTCOME,
    RAW_LINE,
    RAW_TEXT,
    REASON,
    SOURCE,
    OutputRecord,
    RunLayout,
    cache_file,
    mark,
    outcome_of,
    output_name_template,
    parquet_schema,
)
from prox.pipeline.inputs import read_documents
from prox.pipeline.stats import TaskStats, write_json_atomic

DEFAULT_BATCH_SIZE = 32          # documents per refiner call
GZIP_LEVEL = 1                   # output jsonl.gz: level 9 (gzip's default) took ~35 % of the engine's time
_GZIP_FAST = "prox-gzip-fast"


def _register_fast_gzip() -> None:
    import gzip

    from fsspec.compression import compr, register_compression

    if _GZIP_FAST not in compr:
        register_compression(
            _GZIP_FAST, lambda f, mode="rb", **kw: gzip.GzipFile(fileobj=f, mode=mode, compresslevel=GZIP_LEVEL), []
        )
DEFAULT_MAX_CHARS = 2_000_000    # a bigger document is failed ("too_large") instead of stalling a task
# A document with more lines is failed ("too_large") too: refiners work per line (the builtin
# needs ~1.2 KB and ~6 us per line: 1.5 M one-character lines took 1.9 GB and 11 s), and the
# longest page in the shared benchmarks and the sample has 8,574 lines.
DEFAULT_MAX_LINES = 100_000
DROP_REASON_DOC_STAGE = "doc_program"   # reason for a drop_doc() at the doc stage

# Counters shared by the steps of one task (one process runs all steps of a task).
_TASK_COUNTERS: dict[int, Counter] = {}
# Refiners built in this process, by (spec, options): doc and chunk stages and successive
# tasks of one worker share one model instead of loading it again.
_REFINERS: dict[tuple[str, str], Any] = {}
# Refiner name reported by the steps of each task (for stats.json).
_TASK_REFINER: dict[int, str] = {}


def task_counters(rank: int) -> Counter:
    return _TASK_COUNTERS.setdefault(rank, Counter())


def _batched(data: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(data)
    while batch := list(islice(iterator, size)):
        yield batch


def _pending(doc: Document) -> bool:
    return doc.metadata.get(OUTCOME) is None


def _short_error(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:500]


class _RefinerStep(PipelineStep):
    """Shared machinery: lazy refiner, program cache, batching, retry per document."""

    stage = "doc"

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

    # -- generation with cache and per-document retry ---------------------------------
    def _call(self, texts: list[str]) -> list[Any]:
        raise NotImplementedError

    def _valid(self, output: Any) -> bool:
        raise NotImplementedError

    def _generate(self, texts: list[str], counters: Counter) -> list[Any]:
        """Programs for ``texts``; an Exception in place of a document's program on failure."""
        counters["refiner_batches"] += 1
        try:
            outputs = self._call(texts)
            if len(outputs) != len(texts) or not all(self._valid(o) for o in outputs):
                raise ValueError(f"refiner returned {len(outputs)} outputs of unexpected shape for {len(texts)} documents")
            return list(outputs)
        except Exception:  # noqa: BLE001 - retry one by one to isolate the bad document
            counters["refiner_batch_failures"] += 1
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

    def _programs_for(self, docs: list[Document], cache: ProgramCache | None, counters: Counter) -> list[Any]:
        keys = [cache_key(doc.id, doc.text) for doc in docs]
        programs: list[Any] = [cache.get(k) if cache else None for k in keys]
        missing = [i for i, p in enumerate(programs) if p is None]
        counters[f"{self.stage}_programs_cached"] += len(docs) - len(missing)
        if missing:
            generated = self._generate([docs[i].text for i in missing], counters)
            fresh = []
            for i, program in zip(missing, generated):
                programs[i] = program
                if not isinstance(program, Exception):
                    fresh.append((keys[i], docs[i].id, program))
            counters[f"{self.stage}_programs_generated"] += len(fresh)
            if cache is not None:
                cache.add_batch(fresh)
        return programs

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
        counters = task_counters(rank)
        _TASK_REFINER[rank] = str(getattr(self.refiner, "name", type(self.refiner).__name__))
        cache = self._open_cache(rank)
        try:
            for batch in _batched(data, self.batch_size):
                todo = [doc for doc in batch if _pending(doc) and self._screen(doc)]
                if todo:
                    with self.track_time(unit="batch"):
                        programs = self._programs_for(todo, cache, counters)
                        for doc, program in zip(todo, programs):
                            if isinstance(program, Exception):
                                mark(doc, "failed", f"refiner_error: {self.stage} stage: {_short_error(program)}")
                                self.stat_update("refiner_error")
                            else:
                                self._apply(doc, program, counters)
                yield from batch
        finally:
            if cache is not None:
                cache.close()

    def _apply(self, doc: Document, program: Any, counters: Counter) -> None:
        raise NotImplementedError


def _execute(text: str, program: str, stage: str, mode: str):
    from prox.executor import execute

    return execute(text, program, stage=stage, mode=mode)


def _count_execution(result: Any, counters: Counter) -> None:
    counters["program_errors"] += len(getattr(result, "errors", []) or [])
    counters["programs_ignored"] += int(bool(getattr(result, "program_ignored", False)))


class ProxDocStage(_RefinerStep):
    """Doc level: one ``keep_doc()`` / ``drop_doc()`` program per document, executed at once."""

    name = "ProX doc stage"
    type = "ProX"
    stage = "doc"

    def _call(self, texts: list[str]) -> list[Any]:
        return self.refiner.doc_programs(texts)

    def _valid(self, output: Any) -> bool:
        return isinstance(output, str)

    def _apply(self, doc: Document, program: str, counters: Counter) -> None:
        doc.metadata[DOC_PROGRAM] = program
        try:
            result = _execute(doc.text, program, "doc", self.mode)
        except Exception as exc:  # noqa: BLE001 - the executor should not raise; never crash a corpus on it
            mark(doc, "failed", f"execute_error: doc stage: {_short_error(exc)}")
            return
        _count_execution(result, counters)
        doc.metadata[DOC_EXECUTION] = result.summary()
        if result.failed:
            mark(doc, "failed", f"reference_failed: doc stage: {result.failed}")
        elif result.dropped:
            mark(doc, "dropped", DROP_REASON_DOC_STAGE)
            self.stat_update("dropped")
        else:
            self.stat_update("kept")


class ProxChunkStage(_RefinerStep):
    """Chunk level: per document, one program per chunk (executed later by ``ProxExecute``)."""

    name = "ProX chunk stage"
    type = "ProX"
    stage = "chunk"

    def _call(self, texts: list[str]) -> list[Any]:
        return self.refiner.chunk_programs(texts)

    def _valid(self, output: Any) -> bool:
        return isinstance(output, (list, tuple)) and all(isinstance(p, str) for p in output)

    def _apply(self, doc: Document, program: Any, counters: Counter) -> None:
        doc.metadata[CHUNK_PROGRAMS] = list(program)


class ProxExecute(PipelineStep):
    """Joins each document's chunk programs and executes them on the whole document."""

    name = "ProX execute"
    type = "ProX"

    def __init__(self, mode: str = "strict"):
        super().__init__()
        self.mode = mode

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from prox.refiners import join_chunk_programs

        counters = task_counters(rank)
        for doc in data:
            if _pending(doc) and CHUNK_PROGRAMS in doc.metadata:
                with self.track_time():
                    self._execute_one(doc, join_chunk_programs(doc.metadata[CHUNK_PROGRAMS]), counters)
            yield doc

    def _execute_one(self, doc: Document, program: str, counters: Counter) -> None:
        try:
            result = _execute(doc.text, program, "chunk", self.mode)
        except Exception as exc:  # noqa: BLE001
            mark(doc, "failed", f"execute_error: chunk stage: {_short_error(exc)}")
            return
        _count_execution(result, counters)
        doc.metadata[EXECUTION] = result.summary()
        if result.failed:
            mark(doc, "failed", f"reference_failed: chunk stage: {result.failed}")
            return
        if result.dropped:
            mark(doc, "dropped", result.drop_reason or "chunk_program")
            self.stat_update(f"dropped_{result.drop_reason}")
            return
        counters["lines_removed"] += sum(end - start + 1 for start, end in (result.removed_ranges or []))
        counters["normalizations"] += len(result.normalizations or [])
        doc.text = result.text
        self.stat_update("kept")


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
class ProxReader(PipelineStep):
    """Reads JSONL (.jsonl/.gz/.zst) and Parquet files without silently losing a line.

    Sharding: with at least as many files as tasks, each task reads whole files
    (``files[rank::world_size]``); otherwise (or with ``limit``) every task walks all files
    and takes every ``world_size``-th document, so one big file still spreads over tasks.
    ``limit`` caps the *total* number of documents of the run (the first N in input order).
    """

    name = "ProX reader"
    type = "Reader"

    def __init__(self, files: list[str], *, text_field: str = "text", id_field: str = "id", limit: int | None = None):
        super().__init__()
        self.files = list(files)
        self.text_field = text_field
        self.id_field = id_field
        self.limit = limit if limit is None or limit >= 0 else None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        by_file = self.limit is None and len(self.files) >= world_size
        files = self.files[rank::world_size] if by_file else self.files
        seen = 0  # global document position (only meaningful when not sharding by file)
        counters = task_counters(rank)
        repaired: list[str] = []  # sources of the documents whose lone surrogates were replaced
        try:
            for path in files:
                for record in read_documents(path, text_field=self.text_field, id_field=self.id_field):
                    if not by_file:
                        if self.limit is not None and seen >= self.limit:
                            return
                        mine = seen % world_size == rank
                        seen += 1
                        if not mine:
                            continue
                    if record.lone_surrogates:
                        counters["lone_surrogates_replaced"] += record.lone_surrogates
                        counters["docs_lone_surrogates_replaced"] += 1
                        if len(repaired) < 3:
                            repaired.append(record.source)
                    yield self._document(record)
                    self.stat_update("documents" if record.error is None else "unreadable")
        finally:
            if repaired:
                logger.warning(
                    f"ProX reader: replaced {counters['lone_surrogates_replaced']} lone surrogate(s) by "
                    f"U+FFFD in {counters['docs_lone_surrogates_replaced']} document(s), e.g. {', '.join(repaired)}"
                )

    def _document(self, record) -> Document:
        metadata: dict[str, Any] = {SOURCE: record.source, INPUT_META: record.metadata, RAW_TEXT: record.text}
        if record.error is not None:
            metadata[OUTCOME] = "failed"
            metadata[ERROR] = record.error
            if record.raw_line is not None:
                metadata[RAW_LINE] = record.raw_line
        return Document(text=record.text, id=record.id, metadata=metadata)


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def jsonl_adapter(self, document: Document) -> dict[str, Any]:
    return OutputRecord.from_document(document).to_row("jsonl")


def _check_encodable(record: dict[str, Any]) -> None:
    """Raise now for a string Arrow cannot encode (a lone surrogate): the Parquet writer buffers
    rows and would otherwise fail later, on a whole batch, at a flush."""
    stack: list[Any] = [record]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii():
                node.encode("utf-8")  # UnicodeEncodeError on a surrogate
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def parquet_adapter(self, document: Document) -> dict[str, Any]:
    record = OutputRecord.from_document(document).to_row("parquet")
    _check_encodable(record)
    return record


class ProxOutcomeWriter(PipelineStep):
    """Routes each document to ``kept/``, ``dropped/`` or ``failed/`` and writes task stats.

    Files are written under ``work_dir/tmp/`` and moved into place only when the task's
    input is exhausted, so a killed task leaves no partial output; on rerun the task starts
    its outputs from scratch (programs come back from the cache).
    """

    name = "ProX outcome writer"
    type = "Writer"

    def __init__(self, output_dir: str, *, output_format: str = "jsonl", work_dir: str | None = None):
        super().__init__()
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be 'jsonl' or 'parquet', not {output_format!r}")
        self.output_dir = output_dir
        self.output_format = output_format
        self.work_dir = work_dir
        self.layout = RunLayout(output_dir, work_dir)

    def _writer(self, outcome: str):
        folder = self.layout.tmp_dir(outcome)
        if self.output_format == "jsonl":
            from datatrove.pipeline.writers import JsonlWriter

            _register_fast_gzip()
            return JsonlWriter(folder, output_filename=output_name_template("jsonl"), compression=_GZIP_FAST, adapter=jsonl_adapter)
        from datatrove.pipeline.writers import ParquetWriter

        return ParquetWriter(folder, output_filename=output_name_template("parquet"), adapter=parquet_adapter,
                             schema=parquet_schema(outcome), batch_size=500, max_file_size=-1)

    @staticmethod
    def _write(writers: dict[str, Any], doc: Document, outcome: str, rank: int) -> str:
        """Write ``doc`` to its outcome's file; return the outcome it was written as.

        Last defence: a record no writer can encode (a lone surrogate from a refiner's output,
        an integer over 64 bits or very deep nesting in the input's other fields) becomes a
        failed record, made writable by `prox.records.json_safe`, instead of stopping the task.
        The writers encode a record before writing any of it, so nothing partial is left. An
        OSError (disk full, ...) is not the record's fault: it stops the task, which resumes.
        """
        try:
            writers[outcome].write(doc, rank)
            return outcome
        except (TypeError, ValueError, RecursionError) as exc:  # orjson and Arrow encoding errors
            error = f"unwritable: {outcome} record: {_short_error(exc)}"
        previous = doc.metadata.get(ERROR) if outcome == "failed" else None
        doc.id = json_safe(str(doc.id))
        doc.text = json_safe(doc.text)
        doc.metadata = json_safe(doc.metadata)
        mark(doc, "failed", error if previous is None else f"{error} (was: {json_safe(previous)})"[:2000])
        writers["failed"].write(doc, rank)
        return "failed"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        _TASK_COUNTERS[rank] = Counter()  # fresh for this task (upstream steps run lazily, after this)
        stats = TaskStats(rank=rank)
        layout, fmt = self.layout, self.output_format
        for outcome in OUTCOMES:
            stale = layout.tmp_file(outcome, rank, fmt)
            if os.path.exists(stale):
                os.remove(stale)
        writers = {outcome: self._writer(outcome) for outcome in OUTCOMES}
        try:
            for doc in data:
                with self.track_time():
                    outcome = self._write(writers, doc, outcome_of(doc), rank)
                raw = doc.metadata.get(RAW_TEXT, doc.text)
                detail = doc.metadata.get(REASON) if outcome == "dropped" else doc.metadata.get(ERROR)
                stats.record(outcome, raw, doc.text if outcome == "kept" else "", detail)
                self.stat_update(outcome)
                progress.advance(1, outcome)
                yield doc
        finally:
            for writer in writers.values():
                writer.close()
        stats.counts.update(_TASK_COUNTERS.pop(rank, Counter()))
        task_stats = stats.to_dict()
        task_stats["refiner_name"] = _TASK_REFINER.pop(rank, None)
        write_json_atomic(layout.task_file(rank), task_stats)
        for outcome in OUTCOMES:
            tmp = layout.tmp_file(outcome, rank, fmt)
            os.makedirs(layout.outcome_dir(outcome), exist_ok=True)
            if os.path.exists(tmp):
                os.replace(tmp, layout.final_file(outcome, rank, fmt))
