"""Bad inputs become counted failed/ records (with file and line), never a crash mid-corpus."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_refine_e2e import FAKE, dev_rows, read_outcome, run

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_malformed_lines_missing_fields_non_utf8_empty_and_gigantic(tmp_path):
    rows = dev_rows(6)
    good = [json.dumps(r).encode() for r in rows]
    lines = [
        good[0],
        b'{"id": "broken", "text": "unterminated',          # line 2: bad JSON
        good[1],
        b'{"id": "no-text", "body": "hello"}',              # line 4: missing text field
        b'{"id": "bad-bytes", "text": "caf\xe9 \xff"}',     # line 5: not UTF-8
        b"",                                                # blank line: not a document
        b'{"id": "empty", "text": ""}',                     # line 7: empty document
        json.dumps({"id": "huge", "text": "word " * 300_000}).encode(),  # line 8: gigantic
        b'["a", "list"]',                                   # line 9: not an object
        b'{"id": "num", "text": 42}',                       # line 10: text not a string
        good[2],
    ]
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    stats = run([src], tmp_path / "out", max_chars=1_000_000)

    failed = {r["id"]: r for r in read_outcome(tmp_path / "out", "failed")}
    dropped = {r["id"]: r for r in read_outcome(tmp_path / "out", "dropped")}
    kept = {r["id"]: r for r in read_outcome(tmp_path / "out", "kept")}
    path = str(src.resolve())
    assert failed["mixed:2"]["error"].startswith(f"bad_json: {path}:2:")
    assert "unterminated" in failed["mixed:2"]["metadata"]["raw_line"]
    assert failed["no-text"]["error"] == f"missing_text_field: {path}:4: no field 'text'"
    assert failed["mixed:5"]["error"].startswith(f"non_utf8: {path}:5:")
    assert failed["huge"]["error"].startswith("too_large: 1500000 characters")
    assert failed["huge"]["text"] == "word " * 300_000  # original text kept in failed/
    assert failed["mixed:9"]["error"].startswith("not_an_object")
    assert failed["num"]["error"].startswith("text_not_string")
    assert dropped["empty"]["reason"] == "empty_text"
    assert set(kept) | {k for k in dropped if k != "empty"} == {r["id"] for r in rows[:3]}
    assert stats["documents"] == {"docs_in": 10, "kept": len(kept), "dropped": len(dropped), "failed": 6}
    assert stats["failed_reasons"] == {"bad_json": 1, "missing_text_field": 1, "non_utf8": 1, "too_large": 1,
                                       "not_an_object": 1, "text_not_string": 1}


def test_truncated_gzip_keeps_what_was_readable(tmp_path):
    rows = dev_rows(30)
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(data[: len(data) * 2 // 3])
    stats = run([src], tmp_path / "out")
    failed = read_outcome(tmp_path / "out", "failed")
    assert len(failed) == 1 and failed[0]["error"].startswith("corrupt_input:")
    readable = read_outcome(tmp_path / "out", "kept") + read_outcome(tmp_path / "out", "dropped")
    ids = [r["id"] for r in readable]
    assert 0 < len(ids) < 30
    assert sorted(ids) == sorted(r["id"] for r in rows[: len(ids)])  # the readable prefix, nothing lost before the cut
    assert stats["balanced"] and stats["documents"]["docs_in"] == len(ids) + 1


def test_refiner_exception_fails_only_the_bad_document(tmp_path):
    rows = dev_rows(12)
    rows[5]["text"] += "\nPOISON line for the refiner"
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = run([src], tmp_path / "out", batch_size=4, refiner_options={"fail_on": "POISON"})
    failed = read_outcome(tmp_path / "out", "failed")
    assert [r["id"] for r in failed] == [rows[5]["id"]]
    assert failed[0]["error"].startswith("refiner_error: doc stage: RuntimeError: refiner cannot handle")
    assert stats["documents"]["kept"] + stats["documents"]["dropped"] == 11
    assert stats["programs"]["refiner_batch_failures"] == 1


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)])}
    return subprocess.run([sys.executable, "-c", "from prox.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_cli_bad_path_and_unreadable_file_give_one_error_line(tmp_path):
    missing = _cli("refine", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: input not found: {str(tmp_path / 'nope.jsonl')!r}"]
    assert "Traceback" not in missing.stderr

    fake_parquet = tmp_path / "bad.parquet"
    fake_parquet.write_bytes(b"this is not parquet")
    bad = _cli("refine", str(fake_parquet), "-o", str(tmp_path / "o"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: cannot read") and len(bad.stderr.strip().splitlines()) == 1

    unknown = _cli("refine", str(fake_parquet), "-o", str(tmp_path / "o"), "--refiner", "nosuchrefiner")
    assert unknown.returncode == 2 and "unknown refiner" in unknown.stderr


def test_cli_runs_and_reports(tmp_path):
    rows = dev_rows(8)
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = _cli("refine", str(src), "-o", str(tmp_path / "o"), "--refiner", FAKE, "-O", "min_doc_words=120")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("8 documents: kept")
    assert "Traceback" not in done.stderr and "INFO" not in done.stderr
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["refiner"]["options"] == {"min_doc_words": 120}
    helped = _cli("refine", "--help")
    assert helped.returncode == 0 and "Examples" in helped.stdout and "--stages" in helped.stdout


class _ProgramRefiner:
    """Keeps every document and answers every chunk with one fixed program."""

    name = "fixed-program"

    def __init__(self, chunk_program: str):
        self.chunk_program = chunk_program

    def doc_programs(self, texts):
        return ["keep_doc()" for _ in texts]

    def chunk_programs(self, texts):
        return [[self.chunk_program] for _ in texts]


def test_reference_mode_growth_bound_fails_only_that_document(tmp_path):
    # issue 13: in reference mode this normalize used to build a 4 GB string (MemoryError, task lost)
    rows = dev_rows(3)
    assert not any("qz" in r["text"] for r in rows)
    rows.insert(1, {"id": "blowup", "text": "qz " * 200_000})
    src = tmp_path / "g.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refiner = _ProgramRefiner('normalize(source_str="qz", target_str="' + "b" * 20_000 + '")')
    stats = run([src], tmp_path / "out", refiner=refiner, mode="reference")
    failed = read_outcome(tmp_path / "out", "failed")
    assert [r["id"] for r in failed] == ["blowup"]
    assert failed[0]["error"].startswith("reference_failed: chunk stage: growth_bound: the normalize on program line 1")
    assert failed[0]["text"] == "qz " * 200_000 and failed[0]["metadata"]["execution"]["outcome"] == "failed"
    others = read_outcome(tmp_path / "out", "kept") + read_outcome(tmp_path / "out", "dropped")
    assert sorted(r["id"] for r in others) == sorted(r["id"] for r in rows if r["id"] != "blowup")
    assert stats["balanced"] and stats["failed_reasons"] == {"reference_failed": 1}
