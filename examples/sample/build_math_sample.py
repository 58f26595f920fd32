"""Build the small math sample shipped for `prox refine` demos (`mathse-sample.jsonl.gz`).

Source: the `mathse-math` rows of the shared benchmark file `docs-public.jsonl.gz`: highly
voted math.stackexchange Q&A (title, question, answer), text CC BY-SA by the
math.stackexchange.com authors (see MATH-ATTRIBUTION.md). Only documents of the id-hash
*holdout* split (int(sha1(id), 16) % 100 >= 80) are used: the builtin model never saw them.

Most posts are dressed as a Q&A or forum page would show them -- vote counts, "Share / Cite /
Follow", "asked … ago", user cards, "Related" / "Hot Network Questions" lists of other
posts' titles -- by the generator the builtin's math training pages come from
(`prox.builtin.mathpages`); the others stay clean, as in a Q&A dump. Each record keeps the
line labels that construction gives (`noisy_lines`, `content_lines`) and the formula lines
(`formula_lines`, found by `prox.mathtext`), so the sample can also be scored.

    python examples/sample/build_math_sample.py [--source PATH] [--n 60]
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from prox.builtin.data import Loaded, load_docs
from prox.builtin.mathpages import MATH_SOURCE, MathPageConfig, build_pages
from prox.mathtext import protected_lines

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / ".." / "shared" / "benchmarks" / "docs-public.jsonl.gz"
OUTPUT = HERE / "mathse-sample.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--n", type=int, default=60)
    args = parser.parse_args()
    docs = Loaded()
    load_docs(args.source, docs, sources={MATH_SOURCE}, split="all")
    docs.docs.sort(key=lambda d: d.id)
    pages = build_pages(docs.docs, [], MathPageConfig(seed=7, clean_share=0.25, furniture_share=1.0), split="holdout")
    rows = []
    for page in pages[: args.n]:
        prot = protected_lines(page.text.split("\n"))
        rows.append({
            "id": page.id.split(":", 1)[1], "text": page.text, "source": "mathse-sample",
            "noisy_lines": sorted(page.noisy), "content_lines": sorted(page.content),
            "formula_lines": sorted(i for i in page.content if prot[i]),
            "licence": "CC BY-SA: math.stackexchange.com authors (via EleutherAI/math-lm, MIT)",
        })
    with gzip.GzipFile(OUTPUT, "wb", mtime=0) as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    print(f"wrote {len(rows)} pages to {OUTPUT}")


if __name__ == "__main__":
    main()
