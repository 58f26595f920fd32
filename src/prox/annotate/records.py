"""SFT records and the append-only output files of `prox annotate` (with resume).

An output folder holds:

* ``sft.jsonl``: one record per training example, ``{"id", "doc_id", "stage", "prompt",
  "completion", "meta"}``. ``prompt`` is the exact refiner input (rendered by the core
  renderer), ``completion`` the target program. `prox train lm` reads this file.
* ``annotations.jsonl``: one line per input document with its outcome (``labelled``,
  ``skipped`` + reason, ``failed`` + error), the parsed scores / per-chunk programs and
  the raw teacher answers. Resume keys on the ids in this file.
* ``stats.json``: counted outcomes, token accounting and timings.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from prox.records import BadRecord, BadRecordError, dumps, read_records

SFT_FILE = "sft.jsonl"
ANNOTATIONS_FILE = "annotations.jsonl"
STATS_FILE = "stats.json"


@dataclass
class SFTRecord:
    id: str  # "<doc_id>" for doc-stage records, "<doc_id>#chunk<k>" for chunk-stage ones
    doc_id: str
    stage: str  # "doc" | "chunk"
    prompt: str  # the exact refiner input
    completion: str  # the target program
    meta: dict[str, Any] = field(default_factory=dict)
    # Set when the renderer cut the prompt's ids (a doc prompt over its id limit, 2,000 for
    # ProX): the student must train on exactly the ids it will see at refine time, not the text.
    prompt_token_ids: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_record_id(doc_id: str, index: int) -> str:
    return f"{doc_id}#chunk{index}"


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a crash mid-write) so that appending stays valid JSONL."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


def read_ids(path: Path, key: str = "id", *, unless_outcome: str | None = None) -> set[str]:
    """The ``key`` values of the complete JSON lines of ``path`` (missing file: empty).

    With ``unless_outcome``, lines whose ``outcome`` equals it are left out (and a later
    line for the same id counts again).
    """
    ids: set[str] = set()
    if not path.exists():
        return ids
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn last line: not written
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and key in record:
                if unless_outcome is not None and record.get("outcome") == unless_outcome:
                    ids.discard(str(record[key]))
                else:
                    ids.add(str(record[key]))
    return ids


class OutputFolder:
    """The append-only outputs of one annotation run, resumable.

    ``done`` is the set of document ids that already have a final outcome line
    (``labelled`` or ``skipped``); a rerun skips them and retries ``failed`` ones. SFT records already present (a crash between the two writes) are not written
    twice.
    """

    def __init__(self, out_dir: str | Path, *, overwrite: bool = False) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sft_path = self.dir / SFT_FILE
        self.annotations_path = self.dir / ANNOTATIONS_FILE
        self.stats_path = self.dir / STATS_FILE
        if overwrite:
            for path in (self.sft_path, self.annotations_path, self.stats_path):
                path.unlink(missing_ok=True)
        for path in (self.sft_path, self.annotations_path):
            _repair_tail(path)
        self.done = read_ids(self.annotations_path, unless_outcome="failed")
        self._written_records = read_ids(self.sft_path)
        self._sft = open(self.sft_path, "ab")
        self._ann = open(self.annotations_path, "ab")

    def write(self, annotation: dict[str, Any], records: Iterable[SFTRecord]) -> int:
        """Write one document's SFT records, then its outcome line. Returns records written."""
        n = 0
        for record in records:
            if record.id in self._written_records:
                continue
            self._sft.write(dumps(record.to_dict()))
            self._written_records.add(record.id)
            n += 1
        self._sft.flush()
        self._ann.write(dumps(annotation))
        self._ann.flush()
        if annotation.get("outcome") != "failed":
            self.done.add(str(annotation["id"]))
        return n

    def write_stats(self, stats: dict[str, Any]) -> None:
        tmp = self.stats_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(stats, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.stats_path)

    def read_stats(self) -> dict[str, Any]:
        if not self.stats_path.exists():
            return {}
        try:
            return json.loads(self.stats_path.read_text(encoding="utf-8"))
        except ValueError:
            return {}

    def close(self) -> None:
        self._sft.close()
        self._ann.close()

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_sft_records(path: str | Path, *, stage: str | None = None) -> list[SFTRecord]:
    """Read an ``sft.jsonl`` (or a folder holding one); optionally one stage only."""
    path = Path(path)
    if path.is_dir():
        path = path / SFT_FILE

    out: list[SFTRecord] = []
    for row in read_records(path):
        if isinstance(row, BadRecord):
            raise BadRecordError(row)
        record = row.data
        missing = [k for k in ("id", "prompt", "completion") if k not in record]
        if missing:
            raise ValueError(f"{row.source}: SFT record lacks {', '.join(missing)}")
        rec = SFTRecord(
            id=str(record["id"]),
            doc_id=str(record.get("doc_id", record["id"])),
            stage=str(record.get("stage", "chunk")),
            prompt=record["prompt"],
            completion=record["completion"],
            meta=record.get("meta") or {},
            prompt_token_ids=record.get("prompt_token_ids"),
        )
        if stage is None or rec.stage == stage:
            out.append(rec)
    return out
