"""The output contract of `prox refine`: the run folder and the output record.

The one owner of both; the pipeline writes through it and the report, `prox compare` and the
builtin's distillation (``prox train builtin`` on a refine folder) read through it. Nothing
else joins or parses these paths.

Layout of OUTDIR::

    kept/00000.jsonl.gz      refined documents        (or .parquet with output_format="parquet")
    dropped/00000.jsonl.gz   dropped documents, with top-level "reason"
    failed/00000.jsonl.gz    documents that could not be processed, with top-level "error"
    stats.json               counts by outcome and reason, text sizes, programs, throughput
    .prox/                   run.json (the run's settings), cache/ (programs, for resume),
                             tasks/ (per-task stats), logs/ (datatrove logs, per-step stats and
                             completion markers), tmp/ (outputs of unfinished tasks)

An output record (`OutputRecord`; JSONL shown, one per line)::

    {"id": ..., "text": <refined text (kept) or the input text>, "reason" | "error": ...,
     "metadata": {<the input record's other fields>, "raw_text", "doc_program", "chunk_programs",
                  "execution", "source", "doc_execution" (kept, both stages), "raw_line" (unreadable line)}}

Parquet holds the same record with a fixed schema (`parquet_schema`): the input's other fields
are one JSON string ``metadata.input_metadata``, the execution summaries are JSON strings.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from prox.records import file_format, load_records

OUTCOMES = ("kept", "dropped", "failed")
WORK_DIR_NAME = ".prox"
STATS_FILE = "stats.json"


def _task_name(rank: int) -> str:
    return f"{rank:05d}"


def cache_file(cache_dir: str, stage: str, rank: int) -> str:
    """One task's program cache of one stage (see `prox.pipeline.cache`)."""
    return os.path.join(cache_dir, f"{stage}-{_task_name(rank)}.jsonl")


OUTPUT_SUFFIXES = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}  # by output format
OUTPUT_FORMATS = tuple(OUTPUT_SUFFIXES)


def output_name(rank: int, output_format: str) -> str:
    """The file one task writes into each outcome folder."""
    return _task_name(rank) + OUTPUT_SUFFIXES[output_format]


def output_name_template(output_format: str) -> str:
    """`output_name` as a datatrove writer's ``output_filename`` (it pads ``${rank}`` to 5 digits)."""
    return "${rank}" + OUTPUT_SUFFIXES[output_format]


class RunLayout:
    """The paths of one run folder (``output_dir``) and its work folder (default ``output_dir/.prox``)."""

    def __init__(self, output_dir: str | os.PathLike, work_dir: str | os.PathLike | None = None):
        self.output_dir = os.fspath(output_dir)
        self.work_dir = os.fspath(work_dir) if work_dir is not None else os.path.join(self.output_dir, WORK_DIR_NAME)

    def __repr__(self) -> str:
        return f"RunLayout({self.output_dir!r}, work_dir={self.work_dir!r})"

    # -- what users and other tools read ----------------------------------------------------
    def outcome_dir(self, outcome: str) -> str:
        return os.path.join(self.output_dir, outcome)

    @property
    def stats_file(self) -> str:
        return os.path.join(self.output_dir, STATS_FILE)

    def user_outputs(self) -> list[str]:
        """The outcome folders and stats.json (what --overwrite removes, besides the work folder)."""
        return [self.outcome_dir(o) for o in OUTCOMES] + [self.stats_file]

    def has_outputs(self) -> bool:
        return any(os.path.isdir(self.outcome_dir(o)) for o in OUTCOMES)

    def output_files(self, outcome: str) -> list[str]:
        """The record files (JSONL or Parquet) of one outcome folder, by name."""
        folder = self.outcome_dir(outcome)
        if not os.path.isdir(folder):
            return []
        return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
                if file_format(name) is not None and os.path.isfile(os.path.join(folder, name))]

    def output_glob(self, outcome: str) -> str:
        """A glob of one outcome's files relative to ``output_dir`` (for a dataset card)."""
        names = [os.path.basename(f) for f in self.output_files(outcome)]
        if any(n.endswith(".parquet") for n in names):
            return f"{outcome}/*.parquet"
        if any(n.endswith(".jsonl") for n in names):
            return f"{outcome}/*.jsonl"
        return f"{outcome}/*.jsonl.gz"

    def final_file(self, outcome: str, rank: int, output_format: str) -> str:
        return os.path.join(self.outcome_dir(outcome), output_name(rank, output_format))

    # -- the work folder ---------------------------------------------------------------------
    @property
    def run_file(self) -> str:
        return os.path.join(self.work_dir, "run.json")

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.work_dir, "cache")

    @property
    def tasks_dir(self) -> str:
        return os.path.join(self.work_dir, "tasks")

    def task_file(self, rank: int) -> str:
        """The outcome writer's stats of one task."""
        return os.path.join(self.tasks_dir, f"{_task_name(rank)}.json")

    @property
    def logs_dir(self) -> str:
        """datatrove's logging_dir: logs/, stats/ (per-step stats per task), completions/."""
        return os.path.join(self.work_dir, "logs")

    @property
    def task_logs_dir(self) -> str:
        """datatrove's log file of every task (task_00000.log, ...)."""
        return os.path.join(self.logs_dir, "logs")

    def step_stats_file(self, rank: int) -> str:
        """datatrove's per-step stats of one task (written by its executor when the task ends)."""
        return os.path.join(self.logs_dir, "stats", f"{_task_name(rank)}.json")

    @property
    def merge_logs_dir(self) -> str:
        """logging_dir of the Slurm follow-up job that writes stats.json."""
        return os.path.join(self.work_dir, "logs-stats")

    def tmp_dir(self, outcome: str) -> str:
        return os.path.join(self.work_dir, "tmp", outcome)

    def tmp_file(self, outcome: str, rank: int, output_format: str) -> str:
        """Where a task writes its outcome file until the task is done."""
        return os.path.join(self.tmp_dir(outcome), output_name(rank, output_format))


