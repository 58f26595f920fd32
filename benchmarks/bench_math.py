"""Math safety of a refiner (issue targets), beside the simple rules and its web figures, in one run.

    python benchmarks/bench_math.py [--refiner builtin] [-O KEY=VALUE ...]

Prints, per source of ``lines-math-public`` (view ``md``): noisy-line micro P / R / F1,
formula lines kept (and deleted), content lines kept — for the refiner and for the
< 5 words and C4 line rules measured in the same run. Then the doc stage: the share of the
``mathse-math`` documents of ``docs-public`` the refiner keeps (holdout split, never trained
on, and all), and the web figures that must not regress: ``lines-public-dev`` micro F1
(``dclm`` and ``wet`` views) and the DCLM human-quality drop F1 on the 52 held-out docs.

Targets (issue 10): formula lines kept >= 0.99, approach0-mse content kept >= 0.99,
noisy-line micro F1 >= 0.93, mathse-math kept >= 0.95, web within noise of
0.784 / 0.935 / 0.644.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from prox.cli.options import parse_refiner_options
from prox.evaluate.run import doc_predictor, eval_docs, eval_lines, line_predictor
from prox.refiners import get_refiner

BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks"


def _line_cells(scores: dict) -> str:
    m = scores["micro"]
    out = f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f}"
    math = scores.get("math")
    if math:
        out += f" | formula kept {math['formula_kept']:.3f} ({math['formula_deleted']} deleted) | content kept {math['content_kept']:.3f}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refiner", default="builtin")
    parser.add_argument("-O", "--option", action="append", default=[])
    args = parser.parse_args()
    if not BENCH.is_dir():
        print(f"benchmarks not found at {BENCH}", file=sys.stderr)
        return 2
    refiner = get_refiner(args.refiner, **parse_refiner_options(args.option))
    t0 = time.time()
    math_gold = BENCH / "lines-math-public.jsonl.gz"
    print(f"math pages ({math_gold.name}, view md): micro P / R / F1 | formula lines kept | content lines kept")
    runs = {name: eval_lines(math_gold, pred)["scores"] for name, pred in (
        (args.refiner, line_predictor(refiner)), ("< 5 words", line_predictor(baseline="short")),
        ("C4 rule", line_predictor(baseline="c4")))}
    for source in sorted(runs[args.refiner]["md"], key=lambda s: (s == "ALL", s)):
        print(f"  {source} ({runs[args.refiner]['md'][source]['rows']} rows)")
        for name, scores in runs.items():
            print(f"    {name:<12} {_line_cells(scores['md'][source])}")
    docs_gold = BENCH / "docs-public.jsonl.gz"
    print("doc stage, mathse-math kept (any human label):")
    for split in ("holdout", "all"):
        res = eval_docs(docs_gold, doc_predictor(refiner), sources={"mathse-math"}, split=split)
        s = res["scores"]["mathse-math"]
        print(f"  {split:<8} {s['docs']:4d} docs: kept {1 - s['pred_drop'] / s['docs']:.3f}")
    print("web (must not regress):")
    web = eval_lines(BENCH / "lines-public-dev.jsonl.gz", line_predictor(refiner))["scores"]
    for view in ("dclm", "wet"):
        print(f"  lines-public-dev {view:<4} ALL micro P / R / F1 {_line_cells(web[view]['ALL'])}")
    dclm = eval_docs(docs_gold, doc_predictor(refiner), sources={"dclm-human-majority"}, split="holdout")
    drop = dclm["scores"]["dclm-human-majority"]["drop"]
    print(f"  DCLM human-quality holdout ({dclm['docs']} docs): DROP P / R / F1 "
          f"{drop['precision']:.3f} / {drop['recall']:.3f} / {drop['f1']:.3f}")
    print(f"({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
