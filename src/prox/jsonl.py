"""Small JSON Lines helpers: plain, .gz or .zst, read tolerantly, written safely.

Reading never stops on a bad line: `read_jsonl` yields ``(line_no, record, error)`` and
the caller counts and records the error. Writing keeps text exact: non-ASCII stays
UTF-8, and a string that is not encodable as UTF-8 (a lone surrogate from a JSON
``\\ud800`` escape) falls back to ASCII escapes for that record only.

Lone surrogates are the one way valid JSON holds a string that UTF-8 cannot encode (and that
orjson and Arrow refuse): `may_hold_lone_surrogates` screens a raw line for the escape,
`replace_lone_surrogates` repairs a decoded record (U+FFFD), `json_safe` makes any value
writable as a last resort.
"""
from __future__ import annotations

import gzip
import io
import json
import re
import sys
from pathlib import Path
from typing import IO, Any, Iterable, Iterator


def _compression(path: str | Path) -> str | None:
    name = str(path)
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


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield ``(line_no, record, None)`` per JSON object line, or ``(line_no, None, error)``.

    Blank lines are skipped. A line that is not valid UTF-8 JSON, or not a JSON object,
    yields an error string instead of raising.
    """
    with open_binary(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
                yield line_no, None, f"malformed JSON line: {type(exc).__name__}: {str(exc)[:200]}"
                continue
            if not isinstance(record, dict):
                yield line_no, None, f"JSON line is a {type(record).__name__}, not an object"
                continue
            yield line_no, record, None


def load_records(path: str | Path) -> Iterator[dict]:
    """Every record of ``path``; a bad line raises ``ValueError`` naming ``path:line``.

    For label files and other inputs where a bad line is the user's error to fix, not a
    document to account for (the refine pipeline records those as failed documents instead).
    """
    for line_no, record, error in read_jsonl(path):
        if error is not None:
            raise ValueError(f"{path}:{line_no}: {error}")
        yield record


def iter_records(path: str | Path) -> Iterator[dict]:
    """Only the well-formed records of ``path`` (for callers that do their own counting)."""
    for _, record, _ in read_jsonl(path):
        if record is not None:
            yield record


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


def dumps(record: Any) -> bytes:
    """One JSON line (with the trailing newline) as UTF-8 bytes."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape this record
        data = json.dumps(record, ensure_ascii=True).encode("ascii")
    return data + b"\n"


class JsonlWriter:
    """``with JsonlWriter(path) as w: w.write(record)``; .gz/.zst by extension."""

    def __init__(self, path: str | Path):
        self.path = path
        parent = Path(str(path)).parent
        if str(path) != "-" and not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_binary(path, "wb")
        self.count = 0

    def write(self, record: Any) -> None:
        self._fh.write(dumps(record))
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


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Write all ``records``; return how many."""
    with JsonlWriter(path) as writer:
        for record in records:
            writer.write(record)
        return writer.count


__all__ = ["open_binary", "read_jsonl", "iter_records", "dumps", "JsonlWriter", "write_jsonl",
           "REPLACEMENT_CHARACTER", "may_hold_lone_surrogates", "replace_lone_surrogates", "json_safe"]