# ---------------------------------------------------------------------------------------------
# The document in flight: metadata keys the reader and the stages set and the writer reads

OUTCOME, REASON, ERROR = "prox_outcome", "prox_reason", "prox_error"
SOURCE, INPUT_META, RAW_LINE = "prox_source", "prox_input", "prox_raw_line"
DOC_PROGRAM, CHUNK_PROGRAMS = "prox_doc_program", "prox_chunk_programs"
EXECUTION, DOC_EXECUTION = "prox_execution", "prox_doc_execution"
RAW_TEXT = "prox_raw_text"
REFINER = "prox_refiner"  # the name of the refiner a stage gave the document to


def mark(doc: Any, outcome: str, detail: str) -> None:
    """Mark a datatrove Document dropped (detail = reason) or failed (detail = error)."""
    doc.metadata[OUTCOME] = outcome
    doc.metadata[REASON if outcome == "dropped" else ERROR] = detail


def outcome_of(doc: Any) -> str:
    """kept, dropped or failed; a document no step marked is kept."""
    return doc.metadata.get(OUTCOME) or "kept"


# ---------------------------------------------------------------------------------------------
# The output record

# metadata fields prox writes beside the input record's own fields
PROX_FIELDS = ("raw_text", "doc_program", "chunk_programs", "execution", "source", "doc_execution", "raw_line")


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _dict_or_none(value: Any) -> dict | None:
    value = _json_value(value)
    return value if isinstance(value, dict) else None


