"""`ProxOutcomeWriter`: the last step of `prox refine`, each document into its outcome's file.

The records are `prox.pipeline.layout.OutputRecord`s, in the run folder that module lays out.
The writer also keeps the task's outcome accounting (`prox.pipeline.stats.TaskStats`).
"""
from __future__ import annotations

import gzip
import os
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.pipeline import progress
from prox.pipeline.layout import (
    ERROR,
    OUTCOMES,
    OUTPUT_FORMATS,
    RAW_TEXT,
    REASON,
    REFINER,
    OutputRecord,
    RunLayout,
    mark,
    outcome_of,
    output_name_template,
    parquet_schema,
)
from prox.pipeline.stages import short_error
from prox.pipeline.stats import TaskStats, write_json_atomic
from prox.records import json_safe

GZIP_LEVEL = 1                   # output jsonl.gz: level 9 (gzip's default) took ~35 % of the engine's time
_GZIP_FAST = "prox-gzip-fast"    # its name in fsspec's compression registry (datatrove writers use fsspec)


def _register_fast_gzip() -> None:
    from fsspec.compression import compr, register_compression

    if _GZIP_FAST not in compr:
        register_compression(
            _GZIP_FAST, lambda f, mode="rb", **kw: gzip.GzipFile(fileobj=f, mode=mode, compresslevel=GZIP_LEVEL), []
        )


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
            error = f"unwritable: {outcome} record: {short_error(exc)}"
        previous = doc.metadata.get(ERROR) if outcome == "failed" else None
        doc.id = json_safe(str(doc.id))
        doc.text = json_safe(doc.text)
        doc.metadata = json_safe(doc.metadata)
        mark(doc, "failed", error if previous is None else f"{error} (was: {json_safe(previous)})"[:2000])
        writers["failed"].write(doc, rank)
        return "failed"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
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
                stats.refiner_name = stats.refiner_name or doc.metadata.get(REFINER)
                self.stat_update(outcome)
                progress.advance(1, outcome)
                yield doc
        finally:
            for writer in writers.values():
                writer.close()
        write_json_atomic(layout.task_file(rank), stats.to_dict())
        for outcome in OUTCOMES:
            tmp = layout.tmp_file(outcome, rank, fmt)
            os.makedirs(layout.outcome_dir(outcome), exist_ok=True)
            if os.path.exists(tmp):
                os.replace(tmp, layout.final_file(outcome, rank, fmt))
