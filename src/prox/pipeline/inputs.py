"""Input side of `prox refine`: resolve paths, then read documents without losing any.

datatrove's JsonlReader logs and skips a bad line, which silently loses a document.
Here every input line becomes a document, or a *failed* one that
names the file and line (bad JSON, non-UTF-8 bytes, missing text field, truncated
compressed stream). Blank lines are not documents. The files are read by `prox.records`.

A lone UTF-16 surrogate (a JSON ``"\\ud800"`` escape without its pair) cannot be written as
UTF-8: it is replaced by U+FFFD where it is read, in the text, the id and the other fields,
and counted (``InputDoc.lone_surrogates``); the document goes on as usual.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from prox.records import (
    SUPPORTED_SUFFIXES,
    BadRecord,
    Row,
    file_format,
    file_stem,
    open_binary,
    parquet_file,
    read_records,
    shown_path,
)


class InputError(Exception):
    """A path that cannot be used as input (missing, unreadable, unsupported). Fatal, before any work."""


@dataclass
class InputDoc:
    """One input document, or an unreadable record (``error`` set, ``text`` is "")."""

    id: str
    text: str
    source: str                 # "<path>:<line>" (JSONL, 1-based) or "<path>:row<index>" (Parquet, 0-based)
    metadata: dict = field(default_factory=dict)
    error: str | None = None    # str(BadRecord): "<kind>: <source>: <detail>"
    raw_line: str | None = None  # for an unreadable JSONL line: the line, decoded with replacement (capped)
    lone_surrogates: int = 0     # lone surrogates replaced by U+FFFD in this record when it was read


def _input_format(path: str) -> str:
    kind = file_format(path)
    if kind is None:
        raise InputError(f"unsupported input file {path!r}: expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    return kind


def resolve_inputs(paths: list[str]) -> list[str]:
    """Files, folders (searched recursively for supported files) and globs -> sorted unique files.

    Raises InputError with one clear line for a missing path, an empty folder/glob,
    an unsupported file or a file that cannot be opened.
    """
    if not paths:
        raise InputError("no input given")
    files: list[str] = []
    for raw in paths:
        if any(ch in raw for ch in "*?["):
            matches = sorted(m for m in glob.glob(raw, recursive=True) if os.path.isfile(m))
            matches = [m for m in matches if m.lower().endswith(SUPPORTED_SUFFIXES)]
            if not matches:
                raise InputError(f"no input files match {raw!r}")
            files.extend(matches)
        elif os.path.isdir(raw):
            found = sorted(
                str(p) for p in Path(raw).rglob("*")
                if p.is_file() and p.name.lower().endswith(SUPPORTED_SUFFIXES) and not p.name.startswith(".")
            )
            if not found:
                raise InputError(f"folder {raw!r} holds no {', '.join(SUPPORTED_SUFFIXES)} files")
            files.extend(found)
        elif os.path.exists(raw):
            _input_format(raw)
            files.append(raw)
        else:
            raise InputError(f"input not found: {raw!r}")
    unique = list(dict.fromkeys(os.path.abspath(f) for f in files))
    for path in unique:
        _check_readable(path)
    return unique


def _check_readable(path: str) -> None:
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path!r}: permission denied")
    try:
        if _input_format(path) == "parquet":
            parquet_file(path)
        else:
            with open_binary(path) as handle:
                handle.read(1)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        raise InputError(f"cannot read {path!r}: {type(exc).__name__}: {exc}") from None


def read_documents(path: str, *, text_field: str = "text", id_field: str = "id") -> Iterator[InputDoc]:
    """Every non-blank line / row of one file as an `InputDoc`, in order. Nothing is skipped
    silently: a bad record (`prox.records.BadRecord`) becomes an InputDoc with ``error``.

    Lone surrogates are replaced by U+FFFD (counted in ``InputDoc.lone_surrogates``). The id is
    the record's ``id_field``, or ``<file stem>:<line>`` (JSONL) / ``<file stem>:<row>`` (Parquet).
    """
    stem = file_stem(shown_path(path))
    if _input_format(path) == "parquet":
        parquet = parquet_file(path)
        if text_field not in parquet.schema_arrow.names:
            # every row lacks the field: one failed record per row keeps the accounting exact
            for row in range(parquet.metadata.num_rows):
                bad = BadRecord("missing_text_field", f"{shown_path(path)}:row{row}", row, f"no column {text_field!r}")
                yield InputDoc(f"{stem}:{row}", "", bad.source, error=str(bad))
            return
    for item in read_records(path, repair_surrogates=True):
        fallback_id = f"{stem}:{item.number}"
        if isinstance(item, BadRecord):
            yield InputDoc(fallback_id, "", item.source, error=str(item), raw_line=item.raw_line)
        else:
            yield _document(item, fallback_id, text_field, id_field)


def _document(row: Row, fallback_id: str, text_field: str, id_field: str) -> InputDoc:
    data = row.data
    raw_id = data.get(id_field)
    doc_id = fallback_id if raw_id is None or raw_id == "" else str(raw_id)
    bad = None
    if text_field not in data:
        bad = BadRecord("missing_text_field", row.source, row.number, f"no field {text_field!r}")
    elif data[text_field] is not None and not isinstance(data[text_field], str):
        bad = BadRecord("text_not_string", row.source, row.number,
                        f"field {text_field!r} is {type(data[text_field]).__name__}")
    if bad is not None:
        return InputDoc(doc_id, "", row.source, error=str(bad), lone_surrogates=row.lone_surrogates)
    metadata = {k: v for k, v in data.items() if k not in (text_field, id_field)}
    return InputDoc(doc_id, data[text_field] or "", row.source, metadata, lone_surrogates=row.lone_surrogates)
