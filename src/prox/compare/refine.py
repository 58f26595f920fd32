"""Refine a list of documents with one refiner into the `prox refine` output layout.

``OUTDIR/kept|dropped|failed/00000.jsonl.gz`` + ``OUTDIR/stats.json``, records as the pipeline
writes them (``id``, ``text``, ``reason``/``error``, ``metadata`` with ``raw_text``,
``doc_program``, ``chunk_programs``, ``execution``). This in-process runner is small and
sequential; it is what `prox compare` uses for each variant, so every variant goes through the
same core: refiner -> ``prox.execute`` -> writer.
"""
from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from prox.compare.data import Doc

BATCH_SIZE = 32
OUTCOMES = ("kept", "dropped", "failed")


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def refine_docs(docs: Sequence[Doc], refiner: Any, outdir: str | Path, *, mode: str = "strict",
                batch_size: int = BATCH_SIZE, refiner_spec: str | None = None) -> dict:
    """Run doc stage, chunk stage and the executor on ``docs``; write the outputs; return stats."""
    from prox.executor import execute
    from prox.refiners import join_chunk_programs

    outdir = Path(outdir)
    for o in OUTCOMES:
        (outdir / o).mkdir(parents=True, exist_ok=True)
    files = {o: gzip.open(outdir / o / "00000.jsonl.gz", "wt", encoding="utf-8") for o in OUTCOMES}
    counts: Counter = Counter()
    reasons: Counter = Counter()
    chars = Counter()
    t0 = time.perf_counter()

    def write(outcome: str, doc: Doc, text: str, meta: dict, detail: str | None) -> None:
        rec: dict[str, Any] = {"id": doc.id, "text": text}
        if outcome == "dropped":
            rec["reason"] = detail
            reasons[f"dropped:{detail}"] += 1
        elif outcome == "failed":
            rec["error"] = detail
            reasons[f"failed:{(detail or '').split(':')[0]}"] += 1
        rec["metadata"] = meta
        files[outcome].write(json.dumps(rec, ensure_ascii=False) + "\n")
        counts[outcome] += 1
        chars["in"] += len(doc.text)
        if outcome == "kept":
            chars["out"] += len(text)

    try:
        for start in range(0, len(docs), batch_size):
            batch = list(docs[start:start + batch_size])
            texts = [d.text for d in batch]
            try:
                doc_progs = refiner.doc_programs(texts)
            except Exception as exc:  # noqa: BLE001 - a refiner error fails the batch, not the run
                for d in batch:
                    write("failed", d, d.text, {"raw_text": d.text}, f"refiner_error: doc stage: {_short(exc)}")
                continue
            survivors = []
            for d, prog in zip(batch, doc_progs):
                meta = {"raw_text": d.text, "doc_program": prog, "chunk_programs": [], "execution": None}
                res = execute(d.text, prog, stage="doc", mode=mode)
                if res.failed:
                    meta["execution"] = res.summary()
                    write("failed", d, d.text, meta, f"reference_failed: doc stage: {res.failed}")
                elif res.dropped:
                    meta["execution"] = res.summary()
                    write("dropped", d, d.text, meta, "doc_program")
                else:
                    survivors.append((d, meta))
            if not survivors:
                continue
            try:
                chunk_progs = refiner.chunk_programs([d.text for d, _ in survivors])
            except Exception as exc:  # noqa: BLE001
                for d, meta in survivors:
                    write("failed", d, d.text, meta, f"refiner_error: chunk stage: {_short(exc)}")
                continue
            for (d, meta), progs in zip(survivors, chunk_progs):
                meta["chunk_programs"] = list(progs)
                res = execute(d.text, join_chunk_programs(progs), stage="chunk", mode=mode)
                meta["execution"] = res.summary()
                counts["lines_removed"] += sum(b - a + 1 for a, b in res.removed_ranges)
                counts["normalizations"] += len(res.normalizations)
                if res.failed:
                    write("failed", d, d.text, meta, f"reference_failed: chunk stage: {res.failed}")
                elif res.dropped:
                    write("dropped", d, d.text, meta, res.drop_reason or "chunk_program")
                else:
                    write("kept", d, res.text, meta, None)
    finally:
        for f in files.values():
            f.close()
    stats = _stats(refiner_spec or getattr(refiner, "name", str(refiner)), len(docs), counts, reasons,
                   chars["in"], chars["out"], time.perf_counter() - t0, mode)
    (outdir / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return stats


def _stats(spec: str, n: int, counts: Counter, reasons: Counter, chars_in: int, chars_out: int, wall: float,
           mode: str | None) -> dict:
    """Same top-level keys as the pipeline's stats.json (documents, *_reasons, text, programs, refiner, settings)."""
    return {
        "documents": {"docs_in": n, **{o: counts[o] for o in OUTCOMES}},
        "balanced": n == sum(counts[o] for o in OUTCOMES),
        "dropped_reasons": {k.split(":", 1)[1]: v for k, v in reasons.most_common() if k.startswith("dropped:")},
        "failed_reasons": {k.split(":", 1)[1]: v for k, v in reasons.most_common() if k.startswith("failed:")},
        "text": {"chars_in": chars_in, "chars_out": chars_out,
                 "chars_kept_ratio": round(chars_out / chars_in, 4) if chars_in else None},
        "programs": {"lines_removed": counts["lines_removed"], "normalizations": counts["normalizations"]},
        "throughput": {"wall_s": round(wall, 3)},
        "refiner": {"name": spec, "spec": spec, "options": {}},
        "settings": {"stages": ["doc", "chunk"] if spec != "raw" else [], "mode": mode, "runner": "prox.compare"},
        "complete": True,
    }


def write_raw(docs: Sequence[Doc], outdir: str | Path) -> dict:
    """The ``raw`` variant: every document kept unchanged, same layout (so reports work on it too)."""
    outdir = Path(outdir)
    for o in OUTCOMES:
        (outdir / o).mkdir(parents=True, exist_ok=True)
    with gzip.open(outdir / "kept" / "00000.jsonl.gz", "wt", encoding="utf-8") as f:
        for d in docs:
            meta = {"raw_text": d.text, "doc_program": None, "chunk_programs": [], "execution": None}
            f.write(json.dumps({"id": d.id, "text": d.text, "metadata": meta}, ensure_ascii=False) + "\n")
    for o in ("dropped", "failed"):
        gzip.open(outdir / o / "00000.jsonl.gz", "wt").close()
    chars = sum(len(d.text) for d in docs)
    stats = _stats("raw", len(docs), Counter(kept=len(docs)), Counter(), chars, chars, 0.0, None)
    (outdir / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return stats


def read_outputs(outdir: str | Path, outcome: str = "kept") -> list[dict]:
    """Records of one outcome folder (JSONL .gz or Parquet)."""
    from prox.compare.data import iter_rows

    folder = Path(outdir) / outcome
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz", ".parquet")))
    return list(iter_rows(files)) if files else []
