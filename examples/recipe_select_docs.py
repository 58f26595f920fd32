"""Pick short real pages for the CPU recipe: N to annotate (train split), M to evaluate (dev split).

    python examples/recipe_select_docs.py SHARED_BENCHMARKS OUTDIR --train 50 --eval 20

Short pages (dclm view, 8-60 lines, <= 3,000 characters) keep each teacher prompt to one chunk,
so the recipe runs in minutes on a shared CPU. Deterministic: the first pages in file order.
Writes OUTDIR/annotate.jsonl (id, text) and OUTDIR/eval.jsonl (the gold rows, for `prox eval lines`).
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path


def pick(path: Path, n: int) -> list[dict]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            n_lines = row["text"].count("\n") + 1
            if row["view"] == "dclm" and 8 <= n_lines <= 60 and len(row["text"]) <= 3000 and row["noisy_lines"]:
                out.append(row)
                if len(out) == n:
                    break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("benchmarks", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=50)
    ap.add_argument("--eval", type=int, default=20)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train = pick(args.benchmarks / "lines-public-train.jsonl.gz", args.train)
    dev = pick(args.benchmarks / "lines-public-dev.jsonl.gz", args.eval)
    with open(args.out / "annotate.jsonl", "w", encoding="utf-8") as fh:
        for row in train:
            fh.write(json.dumps({"id": row["id"], "text": row["text"]}, ensure_ascii=False) + "\n")
    with open(args.out / "eval.jsonl", "w", encoding="utf-8") as fh:
        for row in dev:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(train)} pages to annotate, {len(dev)} to evaluate -> {args.out}")


if __name__ == "__main__":
    main()
