"""End-to-end `prox refine` throughput against a datatrove rule chain, on the same input, same run.

    python benchmarks/bench_refine.py [--input examples/sample/wcxb-sample.jsonl.gz] [--repeat 1] [--refiner builtin]

Runs, one task and one worker each (so the numbers are per core):
  1. `prox refine --refiner REFINER` (doc + chunk stage, reading, writing, stats);
  2. the same engine with a no-op refiner (keep_doc()/skip_chunk()): the pipeline's own cost;
  3. a datatrove pipeline: JsonlReader -> FineWeb quality -> Gopher quality -> Gopher repetition
     -> C4 quality (bad-words off) -> JsonlWriter.
and prints docs/s, MB/s and the ratio refine / rule chain (target >= 10x).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO / "examples" / "sample" / "wcxb-sample.jsonl.gz"


class NullRefiner:
    """keep_doc() for every document, skip_chunk() for one chunk: measures the engine alone."""

    name = "null"

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        return ["keep_doc()"] * len(texts)

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        return [["skip_chunk()"] for _ in texts]


def make_null_refiner(**_options) -> NullRefiner:
    return NullRefiner()


def split_doc(row: dict, chars: int) -> list[dict]:
    """Cut a page at line boundaries into pieces of about ``chars`` characters (>= chars, except the last)."""
    pieces, current, size = [], [], 0
    for line in row["text"].split("\n"):
        current.append(line)
        size += len(line) + 1
        if size >= chars:
            pieces.append("\n".join(current))
            current, size = [], 0
    if current and "".join(current).strip():
        pieces.append("\n".join(current))
    return [{**row, "id": f"{row['id']}/{i}", "text": text} for i, text in enumerate(pieces)]


def build_input(source: Path, repeat: int, folder: Path, split_chars: int = 0) -> tuple[Path, int, int]:
    rows = []
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    if split_chars:
        rows = [piece for row in rows for piece in split_doc(row, split_chars)]
    path = folder / "bench.jsonl.gz"
    n = size = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for copy in range(repeat):
            for row in rows:
                out.write(json.dumps({**row, "id": f"{row['id']}#{copy}"}, ensure_ascii=False) + "\n")
                n += 1
                size += len(row["text"].encode("utf-8"))
    return path, n, size


def run_prox(path: Path, out: Path, refiner: str) -> float:
    from prox.pipeline import RefineConfig, run_refine

    started = time.perf_counter()
    stats = run_refine(RefineConfig(inputs=[str(path)], output_dir=str(out), refiner=refiner, progress=False))
    elapsed = time.perf_counter() - started
    assert stats["balanced"], stats
    return elapsed


def run_rule_chain(path: Path, out: Path) -> float:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.logging import logger

    logger.remove()
    pipeline = [
        JsonlReader(str(path.parent), glob_pattern=path.name),
        FineWebQualityFilter(),
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        JsonlWriter(str(out / "kept")),
    ]
    from prox.pipeline.executors import quiet_task_logs

    started = time.perf_counter()
    with quiet_task_logs("WARNING"):
        LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(out / "logs")).run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--repeat", type=int, default=1, help="copies of the input (more documents, steadier numbers)")
    parser.add_argument("--refiner", default="builtin")
    parser.add_argument("--split-chars", type=int, default=0,
                        help="cut each page at line boundaries into documents of about N characters (e.g. 2000)")
    parser.add_argument("--skip-null", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # for bench_refine:make_null_refiner

    with tempfile.TemporaryDirectory(prefix="bench_refine_") as tmp:
        tmp = Path(tmp)
        path, n, size = build_input(args.input, args.repeat, tmp, args.split_chars)
        split = f", pages cut into ~{args.split_chars}-char documents" if args.split_chars else ""
        print(f"input: {n} documents, {size / 1e6:.2f} MB of text ({args.input.name} x{args.repeat}{split}); 1 task, 1 worker")
        results = {}
        results["rule chain (datatrove FineWeb+Gopher q+Gopher rep+C4)"] = run_rule_chain(path, tmp / "rules")
        if not args.skip_null:
            results["prox refine, no-op refiner (engine only)"] = run_prox(path, tmp / "null", "bench_refine:make_null_refiner")
        results[f"prox refine --refiner {args.refiner}"] = run_prox(path, tmp / "prox", args.refiner)
        for name, seconds in results.items():
            print(f"{name:58s} {seconds:7.2f} s  {n / seconds:9.1f} docs/s  {size / 1e6 / seconds:6.2f} MB/s")
        base = results["rule chain (datatrove FineWeb+Gopher q+Gopher rep+C4)"]
        ours = results[f"prox refine --refiner {args.refiner}"]
        print(f"ratio prox refine ({args.refiner}) / rule chain: {base / ours:.2f}x (target >= 10x)")
        if not args.skip_null:
            print(f"ratio engine alone / rule chain: {base / results['prox refine, no-op refiner (engine only)']:.2f}x")


if __name__ == "__main__":
    main()
