"""Build the small sample corpus shipped for `prox refine` demos.

Source: the `dclm` view of WCXB-dev pages in the shared benchmark file
`lines-public.jsonl.gz` (CC BY 4.0; see ATTRIBUTION.md). Only pages from the benchmark's
*train* split (int(sha1(doc_id), 16) % 100 < 80) are used, so no dev page ships.
Only `id`, `text` and `url` are kept. The choice is deterministic (sorted by id, first N).

    python examples/sample/build_sample.py [--source PATH] [--n 240]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / ".." / "shared" / "benchmarks" / "lines-public.jsonl.gz"
OUTPUT = HERE / "wcxb-sample.jsonl.gz"
TRAIN_SHARE = 80  # benchmark README: a page is in train when sha1(doc_id) % 100 < 80


def in_train(doc_id: str) -> bool:
    return int(hashlib.sha1(doc_id.encode("utf-8")).hexdigest(), 16) % 100 < TRAIN_SHARE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--n", type=int, default=240)
    args = parser.parse_args()
    rows = []
    with gzip.open(args.source, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["source"] == "wcxb-dev" and row["view"] == "dclm" and in_train(row["doc_id"]):
                rows.append({"id": row["id"], "text": row["text"], "url": row["meta"].get("url")})
    rows.sort(key=lambda r: r["id"])
    rows = rows[: args.n]
    # mtime=0: the same input gives byte-identical output
    with open(OUTPUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for row in rows:
            out.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"wrote {len(rows)} documents to {OUTPUT} ({OUTPUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
