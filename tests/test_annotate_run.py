"""`prox annotate` end to end: gold-label records on real pages, resume, failed-document
retry, and teacher annotation against a real local llama.cpp server (SmolLM2-135M)."""
from __future__ import annotations

import gzip
import itertools
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import BENCHMARKS, LLAMA2_TOKENIZER, SHARED
from prox.annotate.records import OutputFolder, load_sft_records, read_ids
from prox.annotate.run import AnnotateOptions, Annotator, Document
from prox.annotate.teacher import OpenAITeacher
from prox.cli import app
from prox.executor import execute
from prox.refiners import join_chunk_programs
from prox.render import PromptRenderer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import llama_server  # noqa: E402,F401  (pytest fixture)


def _need_shared() -> None:
    if not (BENCHMARKS.exists() and LLAMA2_TOKENIZER.exists()):
        pytest.skip(f"shared data not found at {SHARED}")


def _rows(name: str, n: int, pred=lambda r: True) -> list[dict]:
    with gzip.open(BENCHMARKS / name, "rt", encoding="utf-8") as fh:
        return list(itertools.islice((r for r in map(json.loads, fh) if pred(r)), n))


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gold_chunk_records_remove_exactly_the_noisy_lines(tmp_path):
    _need_shared()
    rows = _rows("lines-public-train.jsonl.gz", 6, lambda r: r["view"] == "dclm" and r["noisy_lines"])
    src = _write_jsonl(tmp_path / "gold.jsonl", rows)
    result = CliRunner().invoke(app, ["annotate", "--from-gold", str(src), "-o", str(tmp_path / "out"),
                                      "--task", "chunk", "--tokenizer", str(LLAMA2_TOKENIZER), "--chunk-budget", "400"])
    assert result.exit_code == 0, result.output
    renderer = PromptRenderer(LLAMA2_TOKENIZER, preset="prox", chunk_budget=400, with_ids=False)
    records = load_sft_records(tmp_path / "out")
    by_doc: dict[str, list] = {}
    for record in records:
        by_doc.setdefault(record.doc_id, []).append(record)
    assert set(by_doc) == {r["id"] for r in rows}
    assert any(len(recs) > 1 for recs in by_doc.values())  # some page spans several chunks
    for row in rows:
        recs = sorted(by_doc[row["id"]], key=lambda r: r.meta["chunk_index"])
        prompts = renderer.chunk_prompts(row["text"])
        assert [r.prompt for r in recs] == [p.text for p in prompts]  # the exact refiner input
        out = execute(row["text"], join_chunk_programs([r.completion for r in recs]), stage="chunk")
        removed = {i for a, b in out.removed_ranges for i in range(a, b + 1)}
        lines = row["text"].split("\n")
        assert set(row["noisy_lines"]) <= removed
        assert all(not lines[i].strip() for i in removed - set(row["noisy_lines"]))  # only blank lines bridged


def test_gold_doc_records(tmp_path):
    _need_shared()
    rows = _rows("docs-public.jsonl.gz", 8)
    renderer = PromptRenderer(LLAMA2_TOKENIZER, preset="prox", with_ids=False)
    docs = [Document(r["id"], r["text"], row={"keep": r["keep"]}) for r in rows]
    with OutputFolder(tmp_path) as out:
        stats = Annotator(out, renderer, options=AnnotateOptions(task="doc", source="gold")).run(docs)
    records = {r.id: r for r in load_sft_records(tmp_path)}
    assert stats["counts"]["docs_labelled"] == len(rows)
    for row in rows:
        assert records[row["id"]].completion == ("keep_doc()" if row["keep"] else "drop_doc()")
        assert records[row["id"]].prompt == renderer.doc_prompt(row["text"]).text


def test_resume_skips_finished_documents_and_repairs_a_torn_tail(tmp_path):
    _need_shared()
    rows = _rows("lines-public-dev.jsonl.gz", 5, lambda r: r["view"] == "dclm")
    renderer = PromptRenderer(LLAMA2_TOKENIZER, preset="prox", with_ids=False)

    def docs():
        return [Document(r["id"], r["text"], row={"noisy_lines": r["noisy_lines"]}) for r in rows]

    with OutputFolder(tmp_path) as out:
        first = Annotator(out, renderer, options=AnnotateOptions(task="chunk", source="gold", limit=3)).run(docs())
    assert first["counts"]["docs_labelled"] == 3
    n_records = len(load_sft_records(tmp_path))
    with open(tmp_path / "sft.jsonl", "a") as fh:  # a crash in the middle of a write
        fh.write('{"id": "torn", "prompt": "half')
    with OutputFolder(tmp_path) as out:
        second = Annotator(out, renderer, options=AnnotateOptions(task="chunk", source="gold")).run(docs())
    assert second["counts"]["docs_already_done"] == 3
    assert second["counts"]["docs_labelled"] == 2
    records = load_sft_records(tmp_path)  # parses: the torn line is gone
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) and len(ids) > n_records
    assert {r.doc_id for r in records} == {r["id"] for r in rows}
    assert read_ids(tmp_path / "annotations.jsonl") == {r["id"] for r in rows}


