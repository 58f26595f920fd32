"""`ProxReader`: the first step of `prox refine`, every input record a datatrove Document.

Every non-blank line or row becomes a Document; an unreadable one is marked failed at once
(see `prox.pipeline.inputs.read_documents`), so the writer accounts for it like any other.
"""
from __future__ import annotations

from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.inputs import InputDoc, read_documents
from prox.pipeline.layout import INPUT_META, RAW_LINE, RAW_TEXT, SOURCE, mark

REPAIRED_EXAMPLES = 3  # sources named in the warning about replaced lone surrogates


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
        replaced = docs_repaired = 0
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
                        replaced += record.lone_surrogates
                        docs_repaired += 1
                        self.stat_update("lone_surrogates_replaced", value=record.lone_surrogates)
                        self.stat_update("docs_lone_surrogates_replaced")
                        if len(repaired) < REPAIRED_EXAMPLES:
                            repaired.append(record.source)
                    yield self._document(record)
                    self.stat_update("documents" if record.error is None else "unreadable")
        finally:
            if repaired:
                logger.warning(
                    f"ProX reader: replaced {replaced} lone surrogate(s) by "
                    f"U+FFFD in {docs_repaired} document(s), e.g. {', '.join(repaired)}"
                )

    @staticmethod
    def _document(record: InputDoc) -> Document:
        metadata: dict[str, Any] = {SOURCE: record.source, INPUT_META: record.metadata, RAW_TEXT: record.text}
        doc = Document(text=record.text, id=record.id, metadata=metadata)
        if record.error is not None:
            mark(doc, "failed", record.error)
            if record.raw_line is not None:
                metadata[RAW_LINE] = record.raw_line
        return doc
