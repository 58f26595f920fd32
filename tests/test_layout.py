"""The output contract (prox.pipeline.layout): the run folder and the output record, written and read back."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from prox.pipeline import RefineConfig, run_refine
from prox.pipeline.layout import OUTCOMES, OutputRecord, RunLayout, read_outputs, read_stats

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample" / "wcxb-sample.jsonl.gz"


def _refine(tmp_path: Path, output_format: str) -> Path:
    out = tmp_path / output_format
    run_refine(RefineConfig(inputs=[str(SAMPLE)], output_dir=str(out), limit=40, output_format=output_format,
                            progress=False))
    return out


def test_folder_layout_and_records_read_back_the_same_from_jsonl_and_parquet(tmp_path):
    jsonl, parquet = _refine(tmp_path, "jsonl"), _refine(tmp_path, "parquet")
    layout = RunLayout(jsonl)
    assert [Path(p).name for p in layout.user_outputs()] == [*OUTCOMES, "stats.json"]
    assert Path(layout.final_file("kept", 0, "jsonl")).is_file() and Path(layout.task_file(0)).is_file()
    assert Path(layout.run_file).is_file() and Path(layout.step_stats_file(0)).is_file()
    assert layout.output_glob("kept") == "kept/*.jsonl.gz" and RunLayout(parquet).output_glob("kept") == "kept/*.parquet"
    assert read_stats(jsonl)["documents"]["docs_in"] == 40 and read_stats(tmp_path / "nowhere") == {}

    from_jsonl = {(r.outcome, r.id): r for r in read_outputs(jsonl)}
    from_parquet = {(r.outcome, r.id): r for r in read_outputs(parquet)}
    assert len(from_jsonl) == 40 and from_jsonl == from_parquet
    kept = [r for r in from_jsonl.values() if r.outcome == "kept"]
    dropped = [r for r in from_jsonl.values() if r.outcome == "dropped"]
    assert kept and dropped and all(r.reason == "doc_program" for r in dropped)
    assert all(r.chunk_execution["stage"] == "chunk" and r.doc_execution["stage"] == "doc" for r in kept)
    assert all(r.execution is r.doc_execution and r.chunk_execution is None for r in dropped)
    assert all(r.input_metadata.get("url") for r in kept)  # the input's other fields

    # the written JSONL line is exactly OutputRecord.to_row of what is read back (kept: all fields)
    with gzip.open(layout.final_file("kept", 0, "jsonl"), "rt", encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    assert OutputRecord.from_row(first, "kept").to_row("jsonl") == first


def test_from_row_is_tolerant():
    rec = OutputRecord.from_row({"id": "x", "text": 3, "metadata": "not json"}, "failed")
    assert rec.text == "" and rec.raw_text is None and rec.chunk_programs is None and rec.execution is None
    rec = OutputRecord.from_row({"id": "y", "reason": "r", "metadata": {"chunk_programs": "skip_chunk()"}}, "dropped")
    assert rec.reason == "r" and rec.chunk_programs == ["skip_chunk()"] and rec.error is None
