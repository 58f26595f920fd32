"""Program cache: model outputs survive a killed run, so a rerun does not regenerate them.

One append-only JSONL file per (stage, task): ``{"key", "id", "stage", "program"}`` lines,
flushed after each batch. The key is the document id plus a hash of its text,
so a changed input document is never served a stale program. A line cut short by a kill
is ignored when the cache is loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from prox.records import dumps


def cache_key(doc_id: str, text: str) -> str:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
    return f"{doc_id}\x1f{digest}"


class ProgramCache:
    def __init__(self, path: str, stage: str):
        self.path = path
        self.stage = stage
        self.programs: dict[str, Any] = {}
        self.loaded = 0
        self.corrupt_lines = 0
        self._handle = None
        if os.path.exists(path):
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    self.programs[entry["key"]] = entry["program"]
                    self.loaded += 1
                except (ValueError, KeyError, TypeError):
                    self.corrupt_lines += 1

    def get(self, key: str) -> Any | None:
        return self.programs.get(key)

    def add_batch(self, entries: list[tuple[str, str, Any]]) -> None:
        """Append ``(key, doc_id, program)`` entries and make them durable."""
        if not entries:
            return
        if self._handle is None:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._handle = open(self.path, "ab")
            # a line cut short by a kill must not glue onto the next entry
            if self._handle.tell() > 0:
                self._handle.write(b"\n")
        # prox.records.dumps: UTF-8, or ASCII escapes for an entry with a lone surrogate (a program
        # or id a refiner returned), so every entry reads back exactly
        payload = b"".join(
            dumps({"key": key, "id": doc_id, "stage": self.stage, "program": program})
            for key, doc_id, program in entries
        )
        self._handle.write(payload)
        # flushed to the OS: survives a killed process (SIGKILL, OOM, preemption); fsync per
        # batch would also survive a machine crash but cost ~13 ms a batch (too much for fast refiners)
        self._handle.flush()
        for key, _, program in entries:
            self.programs[key] = program

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
