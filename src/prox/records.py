"""Reading and writing records: JSON Lines (plain, .gz, .zst) and Parquet, and the bad record.

The one owner of record files. Every reader here goes through `read_records`, which yields, in
file order, a `Row` for every readable record and a `BadRecord` for every line or row that is
not one (truncated or damaged stream, bytes that are not UTF-8, text that is not JSON, JSON that
is not an object). Nothing is skipped silently; blank lines are not records. Callers decide what
a bad record means: `prox refine` makes it a failed document, `prox execute` and `prox render`
write it as an error record, `load_records` (label files, eval sets, corpora) raises.

Writing keeps text exact: non-ASCII stays UTF-8, and a record holding a string that UTF-8
cannot encode (a lone surrogate from a JSON ``\\ud800`` escape) is written with ASCII escapes.
Lone surrogates are the one way valid JSON holds such a string (orjson and Arrow refuse them):
`read_records(..., repair_surrogates=True)` replaces them by U+FFFD as it reads,
`json_safe` makes any value writable as a last resort.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES
RAW_LINE_CAP = 10_000  # characters of an unreadable line kept in its bad record
PARQUET_BATCH_ROWS = 1024  # rows decoded at a time when reading Parquet


# ---------------------------------------------------------------------------------------------
# What a reader yields


@dataclass
class Row:
    """One readable record of a file."""

    data: dict
    source: str               # "<path>:<line>" (JSONL, 1-based) or "<path>:row<index>" (Parquet, 0-based)
    number: int               # that line number or row index
    lone_surrogates: int = 0  # replaced by U+FFFD when read (only with repair_surrogates=True)


@dataclass
class BadRecord:
    """A line or row of a file that is not a record, or a record a caller cannot use.

    ``kind`` names what is wrong: ``corrupt_input`` (the stream ends or is damaged here),
    ``non_utf8``, ``bad_json``, ``not_an_object``; callers that check fields add their own
    kinds (`prox refine`: ``missing_text_field``, ``text_not_string``). ``str(bad)`` is the
    one spelling of it: ``"<kind>: <source>: <detail>"``.
    """

    kind: str
    source: str
    number: int
    detail: str
    raw_line: str | None = None  # the line, decoded with replacement (capped), when it could not be parsed

    def __str__(self) -> str:
        return f"{self.kind}: {self.source}: {self.detail}"


class BadRecordError(ValueError):
    """Raised by `load_records` for a bad record: a user's file to fix, not a document to account for."""

    def __init__(self, bad: BadRecord) -> None:
        super().__init__(str(bad))
        self.bad = bad


# ---------------------------------------------------------------------------------------------
# Files


def file_format(path: str | Path) -> str | None:
    """``"jsonl"`` or ``"parquet"`` by suffix (case-insensitive); None for any other file."""
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    return None


def file_stem(path: str) -> str:
    """``data/part-1.jsonl.gz`` -> ``part-1``."""
    name = os.path.basename(path)
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def shown_path(path: str | Path) -> str:
    """``path`` as records name it: a file name with non-UTF-8 bytes (held by Python as lone
    surrogates) shows them as U+FFFD, so every source string can be written."""
    path = str(path)
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _compression(path: str | Path) -> str | None:
    name = str(path).lower()
    if name.endswith(".gz"):
        return "gz"
    if name.endswith(".zst") or name.endswith(".zstd"):
        return "zst"
    return None


def open_binary(path: str | Path, mode: str = "rb") -> IO[bytes]:
    """Open ``path`` for binary reading ("rb") or writing ("wb"), by extension; "-" is stdio."""
    if mode not in ("rb", "wb"):
        raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")
    if str(path) == "-":
        return (sys.stdin.buffer if mode == "rb" else sys.stdout.buffer)
    kind = _compression(path)
    if kind == "gz":
        return gzip.open(path, mode)
    if kind == "zst":
        import zstandard

        if mode == "rb":  # the zstd reader cannot iterate lines by itself
            return io.BufferedReader(zstandard.open(path, "rb"), buffer_size=1 << 20)
        return zstandard.open(path, "wb")
    return open(path, mode)


