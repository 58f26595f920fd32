"""Speed of the builtin refiner beside datatrove's rule chain, on one core.

    python benchmarks/bench_builtin.py [--docs 3000] [--model PATH]

Corpus: the public benchmark pages (``dclm`` and ``wet`` views, DCLM human-quality docs)
cut at line boundaries into documents of about 2 KB. Measured in the same run, pinned to
one CPU with one BLAS/OpenMP thread:

* ``rules``: datatrove's FineWeb quality + Gopher quality + Gopher repetition + C4 quality
  filters (their own classes, ``.filter(Document)`` called directly; C4 without bad words),
* ``builtin``: ``doc_programs`` + ``chunk_programs`` of the builtin refiner (program text),
* ``builtin+execute``: the same plus parsing and executing both programs (``prox.execute``).

Prints docs/s for each and the ratio builtin / rules.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks"
TARGET_BYTES = 2000


def corpus(n: int) -> list[str]:
    texts = []
    for name in ("lines-public-dev.jsonl.gz", "lines-public-train.jsonl.gz"):
        with gzip.open(BENCH / name, "rt", encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh]
    with gzip.open(BENCH / "docs-public.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts += [r["text"] for r in map(json.loads, fh) if r["source"] == "dclm-human-majority"]
    docs: list[str] = []
    for text in texts:
        cur: list[str] = []
        size = 0
        for line in text.split("\n"):
            cur.append(line)
            size += len(line.encode("utf-8")) + 1
            if size >= TARGET_BYTES:
                docs.append("\n".join(cur))
                cur, size = [], 0
        if size > TARGET_BYTES // 4:
            docs.append("\n".join(cur))
        if len(docs) >= n:
            break
    return docs[:n]


def rules_chain():
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    # the order of the issue; C4QualityFilter has no bad-words list (that is C4BadWordsFilter)
    return [FineWebQualityFilter(), GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter()]


def run_rules(filters, texts: list[str]) -> int:
    from datatrove.data import Document

    kept = 0
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        ok = True
        for f in filters:
            res = f.filter(doc)
            if res is not True and (res is False or not res[0]):
                ok = False
                break
        kept += ok
    return kept


def run_builtin(refiner, texts: list[str], batch: int, execute: bool) -> int:
    from prox import execute as run
    from prox.refiners.base import join_chunk_programs

    kept = 0
    for i in range(0, len(texts), batch):
        part = texts[i : i + batch]
        refiner._cache.clear()  # no reuse across repeats: every document is predicted
        dprogs = refiner.doc_programs(part)
        cprogs = refiner.chunk_programs(part)
        if execute:
            for t, d, c in zip(part, dprogs, cprogs):
                if not run(t, d, stage="doc").dropped:
                    kept += not run(t, join_chunk_programs(c), stage="chunk").dropped
        else:
            kept += sum("drop_doc" not in d for d in dprogs)
    return kept


def timed(fn, *args, repeat: int = 1) -> tuple[float, int]:
    """Seconds of the fastest of ``repeat`` runs (one run of ~1.5 s varies by ±5 % here), and its result."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()  # the datatrove run leaves garbage behind; the next row must not pay for it
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5, help="builtin rows: the fastest of this many runs")
    ap.add_argument("--model", default=None, help="builtin model path (default: the shipped model)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed one)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    texts = corpus(args.docs)
    mean_kb = sum(len(t.encode()) for t in texts) / len(texts) / 1000
    print(f"corpus: {len(texts)} docs, mean {mean_kb:.2f} KB")

    t0 = time.perf_counter()
    from prox.refiners import get_refiner

    refiner = get_refiner(f"builtin:{args.model}" if args.model else "builtin")
    print(f"builtin model load (incl. imports): {time.perf_counter() - t0:.3f} s")
    filters = rules_chain()
    run_rules(filters, texts[:50])  # warm up (tokenizer loading)
    t0 = time.perf_counter()
    run_builtin(refiner, texts[:50], args.batch, True)
    print(f"builtin first call, 50 docs (builds the char/token lookup tables): {time.perf_counter() - t0:.3f} s")

    rows = {}
    rows["rules (datatrove FineWeb+Gopher+GopherRep+C4)"] = timed(run_rules, filters, texts)
    rows["builtin (programs)"] = timed(run_builtin, refiner, texts, args.batch, False, repeat=args.repeat)
    # the same model with the word-F1 rescue off (threshold only): what the rescue costs
    no_rescue = get_refiner(f"builtin:{args.model}" if args.model else "builtin", rescue_margin=float("inf"))
    rows["builtin (programs, rescue off)"] = timed(run_builtin, no_rescue, texts, args.batch, False, repeat=args.repeat)
    rows["builtin + parse/execute"] = timed(run_builtin, refiner, texts, args.batch, True, repeat=args.repeat)
    base = len(texts) / rows["rules (datatrove FineWeb+Gopher+GopherRep+C4)"][0]
    for name, (secs, kept) in rows.items():
        rate = len(texts) / secs
        print(f"{name:48s} {rate:8.0f} docs/s  ({secs:.2f} s, kept {kept})  ratio vs rules {rate / base:.2f}")


if __name__ == "__main__":
    main()
