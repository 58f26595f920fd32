"""`prox annotate`: documents in, SFT records out (teacher-labelled or gold-labelled).

Per batch of documents: render the refiner inputs with the core renderer, ask the teacher
(doc: two rubric prompts; chunk: three prompt families per chunk), turn the answers into
labels / programs, write the SFT records and one outcome line per document. Every
document ends as ``labelled``, ``skipped`` (with a reason) or ``failed`` (with an error);
failed documents are retried by a rerun, the others are skipped (resume).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol, Sequence

from prox.annotate.gold import chunk_programs_for_row, doc_gold_program
from prox.annotate.programs import DEFAULT_MAX_REMOVED_SHARE, annotate_chunk
from prox.annotate.records import OutputFolder, SFTRecord, chunk_record_id
from prox.annotate.scores import doc_verdict
from prox.annotate.templates import CHUNK_FAMILIES, DOC_EDU, DOC_FORMAT, TeacherTemplates
from prox.render import wrap_chunk

TASKS = ("doc", "chunk")
DEFAULT_BATCH_DOCS = 16
# Answer budgets: the rubrics ask for <= 100 words of justification and a score line; a
# chunk program is a handful of calls.
DOC_ANSWER_TOKENS = 256
CHUNK_ANSWER_TOKENS = 256


class Teacher(Protocol):
    """Answers chat requests. One answer per request, in order; None for a failed request."""

    def ask(self, requests: Sequence[list[dict[str, str]]], *, max_tokens: int) -> list[str | None]:
        ...

    def stats(self) -> dict[str, Any]:
        ...


@dataclass
class Document:
    id: str
    text: str
    error: str | None = None  # an unreadable input record
    row: dict | None = None  # the raw input row (gold labels live here)


@dataclass
class AnnotateOptions:
    task: str = "chunk"
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE
    batch_docs: int = DEFAULT_BATCH_DOCS
    limit: int | None = None  # stop after this many *new* documents
    source: str = "teacher"  # recorded in each record's meta: "teacher" | "gold"
    doc_answer_tokens: int = DOC_ANSWER_TOKENS
    chunk_answer_tokens: int = CHUNK_ANSWER_TOKENS

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {self.task!r}")
        if not 0.0 < self.max_removed_share <= 1.0:
            raise ValueError(f"max_removed_share must be in (0, 1], not {self.max_removed_share}")
        if self.batch_docs < 1:
            raise ValueError(f"batch_docs must be >= 1, not {self.batch_docs}")


def _new_documents(docs: Iterable[Document], out: OutputFolder, counts: Counter, limit: int | None) -> Iterator[Document]:
    seen: set[str] = set()
    n = 0
    for doc in docs:
        if limit is not None and n >= limit:
            break
        counts["docs_read"] += 1
        if doc.id in out.done:
            counts["docs_already_done"] += 1
            continue
        if doc.id in seen:
            counts["docs_duplicate_id"] += 1
            continue
        seen.add(doc.id)
        n += 1
        yield doc


def _batches(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def cut_prompt_ids(prompt: Any) -> list[int] | None:
    """The ids of a prompt the renderer cut (see `SFTRecord.prompt_token_ids`); None otherwise."""
    return list(prompt.token_ids) if getattr(prompt, "truncated", False) and prompt.token_ids else None


def _outcome(doc: Document, outcome: str, **fields: Any) -> dict[str, Any]:
    return {"id": doc.id, "outcome": outcome, **fields}


class Annotator:
    """Runs one annotation pass into an output folder. Use `run(docs)`."""

    def __init__(
        self,
        out: OutputFolder,
        renderer: Any,
        *,
        options: AnnotateOptions,
        teacher: Teacher | None = None,
        templates: TeacherTemplates | None = None,
    ) -> None:
        if options.source == "teacher" and teacher is None:
            raise ValueError("a teacher is needed unless the labels come from gold")
        self.out = out
        self.renderer = renderer
        self.options = options
        self.teacher = teacher
        self.templates = templates or (TeacherTemplates.load() if teacher is not None else None)
        self.counts: Counter = Counter()
        self.meta_common = {"source": options.source, "preset": getattr(renderer, "preset", None),
                            "chunk_budget": getattr(renderer, "chunk_budget", None)}

    # -- driver ----------------------------------------------------------------------------
    def run(self, docs: Iterable[Document]) -> dict[str, Any]:
        start = time.perf_counter()
        for batch in _batches(_new_documents(docs, self.out, self.counts, self.options.limit), self.options.batch_docs):
            readable = []
            for doc in batch:
                if doc.error is not None:
                    self._finish(doc, _outcome(doc, "failed", error=doc.error), [])
                elif not doc.text.strip():
                    self._finish(doc, _outcome(doc, "skipped", reason="empty_text"), [])
                else:
                    readable.append(doc)
            if not readable:
                continue
            if self.options.source == "gold":
                self._gold_batch(readable)
            elif self.options.task == "doc":
                self._doc_batch(readable)
            else:
                self._chunk_batch(readable)
            self.out.write_stats(self.stats(time.perf_counter() - start))
        stats = self.stats(time.perf_counter() - start)
        self.out.write_stats(stats)
        return stats

    def _finish(self, doc: Document, annotation: dict[str, Any], records: list[SFTRecord]) -> None:
        outcome = annotation["outcome"]
        self.counts[f"docs_{outcome}"] += 1
        if outcome == "skipped":
            self.counts[f"skip_reason.{annotation['reason']}"] += 1
        if outcome == "failed":
            self.counts[f"fail_reason.{str(annotation.get('error', '')).split(':')[0][:60]}"] += 1
        self.counts["records_written"] += self.out.write(annotation, records)

    def stats(self, seconds: float) -> dict[str, Any]:
        return {
            "task": self.options.task,
            "source": self.options.source,
            "counts": dict(sorted(self.counts.items())),
            "teacher": self.teacher.stats() if self.teacher is not None else None,
            "seconds": round(seconds, 3),
            "totals_in_folder": {"documents_done": len(self.out.done)},
        }

    # -- doc stage -------------------------------------------------------------------------
    def _doc_batch(self, docs: list[Document]) -> None:
        requests = []
        for doc in docs:
            requests.append(self.templates.messages(DOC_EDU, document=doc.text))
            requests.append(self.templates.messages(DOC_FORMAT, document=doc.text))
        answers = self.teacher.ask(requests, max_tokens=self.options.doc_answer_tokens)
        prompts = self.renderer.doc_prompts([d.text for d in docs])
        for i, doc in enumerate(docs):
            edu_answer = self.templates.full_answer(DOC_EDU, answers[2 * i])
            fmt_answer = self.templates.full_answer(DOC_FORMAT, answers[2 * i + 1])
            if edu_answer is None or fmt_answer is None:
                self._finish(doc, _outcome(doc, "failed", error="teacher_request_failed"), [])
                continue
            verdict = doc_verdict(edu_answer, fmt_answer)
            teacher = {"edu_answer": edu_answer, "format_answer": fmt_answer}
            if verdict.keep is None:
                self._finish(doc, _outcome(doc, "skipped", reason=verdict.reason, edu=verdict.edu,
                                           format=verdict.fmt, teacher=teacher), [])
                continue
            self.counts[f"label.{verdict.program}"] += 1
            record = SFTRecord(doc.id, doc.id, "doc", prompts[i].text, verdict.program,
                               {**self.meta_common, "edu": verdict.edu, "format": verdict.fmt},
                               prompt_token_ids=cut_prompt_ids(prompts[i]))
            self._finish(doc, _outcome(doc, "labelled", program=verdict.program, edu=verdict.edu,
                                       format=verdict.fmt, teacher=teacher), [record])

    # -- chunk stage -----------------------------------------------------------------------
    def _chunk_batch(self, docs: list[Document]) -> None:
        rendered = self.renderer.render_chunks_batch([d.text for d in docs])
        requests = []
        for chunks, _ in rendered:
            for chunk in chunks:
                block = wrap_chunk(chunk.text)
                requests.extend(self.templates.messages(name, chunk=block) for name in CHUNK_FAMILIES)
        answers = self.teacher.ask(requests, max_tokens=self.options.chunk_answer_tokens) if requests else []
        pos = 0
        n_fam = len(CHUNK_FAMILIES)
        for doc, (chunks, prompts) in zip(docs, rendered):
            lines = doc.text.split("\n")
            doc_answers = answers[pos : pos + n_fam * len(chunks)]
            pos += n_fam * len(chunks)
            if any(a is None for a in doc_answers):
                self._finish(doc, _outcome(doc, "failed", error="teacher_request_failed"), [])
                continue
            records, chunk_log = [], []
            for k, (chunk, prompt) in enumerate(zip(chunks, prompts)):
                fam_answers = [self.templates.full_answer(name, a)
                               for name, a in zip(CHUNK_FAMILIES, doc_answers[n_fam * k : n_fam * (k + 1)])]
                raw = "\n".join(lines[chunk.first_line : chunk.last_line + 1])
                result = annotate_chunk(fam_answers, first_line=chunk.first_line, last_line=chunk.last_line,
                                        chunk_text=raw, max_removed_share=self.options.max_removed_share)
                self.counts.update({f"chunk.{key}": v for key, v in result.counts.items()})
                self.counts["chunks_seen"] += 1
                entry = {"first_line": chunk.first_line, "last_line": chunk.last_line,
                         "program": result.program, "removed_share": round(result.removed_share, 4),
                         "teacher": dict(zip((f.removesuffix(".txt") for f in CHUNK_FAMILIES), fam_answers))}
                if result.rejected:
                    self.counts[f"chunk_rejected.{result.rejected}"] += 1
                    entry["rejected"] = result.rejected
                else:
                    self.counts["chunks_labelled"] += 1
                    self.counts["chunks_skip_chunk" if result.program == "skip_chunk()" else "chunks_with_edits"] += 1
                    records.append(self._chunk_record(doc, k, chunk, prompt, result.program, len(chunks)))
                chunk_log.append(entry)
            if records:
                self._finish(doc, _outcome(doc, "labelled", chunks=chunk_log), records)
            else:
                self._finish(doc, _outcome(doc, "skipped", reason="all_chunks_rejected", chunks=chunk_log), [])

    def _chunk_record(self, doc: Document, k: int, chunk: Any, prompt: Any, program: str, n_chunks: int) -> SFTRecord:
        meta = {**self.meta_common, "chunk_index": k, "n_chunks": n_chunks,
                "first_line": chunk.first_line, "last_line": chunk.last_line}
        return SFTRecord(chunk_record_id(doc.id, k), doc.id, "chunk", prompt.text, program, meta)

    # -- gold labels -------------------------------------------------------------------------
    def _gold_batch(self, docs: list[Document]) -> None:
        if self.options.task == "doc":
            prompts = self.renderer.doc_prompts([d.text for d in docs])
            for doc, prompt in zip(docs, prompts):
                keep = (doc.row or {}).get("keep")
                if not isinstance(keep, bool):
                    self._finish(doc, _outcome(doc, "skipped", reason="no_gold_keep_label"), [])
                    continue
                program = doc_gold_program(keep)
                self.counts[f"label.{program}"] += 1
                record = SFTRecord(doc.id, doc.id, "doc", prompt.text, program, dict(self.meta_common),
                                   prompt_token_ids=cut_prompt_ids(prompt))
                self._finish(doc, _outcome(doc, "labelled", program=program), [record])
            return
        rendered = self.renderer.render_chunks_batch([d.text for d in docs])
        for doc, (chunks, prompts) in zip(docs, rendered):
            row = doc.row or {}
            if not isinstance(row.get("noisy_lines"), list):
                self._finish(doc, _outcome(doc, "skipped", reason="no_gold_line_labels"), [])
                continue
            programs = chunk_programs_for_row(doc.text, row["noisy_lines"], chunks)
            records = []
            for k, (chunk, prompt, program) in enumerate(zip(chunks, prompts, programs)):
                self.counts["chunks_seen"] += 1
                self.counts["chunks_labelled"] += 1
                self.counts["chunks_skip_chunk" if program == "skip_chunk()" else "chunks_with_edits"] += 1
                records.append(self._chunk_record(doc, k, chunk, prompt, program, len(chunks)))
            self._finish(doc, _outcome(doc, "labelled", programs=programs), records)


def documents_from_file(path: str, *, text_field: str = "text", id_field: str = "id", keep_row: bool = False) -> Iterator[Document]:
    """Documents of a JSONL(.gz/.zst) or Parquet file; unreadable lines become failed documents."""
    from prox.pipeline.inputs import read_documents

    for record in read_documents(path, text_field=text_field, id_field=id_field):
        yield Document(record.id, record.text, record.error, record.metadata if keep_row else None)