def parquet_file(path: str | Path):
    """The ``pyarrow.parquet.ParquetFile`` (its schema and row count are read, not its rows)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path)


def count_records(path: str | Path) -> int | None:
    """Cheap count for progress totals (non-blank lines / Parquet rows); None if unknown."""
    try:
        if file_format(path) == "parquet":
            return parquet_file(path).metadata.num_rows
        n = 0
        with open_binary(path) as handle:
            for line in handle:
                if line.strip():
                    n += 1
        return n
    except Exception:  # noqa: BLE001 - a progress total is optional
        return None


# ---------------------------------------------------------------------------------------------
# Reading


def read_records(path: str | Path, *, repair_surrogates: bool = False) -> Iterator[Row | BadRecord]:
    """Every record of one file, in order: a `Row` per readable record, a `BadRecord` per bad one.

    Parquet by suffix, JSON Lines otherwise. ``repair_surrogates``: replace lone surrogates
    by U+FFFD in every string of a JSONL record (counted in ``Row.lone_surrogates``).
    """
    if file_format(path) == "parquet":
        yield from _read_parquet(path)
    else:
        yield from _read_jsonl(path, repair_surrogates)


def _read_jsonl(path: str | Path, repair_surrogates: bool) -> Iterator[Row | BadRecord]:
    shown = shown_path(path)
    line_no = 0
    with open_binary(path) as stream:
        while True:
            try:
                line = stream.readline()
            except Exception as exc:  # noqa: BLE001 - EOFError, OSError, zlib.error, zstd errors: a damaged stream
                yield BadRecord("corrupt_input", f"{shown}:{line_no + 1}", line_no + 1,
                                f"stream ends or is damaged after line {line_no} ({type(exc).__name__}: {exc})")
                return
            if not line:
                return
            line_no += 1
            if not line.strip():
                continue
            source = f"{shown}:{line_no}"
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadRecord("non_utf8", source, line_no, f"{exc.reason} at byte {exc.start}",
                                raw_line=line.decode("utf-8", "replace")[:RAW_LINE_CAP])
                continue
            try:
                data = json.loads(decoded)
            except (ValueError, RecursionError) as exc:  # RecursionError: valid JSON nested too deep for Python
                detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                yield BadRecord("bad_json", source, line_no, detail, raw_line=decoded[:RAW_LINE_CAP])
                continue
            repaired = 0
            if repair_surrogates and may_hold_lone_surrogates(line):
                data, repaired = replace_lone_surrogates(data)
            line = decoded = None  # only the parsed record stays alive while it is processed (huge lines)
            if not isinstance(data, dict):
                yield BadRecord("not_an_object", source, line_no, f"expected a JSON object, got {type(data).__name__}")
                continue
            yield Row(data, source, line_no, repaired)


def _read_parquet(path: str | Path) -> Iterator[Row | BadRecord]:
    parquet = parquet_file(path)
    shown = shown_path(path)
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for data in batch.to_pylist():
                yield Row(data, f"{shown}:row{row}", row)
                row += 1
    except Exception as exc:  # noqa: BLE001 - a damaged row group
        yield BadRecord("corrupt_input", f"{shown}:row{row}", row, f"{type(exc).__name__}: {exc}")


def load_records(path: str | Path) -> Iterator[dict]:
    """Every record of ``path`` (JSONL or Parquet); a bad one raises `BadRecordError` naming its place.

    For label files, eval sets and corpora, where a bad line is the user's error to fix, not a
    document to account for (`prox refine` records those as failed documents instead).
    """
    for item in read_records(path):
        if isinstance(item, BadRecord):
            raise BadRecordError(item)
        yield item.data


# ---------------------------------------------------------------------------------------------
# Lone surrogates and values no writer accepts

REPLACEMENT_CHARACTER = "\ufffd"  # what a lone surrogate becomes (Unicode's replacement character)
_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a UTF-16 surrogate (\\uD800-\\uDFFF). UTF-8 bytes cannot encode a surrogate, so
# a decoded line holds a lone one only if its raw bytes hold such an escape (pairs are joined).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
JSON_SAFE_MAX_DEPTH = 64  # nesting `json_safe` keeps; orjson refuses more than 254 levels
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1  # the integers orjson writes


def may_hold_lone_surrogates(raw: bytes) -> bool:
    """False when the raw JSON line cannot decode to a string with a lone surrogate (cheap screen)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def _repair(text: str) -> tuple[str, int]:
    if text.isascii():
        return text, 0
    return _SURROGATE.subn(REPLACEMENT_CHARACTER, text)


