"""`prox execute`: JSONL in, refined JSONL out, bad lines recorded and counted."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REFERENCE
from prox.cli import app
from prox.records import BadRecord, JsonlWriter, Row, dumps, load_records, read_records, write_jsonl

VECTORS = REFERENCE / "executor-public.jsonl.gz"
TEXT = "\n".join(f"line{i} alpha beta gamma delta" for i in range(6))

runner = CliRunner()


def write_lines(path: Path, lines: list[str]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def read_out(path: Path) -> list[dict]:
    return list(load_records(path))


def test_execute_command_records_and_counts(tmp_path):
    src = tmp_path / "in.jsonl.gz"
    write_lines(src, [
        json.dumps({"id": "a", "text": TEXT, "program": "remove_lines(line_start=0, line_end=1)", "lang": "en"}),
        "{this is not json",
        json.dumps({"id": "b", "text": TEXT}),
        json.dumps({"id": "c", "text": "too short", "program": "skip_chunk()"}),
        json.dumps({"id": "d", "text": TEXT, "program": "x()\ny()"}),
        json.dumps({"id": "e", "text": 3, "program": ""}),
        json.dumps(["a list"]),
        "",
    ])
    out = tmp_path / "out" / "refined.jsonl"
    result = runner.invoke(app, ["execute", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "7 records: 2 kept, 1 dropped (too_few_words 1), 0 failed, 4 errors" in result.output
    assert "1 programs ignored" in result.output
    recs = read_out(out)
    assert len(recs) == 7
    a = recs[0]
    assert a["id"] == "a" and a["lang"] == "en" and a["raw_text"] == TEXT
    assert a["text"] == "\n".join(TEXT.split("\n")[2:])
    assert a["execution"]["removed_ranges"] == [[0, 1]] and a["execution"]["outcome"] == "kept"
    assert recs[1]["error"].startswith(f"bad_json: {src}:2: ") and recs[1]["line"] == 2
    assert recs[2]["error"] == "missing field(s): program" and recs[2]["id"] == "b"
    assert recs[3]["text"] == "" and recs[3]["execution"]["drop_reason"] == "too_few_words"
    assert recs[4]["text"] == TEXT and recs[4]["execution"]["program_ignored"]
    assert "not a string" in recs[5]["error"]
    assert recs[6]["error"].startswith(f"not_an_object: {src}:7: ")


def test_execute_command_doc_stage_and_options(tmp_path):
    src = tmp_path / "in.jsonl"
    write_lines(src, [json.dumps({"id": i, "text": TEXT, "program": p})
                      for i, p in enumerate(["keep_doc()", "drop_doc()", "```python\ndrop_doc()\n```"])])
    out = tmp_path / "out.jsonl.zst"
    result = runner.invoke(app, ["execute", str(src), "-o", str(out), "--stage", "doc"])
    assert result.exit_code == 0, result.output
    assert [r["text"] == "" for r in load_records(out)] == [False, True, True]
    assert "1 kept, 2 dropped (drop_doc 2)" in result.output
    # thresholds from the command line
    src2 = tmp_path / "in2.jsonl"
    write_lines(src2, [json.dumps({"id": 1, "text": TEXT, "program": "remove_lines(0, 3)"})])
    result = runner.invoke(app, ["execute", str(src2), "-o", str(tmp_path / "o2.jsonl"), "--min-words", "20"])
    assert "1 dropped (too_few_words 1)" in result.output
    result = runner.invoke(app, ["execute", str(src2), "-o", str(tmp_path / "o3.jsonl"), "--mode", "fast"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["execute", str(src2), "-o", str(tmp_path / "o3.jsonl"), "--max-errors", "0"])
    assert result.exit_code != 0


@pytest.mark.skipif(not VECTORS.exists(), reason=f"reference vectors not found at {VECTORS}")
def test_execute_command_reference_mode_reproduces_vectors(tmp_path):
    with gzip.open(VECTORS, "rt", encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    chunk = [r for r in recs if r["stage"] == "chunk"]
    src = tmp_path / "vectors.jsonl.gz"
    write_jsonl(src, ({"id": r["id"], "text": r["text"], "program": r["program"]} for r in chunk))
    out = tmp_path / "out.jsonl.gz"
    result = runner.invoke(app, ["execute", str(src), "-o", str(out), "--mode", "reference"])
    assert result.exit_code == 0, result.output
    assert "11 failed" in result.output and "0 errors" in result.output
    got = read_out(out)
    assert len(got) == len(chunk)
    for want, rec in zip(chunk, got):
        assert rec["id"] == want["id"] and rec["raw_text"] == want["text"]
        if want["expected_error"]:
            assert rec["error"].startswith("ZeroDivisionError") and rec["execution"]["outcome"] == "failed"
        else:
            assert rec["text"] == want["expected_output"]
            assert rec["execution"]["branch"] == want["details"]["branch"]


def test_jsonl_helpers_keep_text_exact(tmp_path):
    records = [{"t": "naïve \u2028 \x00 😀"}, {"t": "\ud800 lone surrogate"}, {"t": "\r\n\x85"}]
    for name in ("a.jsonl", "a.jsonl.gz", "a.jsonl.zst"):
        path = tmp_path / name
        assert write_jsonl(path, records) == 3
        assert list(load_records(path)) == records
    assert dumps({"t": "é"}) == '{"t": "é"}\n'.encode("utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"t": "\xff"}\n{"t": 1}\n')
    rows = list(read_records(bad))
    assert isinstance(rows[0], BadRecord) and str(rows[0]).startswith(f"non_utf8: {bad}:1: ")
    assert rows[1] == Row({"t": 1}, f"{bad}:2", 2)
    with JsonlWriter(tmp_path / "deep" / "dir" / "w.jsonl") as w:
        w.write({"x": 1})
    assert list(load_records(tmp_path / "deep" / "dir" / "w.jsonl")) == [{"x": 1}]
