"""Executor throughput on one core: strict vs reference vs a literal baseline.

Documents: real pages from ../shared/benchmarks/lines-public-{dev,train}.jsonl.gz.
Programs: realistic 3-5 operation chunk programs built from each page's gold
`noisy_lines` runs (up to 3 `remove_lines`, mixed keyword spellings) plus one
`normalize` of a substring that occurs in the page, wrapped in a ```python fence.

Baseline: a literal re-implementation of the ProX reference executor as written
(`str.index` slicing, `range()` sets, per-line set membership), measured in the same
run. Printed: MB/s (UTF-8 bytes of input text), docs/s, and ratios against the baseline.

    python benchmarks/bench_executor.py [--split dev|train|both] [--repeat 5] [--limit N]
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from prox.executor import execute  # noqa: E402
from prox.parse import parse_program  # noqa: E402
from prox.program import line_ranges  # noqa: E402

SHARED = ROOT / ".." / "shared" / "benchmarks"


# ---- baseline: the reference algorithm exactly as written (our own transcription) ----
def _baseline_ops(text, operations):
    lines = text.split("\n")
    to_remove = set()
    pairs = []
    intervals = []
    errors = 0
    for op in operations:
        if op.startswith("remove_lines") and "all=True" not in op:
            try:
                a = op.index("(") + 1
            except ValueError:
                errors += 1
                continue
            try:
                b = op.index(")")
            except ValueError:
                errors += 1
                b = -1
            params = op[a:b].split(",")
            try:
                start = int(params[0].split("=")[1])
                end = int(params[1].split("=")[1])
            except Exception:
                errors += 1
                continue
            intervals.append((start, end))
            for i in range(start, end + 1):
                to_remove.add(i)
        elif op.startswith("normalize"):
            try:
                a = op.index("(") + 1
            except ValueError:
                errors += 1
                continue
            try:
                b = op.index(")")
            except ValueError:
                errors += 1
                b = -1
            params = op[a:b].split(",")
            if len(params) == 1:
                try:
                    src = params[0].split("=")[1].strip('"')
                    text = text.replace(src, "")
                    pairs.append((src, ""))
                except Exception:
                    errors += 1
                    continue
            elif len(params) == 2:
                try:
                    src = params[0].split("=")[1].strip('"')
                    tgt = params[1].split("=")[1].strip('"')
                except Exception:
                    errors += 1
                    continue
                if src != " " and src != "":
                    text = text.replace(src, tgt)
                pairs.append((src, tgt))
        elif op.startswith("remove_lines") and "all=True" in op:
            to_remove = set(range(len(lines)))
    lines = text.split("\n")
    kept = [line for i, line in enumerate(lines) if i not in to_remove]
    noise = [line for i, line in enumerate(lines) if i in to_remove]
    intervals.sort(key=lambda x: x[0])
    merged = intervals[:1]
    for cur in intervals[1:]:
        if cur[0] <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], cur[1]))
        else:
            merged.append(cur)
    ops = []
    for iv in merged:
        if iv[0] >= len(lines):
            errors += 1
            continue
        if iv[1] >= len(lines):
            errors += 1
            iv = (iv[0], len(lines) - 1)
        ops.append(iv)
    del noise
    return "\n".join(kept), pairs, ops, errors


def baseline_execute(text, operations):
    processed, _, _, errors = _baseline_ops(text, operations.strip(" ").split("\n"))
    n_proc, n_text = len(processed.split()), len(text.split())
    if n_proc / n_text <= 1 - 0.95 and errors < 2:
        return ""
    if n_proc <= 10:
        return ""
    if n_proc / n_text >= 0.0 and errors < 2:
        return processed
    return text


# ---- workload -------------------------------------------------------------------------
def make_program(rec, k):
    lines = rec["text"].split("\n")
    runs = line_ranges(rec["noisy_lines"])
    runs.sort(key=lambda r: r[1] - r[0], reverse=True)
    calls = []
    for j, (s, e) in enumerate(sorted(runs[:3])):
        key = ("line_start", "line_end") if (j + k) % 3 else ("start", "end")
        calls.append(f"remove_lines({key[0]}={s}, {key[1]}={e})")
    source = None
    for i in rec["noisy_lines"] + rec["content_lines"]:
        words = [w for w in lines[i].split() if len(w) >= 6 and '"' not in w and "," not in w
                 and "=" not in w and ")" not in w and "\\" not in w]
        if words:
            source = words[0]
            break
    if source:
        calls.insert(0, f'normalize(source_str="{source}", target_str="")')
    while len(calls) < 3:
        calls.append("skip_chunk()")
    return "```python\n" + "\n".join(calls) + "\n```"


def load(split):
    names = {"dev": ["lines-public-dev"], "train": ["lines-public-train"],
             "both": ["lines-public-dev", "lines-public-train"]}[split]
    recs = []
    for name in names:
        with gzip.open(SHARED / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
            recs.extend(json.loads(line) for line in fh)
    return recs


def timed(fn, items, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(*item)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev", choices=["dev", "train", "both"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"benchmark data not found at {SHARED}")
    recs = load(args.split)
    if args.limit:
        recs = recs[: args.limit]
    docs = [(r["text"], make_program(r, k)) for k, r in enumerate(recs)]
    n_bytes = sum(len(t.encode("utf-8")) for t, _ in docs)
    n_ops = sum(sum(1 for line in p.split("\n") if "(" in line) for _, p in docs)
    # Every mode must give the same text as the baseline on this (well-formed) workload.
    for text, prog in docs:
        want = baseline_execute(text, prog)
        assert execute(text, prog, mode="reference").text == want
        assert execute(text, prog).text == want, prog
    parsed = [(t, parse_program(p)) for t, p in docs]
    cases = [
        ("baseline (reference algorithm as written)", lambda t, p: baseline_execute(t, p), docs),
        ("reference mode", lambda t, p: execute(t, p, mode="reference"), docs),
        ("strict mode (parse + execute)", lambda t, p: execute(t, p), docs),
        ("strict mode (pre-parsed Program)", lambda t, p: execute(t, p), parsed),
        ("parse only", lambda t, p: parse_program(p), docs),
    ]
    print(f"{len(docs)} docs, {n_bytes / 1e6:.2f} MB, {n_ops / len(docs):.2f} operations/program, "
          f"best of {args.repeat}, one core, Python {sys.version.split()[0]}")
    base = None
    for name, fn, items in cases:
        sec = timed(fn, items, args.repeat)
        mbs, dps = n_bytes / sec / 1e6, len(items) / sec
        base = base or mbs
        print(f"  {name:<42} {mbs:8.1f} MB/s {dps:10.0f} docs/s   x{mbs / base:.2f} vs baseline")


if __name__ == "__main__":
    main()
