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
    """Keeps every document; answers the chunks of a document holding ``marker`` with one fixed program."""

    name = "fixed-program"

    def __init__(self, chunk_program: str, marker: str = ""):
        self.chunk_program, self.marker = chunk_program, marker

    def doc_programs(self, texts):
        return ["keep_doc()" for _ in texts]

    def chunk_programs(self, texts):
        return [[self.chunk_program if self.marker in text else "keep_chunk()"] for text in texts]


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


def test_lone_surrogates_are_replaced_when_read_and_counted(tmp_path):
    # issue 13: one record with a lone surrogate stopped the run (orjson: "surrogates not allowed")
    rows = dev_rows(3)
    lines = [json.dumps(rows[0]),
             '{"id": "s", "text": "bad \\ud800 surrogate. A plain paragraph of ordinary English text."}',
             json.dumps(rows[1]),
             # in the id, in another field (and its key), and a low one at the end; an escaped pair is not lone
             '{"id": "id\\udc00x", "text": "pair \\ud83d\\ude00 ok, lone \\udfff", "tag\\ud801": ["\\ud802"]}',
             json.dumps(rows[2])]
    src = tmp_path / "sur.jsonl"
    src.write_text("\n".join(lines) + "\n")
    done = _cli("refine", str(src), "-o", str(tmp_path / "out"))  # the builtin refiner, as in the report
    assert done.returncode == 0, done.stderr
    assert "replaced 5 lone surrogate(s) by U+FFFD in 2 document(s)" in done.stderr
    out = tmp_path / "out"
    records = {r["id"]: r for o in ("kept", "dropped", "failed") for r in read_outcome(out, o)}
    assert sorted(records) == sorted([r["id"] for r in rows] + ["s", "id\ufffdx"])
    assert records["s"]["metadata"]["raw_text"] == "bad \ufffd surrogate. A plain paragraph of ordinary English text."
    assert records["s"].get("error") is None  # goes on as a normal document
    other = records["id\ufffdx"]
    assert other["metadata"]["raw_text"] == "pair \U0001F600 ok, lone \ufffd"
    assert other["metadata"]["tag\ufffd"] == ["\ufffd"]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["balanced"] and stats["documents"]["docs_in"] == 5 and stats["documents"]["failed"] == 0
    assert stats["input_repairs"]["lone_surrogates_replaced"] == 5 and stats["input_repairs"]["documents"] == 2


@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_unwritable_records_become_failed_records_not_a_crash(tmp_path, output_format):
    # what the reader cannot repair: a refiner's output with a lone surrogate (here a normalize
    # target that lands in the kept text and in chunk_programs), input fields orjson refuses
    rows = dev_rows(4)
    assert not any("qz" in r["text"] for r in rows)
    rows[1]["text"] += "\nqz marks this document"
    rows[2]["big"] = 10**30                      # over 64 bits (orjson)
    rows[3]["deep"] = json.loads("[" * 300 + "]" * 300)  # over orjson's 254 levels
    src = tmp_path / "w.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refiner = _ProgramRefiner('normalize(source_str="qz", target_str="\ud800")', marker="qz")
    stats = run([src], tmp_path / "out", refiner=refiner, output_format=output_format)
    out = tmp_path / "out"
    failed = {r["id"]: r for r in read_outcome(out, "failed")}
    kept = {r["id"]: r for r in read_outcome(out, "kept")}
    assert stats["balanced"] and stats["documents"]["docs_in"] == 4
    assert set(failed) | set(kept) == {r["id"] for r in rows}
    bad = failed[rows[1]["id"]]
    assert bad["error"].startswith("unwritable: kept record: ")
    assert "surrogate" in bad["error"]
    assert bad["text"] == rows[1]["text"]  # the original text, as for every failed record
    programs = bad["metadata"]["chunk_programs"]
    assert programs == ['normalize(source_str="qz", target_str="\ufffd")']
    if output_format == "jsonl":  # Parquet keeps other fields as a JSON string (Python's json: no limits)
        assert failed[rows[2]["id"]]["error"] == "unwritable: kept record: TypeError: Integer exceeds 64-bit range"
        assert failed[rows[2]["id"]]["metadata"]["big"] == str(10**30)
        assert failed[rows[3]["id"]]["error"] == "unwritable: kept record: TypeError: Recursion limit reached"
        assert set(failed) == {rows[1]["id"], rows[2]["id"], rows[3]["id"]}
    else:
        assert set(failed) == {rows[1]["id"]}
    assert stats["failed_reasons"] == {"unwritable": len(failed)}
    # the program cache holds the surrogate program exactly: a rerun serves it from the cache
    cache = [json.loads(line) for line in (out / ".prox" / "cache" / "chunk-00000.jsonl").read_bytes().splitlines() if line]
    assert [c["program"] for c in cache if c["id"] == rows[1]["id"]] == [['normalize(source_str="qz", target_str="\ud800")']]
    from prox.pipeline.cache import ProgramCache, cache_key

    reloaded = ProgramCache(str(out / ".prox" / "cache" / "chunk-00000.jsonl"), "chunk")
    assert reloaded.loaded == 4 and reloaded.corrupt_lines == 0
    assert reloaded.get(cache_key(rows[1]["id"], rows[1]["text"])) == ['normalize(source_str="qz", target_str="\ud800")']


def test_non_utf8_file_name_and_stats_with_surrogates(tmp_path):
    from prox.pipeline.stats import write_json_atomic

    write_json_atomic(str(tmp_path / "s.json"), {"k\ud800": "v\udfff"})
    assert json.loads((tmp_path / "s.json").read_bytes()) == {"k\ud800": "v\udfff"}
    folder = os.fsencode(tmp_path)
    with open(folder + b"/caf\xe9.jsonl", "wb") as handle:  # a Latin-1 file name: Python holds it as "caf\udce9"
        handle.write("".join(json.dumps(r) + "\n" for r in dev_rows(2)).encode())
    stats = run([os.fsdecode(folder + b"/caf\xe9.jsonl")], tmp_path / "out")
    assert stats["balanced"] and stats["documents"]["failed"] == 0 and stats["documents"]["docs_in"] == 2
    sources = [r["metadata"]["source"] for o in ("kept", "dropped") for r in read_outcome(tmp_path / "out", o)]
    assert sorted(sources) == [f"{tmp_path}/caf\ufffd.jsonl:1", f"{tmp_path}/caf\ufffd.jsonl:2"]


def test_max_lines_fails_documents_with_too_many_lines(tmp_path):
    rows = dev_rows(20)
    n_lines = {r["id"]: r["text"].count("\n") + 1 for r in rows}
    bound = sorted(n_lines.values())[10]
    src = tmp_path / "l.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = run([src], tmp_path / "out", max_lines=bound)
    failed = {r["id"]: r["error"] for r in read_outcome(tmp_path / "out", "failed")}
    assert failed == {i: f"too_large: {n} lines > max_lines={bound}" for i, n in n_lines.items() if n > bound}
    assert stats["balanced"] and stats["settings"]["max_lines"] == bound
    # a run.json written before max_lines existed resumes (its value then was the default)
    from prox.pipeline import RunError

    run_json = tmp_path / "out2" / ".prox" / "run.json"
    run([src], tmp_path / "out2")
    identity = json.loads(run_json.read_text())
    del identity["max_lines"]
    run_json.write_text(json.dumps(identity))
    assert run([src], tmp_path / "out2")["balanced"]
    with pytest.raises(RunError, match="max_lines"):
        run([src], tmp_path / "out2", max_lines=bound)
