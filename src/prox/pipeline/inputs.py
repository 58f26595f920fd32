"""Input side of `prox refine`: resolve paths, then read records without losing any.

datatrove's JsonlReader logs and skips a bad line, which silently loses a document.
Here every input line becomes a record: either a document, or a *failed* record that
names the file and line (bad JSON, non-UTF-8 bytes, missing text field, truncated
compressed stream). Blank lines are not documents and are only counted.

A lone UTF-16 surrogate (a JSON ``"\\ud800"`` escape without its pair) cannot be written as
UTF-8: it is replaced by U+FFFD where it is read, in the text, the id and the other fields,
and counted (``Record.lone_surrogates``); the document goes on as usual.
"""
from __future__ import annotations

import glob
import gzip
import io
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from prox.jsonl import may_hold_lone_surrogates, replace_lone_surrogates

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES


class InputError(Exception):
    """A path that cannot be used as input (missing, unreadable, unsupported). Fatal, before any work."""


@dataclass
class Record:
    """One input record: a document, or an unreadable line (``error`` set, ``text`` is "")."""

    id: str
    text: str
    source: str                 # "<path>:<line>" (JSONL, 1-based) or "<path>:row<index>" (Parquet, 0-based)
    metadata: dict = field(default_factory=dict)
    error: str | None = None
    raw_line: str | None = None  # for an unreadable JSONL line: the line, decoded with replacement (capped)
    lone_surrogates: int = 0     # lone surrogates replaced by U+FFFD in this record when it was read

RAW_LINE_CAP = 10_000  # characters of a bad line kept in its failed record


def file_format(path: str) -> str:
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise InputError(f"unsupported input file {path!r}: expected one of {', '.join(SUPPORTED_SUFFIXES)}")


def file_stem(path: str) -> str:
    """``data/part-1.jsonl.gz`` -> ``part-1`` (used for generated ids)."""
    name = os.path.basename(path)
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


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
            file_format(raw)
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
        if file_format(path) == "parquet":
            import pyarrow.parquet as pq

            pq.ParquetFile(path)
        else:
            with _open_binary(path) as handle:
                handle.read(1)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        raise InputError(f"cannot read {path!r}: {type(exc).__name__}: {exc}") from None


def _open_binary(path: str):
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def count_records(path: str) -> int | None:
    """Cheap count for progress totals (non-blank lines / Parquet rows); None if unknown."""
    try:
        if file_format(path) == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        n = 0
        with _open_binary(path) as handle:
            for line in handle:
                if line.strip():
                    n += 1
        return n
    except Exception:  # noqa: BLE001 - a progress total is optional
        return None


def shown_path(path: str) -> str:
    """``path`` as records name it: a file name with non-UTF-8 bytes (held by Python as lone
    surrogates) shows them as U+FFFD, so every source string can be written."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def iter_records(path: str, *, text_field: str = "text", id_field: str = "id") -> Iterator[tuple[int, Record]]:
    """Yield ``(index, Record)`` for every non-blank line/row of one file, in order.

    ``index`` is the record's position in the file among non-blank records (used for
    sharding). Nothing is skipped silently: a bad line yields a Record with ``error``.
    """
    if file_format(path) == "parquet":
        yield from _iter_parquet(path, text_field, id_field)
    else:
        yield from _iter_jsonl(path, text_field, id_field)


def _make_record(data, path: str, where: str, fallback_id: str, text_field: str, id_field: str) -> Record:
    source = f"{path}:{where}"
    if not isinstance(data, dict):
        return Record(fallback_id, "", source, error=f"not_an_object: {source}: expected a JSON object, got {type(data).__name__}")
    raw_id = data.get(id_field)
    doc_id = fallback_id if raw_id is None or raw_id == "" else str(raw_id)
    if text_field not in data:
        return Record(doc_id, "", source, error=f"missing_text_field: {source}: no field {text_field!r}")
    text = data[text_field]
    if text is None:
        text = ""
    if not isinstance(text, str):
        return Record(doc_id, "", source, error=f"text_not_string: {source}: field {text_field!r} is {type(text).__name__}")
    metadata = {k: v for k, v in data.items() if k not in (text_field, id_field)}
    return Record(doc_id, text, source, metadata)


def _iter_jsonl(path: str, text_field: str, id_field: str) -> Iterator[tuple[int, Record]]:
    stem = file_stem(shown_path(path))
    index = 0
    line_no = 0
    opened, path = path, shown_path(path)
    with _open_binary(opened) as stream:
        while True:
            try:
                line = stream.readline()
            except (EOFError, OSError, zlib.error, Exception) as exc:  # noqa: BLE001 - truncated/corrupt stream
                source = f"{path}:{line_no + 1}"
                yield index, Record(
                    f"{stem}:{line_no + 1}", "", source,
                    error=f"corrupt_input: {source}: stream ends or is damaged after line {line_no} ({type(exc).__name__}: {exc})",
                )
                return
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            fallback_id = f"{stem}:{line_no}"
            source = f"{path}:{line_no}"
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield index, Record(fallback_id, "", source, error=f"non_utf8: {source}: {exc.reason} at byte {exc.start}",
                                    raw_line=line.decode("utf-8", "replace")[:RAW_LINE_CAP])
                index += 1
                continue
            try:
                data = json.loads(decoded)
            except (ValueError, RecursionError) as exc:  # RecursionError: valid JSON nested too deep for Python
                detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                yield index, Record(fallback_id, "", source, error=f"bad_json: {source}: {detail}",
                                    raw_line=decoded[:RAW_LINE_CAP])
                index += 1
                continue
            repaired = 0
            if may_hold_lone_surrogates(line):
                data, repaired = replace_lone_surrogates(data)
            line = decoded = None  # only the parsed record stays alive while it is processed (huge lines)
            record = _make_record(data, path, str(line_no), fallback_id, text_field, id_field)
            record.lone_surrogates = repaired
            yield index, record
            index += 1


def _iter_parquet(path: str, text_field: str, id_field: str) -> Iterator[tuple[int, Record]]:
    import pyarrow.parquet as pq

    stem = file_stem(shown_path(path))
    parquet = pq.ParquetFile(path)
    path = shown_path(path)
    if text_field not in parquet.schema_arrow.names:
        # every row lacks the field: one failed record per row keeps the accounting exact
        for row in range(parquet.metadata.num_rows):
            source = f"{path}:row{row}"
            yield row, Record(f"{stem}:{row}", "", source, error=f"missing_text_field: {source}: no column {text_field!r}")
        return
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=1024):
            for data in batch.to_pylist():
                yield row, _make_record(data, path, f"row{row}", f"{stem}:{row}", text_field, id_field)
                row += 1
    except Exception as exc:  # noqa: BLE001 - a damaged row group
        source = f"{path}:row{row}"
        yield row, Record(f"{stem}:{row}", "", source, error=f"corrupt_input: {source}: {type(exc).__name__}: {exc}")
