"""Refine a list of documents through the `prox refine` pipeline (one refine implementation).

`prox compare` holds its corpus in memory (`Doc`s). It writes it once as a JSONL file and runs
`prox.pipeline.run_refine` on it for each variant, so every variant gets the pipeline's steps,
outputs (``OUTDIR/kept|dropped|failed/00000.jsonl.gz``), accounting and ``stats.json``.
The ``raw`` variant is the same pipeline with no refiner (no stages: every document kept as is).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from prox.compare.data import Doc
from prox.records import write_jsonl

BATCH_SIZE = 32
WORKERS = 2  # prox default: refine each variant as 2 pipeline tasks on 2 worker processes (the 2-core CI machine)


def write_corpus(docs: Sequence[Doc], path: str | Path) -> Path:
    """Write ``docs`` as JSONL (``id``, ``text`` and the row's other fields) for the pipeline to read."""
    path = Path(path)
    rows = ({"id": d.id, "text": d.text, **{k: v for k, v in d.meta.items() if k not in ("id", "text")}} for d in docs)
    write_jsonl(path, rows, default=str)
    return path


def refine_file(corpus: str | Path, refiner: Any, outdir: str | Path, *, mode: str = "strict",
                batch_size: int = BATCH_SIZE, refiner_options: dict | None = None, workers: int = WORKERS) -> dict:
    """Run the pipeline on a JSONL corpus into ``outdir`` (previous outputs there are replaced).

    ``refiner``: a spec (``rules:c4``, ``builtin``, ``module:factory``), a Refiner object, or
    ``None`` for no refining (the ``raw`` variant). ``workers``: pipeline tasks = worker processes
    (the reader spreads one file over the tasks document by document). Returns ``stats.json``.
    """
    from prox.pipeline import RefineConfig, run_refine

    config = RefineConfig(
        inputs=[str(corpus)], output_dir=str(outdir), refiner=refiner,
        refiner_options=dict(refiner_options or {}) if refiner is not None else {},
        mode=mode, batch_size=batch_size, progress=False, overwrite=True,
        tasks=max(1, workers), workers=max(1, workers),
    )
    return run_refine(config)


def refine_docs(docs: Sequence[Doc], refiner: Any, outdir: str | Path, *, mode: str = "strict",
                batch_size: int = BATCH_SIZE, refiner_options: dict | None = None, workers: int = 1) -> dict:
    """`refine_file` for documents in memory (written to a temporary JSONL file first)."""
    with tempfile.TemporaryDirectory(prefix="prox-docs-") as tmp:
        corpus = write_corpus(docs, Path(tmp) / "docs.jsonl")
        return refine_file(corpus, refiner, outdir, mode=mode, batch_size=batch_size,
                           refiner_options=refiner_options, workers=workers)