@dataclass
class OutputRecord:
    """One document of a refine output folder.

    ``text`` is the refined text of a kept document and the input text otherwise; ``raw_text``
    is the input text (None only in a record that lacks it). ``reason`` is set for dropped,
    ``error`` for failed documents. The execution summaries (`ExecutionResult.summary()`) of
    the stages that executed a program are ``doc_execution`` and ``chunk_execution``;
    ``execution`` is the last one.
    """

    id: Any
    outcome: str
    text: str
    raw_text: str | None = None
    reason: str | None = None
    error: str | None = None
    doc_program: str | None = None
    chunk_programs: list[str] | None = None  # None only in a record that lacks them
    doc_execution: dict | None = None
    chunk_execution: dict | None = None
    source: str | None = None
    raw_line: str | None = None  # an unreadable input line (decoded with replacement, capped)
    input_metadata: dict = field(default_factory=dict)  # the input record's other fields

    @property
    def execution(self) -> dict | None:
        return self.chunk_execution if self.chunk_execution is not None else self.doc_execution

    @classmethod
    def from_document(cls, doc: Any) -> "OutputRecord":
        """The record a datatrove Document in flight becomes (see the metadata keys above)."""
        meta = doc.metadata
        outcome = outcome_of(doc)
        raw = meta.get(RAW_TEXT, doc.text)
        return cls(
            id=doc.id, outcome=outcome, text=doc.text if outcome == "kept" else raw, raw_text=raw,
            reason=meta.get(REASON) if outcome == "dropped" else None,
            error=meta.get(ERROR) if outcome == "failed" else None,
            doc_program=meta.get(DOC_PROGRAM), chunk_programs=list(meta.get(CHUNK_PROGRAMS) or []),
            doc_execution=meta.get(DOC_EXECUTION), chunk_execution=meta.get(EXECUTION),
            source=meta.get(SOURCE), raw_line=meta.get(RAW_LINE), input_metadata=meta.get(INPUT_META) or {},
        )

    def to_row(self, output_format: str = "jsonl") -> dict[str, Any]:
        """The written form: JSONL (the input's fields flat in ``metadata``) or Parquet (`parquet_schema`)."""
        execution = self.execution
        prox_meta: dict[str, Any] = {
            "raw_text": self.raw_text, "doc_program": self.doc_program, "chunk_programs": list(self.chunk_programs or []),
            "execution": execution, "source": self.source,
        }
        if self.outcome == "kept" and self.doc_execution is not None and self.chunk_execution is not None:
            prox_meta["doc_execution"] = self.doc_execution
        if self.raw_line is not None:
            prox_meta["raw_line"] = self.raw_line
        if output_format == "jsonl":
            metadata = {**{k: v for k, v in self.input_metadata.items() if k not in prox_meta}, **prox_meta}
        else:
            metadata = {**prox_meta, "input_metadata": json.dumps(self.input_metadata, ensure_ascii=False, default=str)}
            metadata["execution"] = json.dumps(execution, ensure_ascii=False, default=str) if execution is not None else None
            metadata["doc_execution"] = (json.dumps(self.doc_execution, default=str)
                                         if self.doc_execution is not None else None)
            metadata.setdefault("raw_line", None)
        row: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.outcome == "dropped":
            row["reason"] = self.reason
        elif self.outcome == "failed":
            row["error"] = self.error
        row["metadata"] = metadata
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any], outcome: str) -> "OutputRecord":
        """Read a written record of ``outcome``'s folder back (JSONL or Parquet form; tolerant of
        records with missing or odd fields: what is not usable is None)."""
        meta = _json_value(row.get("metadata"))
        meta = meta if isinstance(meta, dict) else {}
        execution = _dict_or_none(meta.get("execution"))
        doc_execution = _dict_or_none(meta.get("doc_execution"))
        if execution is not None and execution.get("stage") == "doc":
            doc_execution, chunk_execution = doc_execution or execution, None
        else:
            chunk_execution = execution
        if "input_metadata" in meta:  # Parquet
            input_meta = _json_value(meta["input_metadata"])
            input_meta = input_meta if isinstance(input_meta, dict) else {}
        else:
            input_meta = {k: v for k, v in meta.items() if k not in PROX_FIELDS}
        programs = meta.get("chunk_programs")
        if isinstance(programs, str):
            programs = [programs]
        raw, text = meta.get("raw_text"), row.get("text")
        return cls(
            id=row.get("id"), outcome=outcome, text=text if isinstance(text, str) else "",
            raw_text=raw if isinstance(raw, str) else None,
            reason=row.get("reason") if outcome == "dropped" else None,
            error=row.get("error") if outcome == "failed" else None,
            doc_program=meta.get("doc_program") if isinstance(meta.get("doc_program"), str) else None,
            chunk_programs=[str(p) for p in programs] if isinstance(programs, list) else None,
            doc_execution=doc_execution, chunk_execution=chunk_execution,
            source=meta.get("source"), raw_line=meta.get("raw_line"), input_metadata=input_meta,
        )


def parquet_schema(outcome: str):
    """The Arrow schema of one outcome's Parquet files."""
    import pyarrow as pa

    metadata = pa.struct([
        ("raw_text", pa.string()), ("doc_program", pa.string()), ("chunk_programs", pa.list_(pa.string())),
        ("execution", pa.string()), ("source", pa.string()), ("doc_execution", pa.string()),
        ("raw_line", pa.string()), ("input_metadata", pa.string()),
    ])
    fields = [("id", pa.string()), ("text", pa.string())]
    if outcome == "dropped":
        fields.append(("reason", pa.string()))
    elif outcome == "failed":
        fields.append(("error", pa.string()))
    fields.append(("metadata", metadata))
    return pa.schema(fields)


def read_outputs(output_dir: str | os.PathLike, *outcomes: str) -> Iterator[OutputRecord]:
    """The records of a refine output folder: of ``outcomes`` (default all), outcome by outcome,
    file by file. A line that is not a record raises `prox.records.BadRecordError`."""
    layout = RunLayout(output_dir)
    for outcome in outcomes or OUTCOMES:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        for path in layout.output_files(outcome):
            for row in load_records(path):
                yield OutputRecord.from_row(row, outcome)


def read_stats(output_dir: str | os.PathLike) -> dict:
    """The folder's stats.json ({} when it is missing or unreadable)."""
    path = RunLayout(output_dir).stats_file
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


__all__ = [
    "OUTCOMES", "OUTPUT_FORMATS", "OutputRecord", "PROX_FIELDS", "RunLayout", "cache_file", "mark", "outcome_of",
    "output_name", "output_name_template", "parquet_schema", "read_outputs", "read_stats",
]