def replace_lone_surrogates(value: Any) -> tuple[Any, int]:
    """``value`` with every lone surrogate replaced by U+FFFD, and how many were replaced.

    Strings, and the strings inside lists and dicts (keys included) as ``json.loads`` builds
    them; containers are repaired in place (iteratively: any nesting depth). After
    ``json.loads`` every surrogate left in a string is lone (escaped pairs are joined).
    """
    if isinstance(value, str):
        return _repair(value)
    count = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    fixed, n = _repair(item)
                    if n:
                        node[i], count = fixed, count + n
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            rebuilt, changed = {}, False
            for key, item in node.items():
                if isinstance(key, str):
                    fixed_key, n = _repair(key)
                    if n:
                        key, count, changed = fixed_key, count + n, True
                if isinstance(item, str):
                    fixed, n = _repair(item)
                    if n:
                        item, count, changed = fixed, count + n, True
                elif isinstance(item, (list, dict)):
                    stack.append(item)
                rebuilt[key] = item
            if changed:
                node.clear()
                node.update(rebuilt)
    return value, count


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that every JSON writer here accepts (orjson, ``json``, Arrow strings).

    Lone surrogates become U+FFFD, integers outside 64 bits become their decimal string,
    dict keys become strings, other non-JSON values become ``str(value)``, and nesting past
    ``JSON_SAFE_MAX_DEPTH`` is replaced by a short note. For records that failed to write.
    """
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _UINT64_MAX else str(value)
    if isinstance(value, str):
        return _repair(value)[0]
    if isinstance(value, (dict, list, tuple)) and _depth >= JSON_SAFE_MAX_DEPTH:
        return f"<{type(value).__name__} nested deeper than {JSON_SAFE_MAX_DEPTH} levels: not written>"
    if isinstance(value, dict):
        return {_repair(str(k))[0]: json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    return _repair(str(value))[0]


# ---------------------------------------------------------------------------------------------
# Writing


def dumps(record: Any, *, default: Any = None) -> bytes:
    """One JSON line (with the trailing newline) as UTF-8 bytes; ``default`` as in ``json.dumps``."""
    text = json.dumps(record, ensure_ascii=False, default=default)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape this record
        data = json.dumps(record, ensure_ascii=True, default=default).encode("ascii")
    return data + b"\n"


class JsonlWriter:
    """``with JsonlWriter(path) as w: w.write(record)``; .gz/.zst by extension, "-" for stdout."""

    def __init__(self, path: str | Path, *, default: Any = None):
        self.path = path
        self.default = default
        parent = Path(str(path)).parent
        if str(path) != "-" and not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_binary(path, "wb")
        self.count = 0

    def write(self, record: Any) -> None:
        self._fh.write(dumps(record, default=self.default))
        self.count += 1

    def close(self) -> None:
        if self._fh is sys.stdout.buffer:
            self._fh.flush()
        else:
            self._fh.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_jsonl(path: str | Path, records: Iterable[Any], *, default: Any = None) -> int:
    """Write all ``records``; return how many."""
    with JsonlWriter(path, default=default) as writer:
        for record in records:
            writer.write(record)
        return writer.count


__all__ = [
    "BadRecord", "BadRecordError", "JSONL_SUFFIXES", "JsonlWriter", "PARQUET_SUFFIXES", "REPLACEMENT_CHARACTER",
    "Row", "SUPPORTED_SUFFIXES", "count_records", "dumps", "file_format", "file_stem", "json_safe", "load_records",
    "may_hold_lone_surrogates", "open_binary", "parquet_file", "read_records", "replace_lone_surrogates",
    "shown_path", "write_jsonl",
]