def test_unreachable_teacher_fails_documents_and_a_rerun_retries_them(tmp_path):
    _need_shared()
    rows = _rows("docs-public.jsonl.gz", 2)
    renderer = PromptRenderer(LLAMA2_TOKENIZER, preset="prox", with_ids=False)
    teacher = OpenAITeacher.from_url("http://127.0.0.1:9/v1", "nobody", max_retries=0, timeout_s=2)
    docs = [Document(r["id"], r["text"]) for r in rows] + [Document("bad", "", error="bad_json: line 3")]
    with OutputFolder(tmp_path) as out:
        stats = Annotator(out, renderer, options=AnnotateOptions(task="doc"), teacher=teacher).run(docs)
    assert stats["counts"]["docs_failed"] == 3
    assert stats["counts"]["fail_reason.teacher_request_failed"] == 2
    assert stats["teacher"]["failed_requests"] == 4
    with OutputFolder(tmp_path) as out:
        assert out.done == set()  # failed documents are not done: a rerun retries them


TINY_TEMPLATES = {
    "system.txt": "You rate and clean web text.",
    "doc_edu.txt": "{{ document }}\n\nRate the educational value 0-5. Start with \"Educational score: N\".",
    "doc_format.txt": "{{ document }}\n\nRate the extraction quality 0-5. Start with \"Extraction Quality Score: N\".",
    "chunk_header.txt": "{{ chunk }}\nRemove menu lines at the top. Answer remove_lines(line_start=A, line_end=B) or skip_chunk().\nProgram:",
    "chunk_links.txt": "{{ chunk }}\nRemove link-only lines. Answer remove_lines(line_start=A, line_end=B) or skip_chunk().\nProgram:",
    "chunk_footer.txt": "{{ chunk }}\nRemove footer lines at the end. Answer remove_lines(line_start=A, line_end=B) or skip_chunk().\nProgram:",
    # the start of the assistant's answer, continued by llama.cpp and put back before parsing
    "doc_edu.prefill.txt": "Educational score: ",
    "chunk_header.prefill.txt": "remove_lines(line_start=",
}
PAGES = [
    {"id": "p1", "text": "Home | Shop | Contact\nHow to boil an egg\nPut the egg in boiling water for nine minutes.\n"
                         "Cool it in cold water before peeling.\n© 2024 Egg Site"},
    {"id": "p2", "text": "Photosynthesis turns light into chemical energy.\nPlants use water and carbon dioxide.\n"
                         "Oxygen is released as a by-product."},
]


def test_teacher_annotation_against_a_real_llama_cpp_server(llama_server, tmp_path):
    _need_shared()
    templates = tmp_path / "templates"
    templates.mkdir()
    for name, text in TINY_TEMPLATES.items():
        (templates / name).write_text(text, encoding="utf-8")
    src = _write_jsonl(tmp_path / "pages.jsonl", PAGES)
    runner = CliRunner()

    def annotate(task: str, out: Path, *extra: str):
        result = runner.invoke(app, [
            "annotate", str(src), "-o", str(out), "--task", task, "--tokenizer", str(LLAMA2_TOKENIZER),
            "--teacher-url", llama_server.base_url, "--teacher-model", "smollm2", "--templates", str(templates),
            "--max-answer-tokens", "24", "--concurrency", "1", *extra])
        assert result.exit_code == 0, result.output
        return json.loads((out / "stats.json").read_text())

    doc_stats = annotate("doc", tmp_path / "doc", "--limit", "2")
    teacher = doc_stats["teacher"]
    assert teacher["responses"] == 4 and teacher["failures"] == 0
    assert teacher["prompt_tokens"] > 0 and teacher["completion_tokens"] > 0
    annotations = [json.loads(line) for line in (tmp_path / "doc" / "annotations.jsonl").read_text().splitlines()]
    assert [a["id"] for a in annotations] == ["p1", "p2"]
    for a in annotations:
        assert a["outcome"] in ("labelled", "skipped")
        assert a["teacher"]["edu_answer"].startswith("Educational score:")  # raw answers kept, prefill put back
        if a["outcome"] == "skipped":
            assert a["reason"] in ("unparsed_edu_score", "unparsed_format_score")
    for record in load_sft_records(tmp_path / "doc"):
        assert record.completion in ("keep_doc()", "drop_doc()")
        assert record.prompt.startswith("<s>[INST] <<SYS>>")  # the prox preset: the exact refiner input

    chunk_stats = annotate("chunk", tmp_path / "chunk", "--limit", "1")
    assert chunk_stats["teacher"]["responses"] == 3  # three prompt families, one chunk
    [annotation] = [json.loads(line) for line in (tmp_path / "chunk" / "annotations.jsonl").read_text().splitlines()]
    [chunk] = annotation["chunks"]
    assert set(chunk["teacher"]) == {"chunk_header", "chunk_links", "chunk_footer"}
    assert chunk["teacher"]["chunk_header"].startswith("remove_lines(line_start=")
    for record in load_sft_records(tmp_path / "chunk"):
        assert execute(PAGES[0]["text"], record.completion, stage="chunk").errors == []

    # Resume: nothing left to do, nothing asked. Overwrite: every answer comes from the cache.
    again = annotate("doc", tmp_path / "doc")
    assert again["counts"]["docs_already_done"] == 2 and again["teacher"]["requests"] == 0
    redo = annotate("doc", tmp_path / "doc", "--limit", "2", "--overwrite")
    assert redo["teacher"]["cache_hits"] == 4 and redo["teacher"]["requests"] == 0
