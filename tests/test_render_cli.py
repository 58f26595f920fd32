"""`prox render` round trip: JSONL(.gz) in, prompts and ids out, bad records counted."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import LLAMA2_TOKENIZER, REFERENCE
from prox.cli import app

PROMPTS_FILE = REFERENCE / "prompts-public.jsonl.gz"

pytestmark = pytest.mark.skipif(not PROMPTS_FILE.is_file() or not LLAMA2_TOKENIZER.is_dir(),
                                reason="../shared fixtures (reference prompts, llama2 tokenizer) absent")

BAD_LINES = [
    "{not json",
    "[1, 2, 3]",
    json.dumps({"id": "no-text"}),
    json.dumps({"id": "null-text", "text": None}),
]


@pytest.fixture(scope="module")
def vectors() -> list[dict]:
    with gzip.open(PROMPTS_FILE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _write_input(path: Path, vectors: list[dict]) -> None:
    lines = [json.dumps({"id": v["id"], "text": v["text"], "meta": {"category": v["category"]}})
             for v in vectors]
    lines[3:3] = BAD_LINES  # bad records in the middle of the corpus
    lines.insert(10, "")  # a blank line is not a record
    data = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(data)
    else:
        path.write_text(data, encoding="utf-8")
    # one line of invalid UTF-8
    with (gzip.open(path, "ab") if path.suffix == ".gz" else path.open("ab")) as fh:
        fh.write(b'{"id": "bytes", "text": "\xff\xfe"}\n')


def _read_output(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _run(args: list[str]):
    result = CliRunner().invoke(app, ["render", *args])
    assert result.exit_code == 0, result.output
    return result


def _split(records: list[dict]):
    good = [r for r in records if "error" not in r]
    bad = [r for r in records if "error" in r]
    return good, bad


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl"])
def test_chunk_stage_round_trip(tmp_path, vectors, suffix):
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    _write_input(src, vectors)
    result = _run([str(src), "-o", str(out), "--stage", "chunk", "--tokenizer", str(LLAMA2_TOKENIZER),
                   "--batch-size", "16"])
    good, bad = _split(_read_output(out))
    assert [r["id"] for r in good] == [v["id"] for v in vectors]  # order kept
    for rec, vec in zip(good, vectors):
        assert rec["text"] == vec["text"] and rec["meta"] == {"category": vec["category"]}
        assert rec["prompts"] == [c["prompt"] for c in vec["chunks"]]
        assert rec["prompt_token_ids"] == [c["prompt_ids"] for c in vec["chunks"]]
        assert [(c["first_line"], c["last_line"], c["budget_tokens"]) for c in rec["chunks"]] == [
            (c["first_line"], c["last_line"], c["budget_tokens"]) for c in vec["chunks"]]
    assert sorted(r["error"] for r in bad) == sorted(
        ["malformed_json", "not_an_object", "missing_text", "text_not_string", "bad_utf8"])
    assert {r.get("id") for r in bad if r["error"] in ("missing_text", "text_not_string")} == {"no-text", "null-text"}
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["rendered"] == 73 and summary["prompts"] == 173 and summary["records"] == 78
    assert summary["errors"] == {"bad_utf8": 1, "malformed_json": 1, "missing_text": 1,
                                 "not_an_object": 1, "text_not_string": 1}


def test_doc_stage_round_trip(tmp_path, vectors):
    src, out = tmp_path / "in.jsonl.gz", tmp_path / "out.jsonl.gz"
    _write_input(src, vectors)
    _run([str(src), "-o", str(out), "--stage", "doc", "--tokenizer", str(LLAMA2_TOKENIZER), "--preset", "prox"])
    good, bad = _split(_read_output(out))
    assert len(good) == 73 and len(bad) == 5
    for rec, vec in zip(good, vectors):
        assert rec["prompts"] == [vec["doc_prompt"]]
        assert rec["prompt_token_ids"] == [vec["doc_prompt_ids"]]
        assert rec["truncated"] == vec["doc_prompt_truncated"]


def test_options_budget_max_ids_system_prompt(tmp_path, vectors):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": vectors[0]["text"]}) + "\n", encoding="utf-8")
    out = tmp_path / "chunks.jsonl"
    _run([str(src), "-o", str(out), "--stage", "chunk", "--tokenizer", str(LLAMA2_TOKENIZER), "--budget", "100",
          "--system-prompt", "Refine."])
    [rec] = _read_output(out)
    assert len(rec["prompts"]) > 1
    assert all(p.startswith("<s>[INST] <<SYS>>\nRefine.\n<</SYS>>\n\n[doc]\n") for p in rec["prompts"])
    out = tmp_path / "doc.jsonl"
    _run([str(src), "-o", str(out), "--stage", "doc", "--tokenizer", str(LLAMA2_TOKENIZER), "--doc-max-ids", "10",
          "--preset", "plain"])
    [rec] = _read_output(out)
    assert rec["prompts"] == [vectors[0]["text"]] and len(rec["prompt_token_ids"][0]) == 10
    assert rec["truncated"] is True


def test_bad_arguments_exit_cleanly(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    runner = CliRunner()
    bad_stage = runner.invoke(app, ["render", str(src), "-o", str(tmp_path / "o.jsonl"), "--stage", "line",
                                    "--tokenizer", str(LLAMA2_TOKENIZER)])
    assert bad_stage.exit_code == 2 and "doc" in bad_stage.output
    no_template = runner.invoke(app, ["render", str(src), "-o", str(tmp_path / "o.jsonl"), "--stage", "doc",
                                      "--tokenizer", str(LLAMA2_TOKENIZER), "--preset", "model"])
    assert no_template.exit_code == 2 and "chat_template" in no_template.stderr
