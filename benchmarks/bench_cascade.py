"""The cascade refiner's quality / speed curve beside the builtin and the encoder, in one run.

    python benchmarks/bench_cascade.py [--docs 300] [--margins 0,0.05,0.1,0.25,0.5,1,2,inf] [--boot 1000]

Quality: `lines-public-dev.jsonl.gz`, both views, micro F1 of the noisy lines through the
`prox.evaluate` scorers (`eval_lines` + `line_predictor`, what `prox eval lines` runs), for
the builtin, the encoder and the cascade at each margin with ``encoder_lines`` = unsure and
all; the share of pages and of removable lines the cascade sends to the encoder; the share of
the encoder's F1 gain over the builtin that it keeps; a paired page bootstrap (rows resampled
by page within a view) of the F1 differences to the builtin, to tell a gain from noise.
Everything is computed in one process, so each distinct dev line is encoded once.

Speed: docs/s on one pinned core (one torch / BLAS thread) on the ~2 KB documents of
``bench_builtin.corpus`` (as ``bench_encoder.py``), doc + chunk programs, every cache (the
builtin's analyses, the encoder's pages and line vectors) emptied before each timed run.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_builtin import BENCH, corpus  # noqa: E402

VIEWS = ("dclm", "wet")


def f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


class Recorder:
    """A line predictor that remembers what it predicted for each text (for the bootstrap)."""

    def __init__(self, predict):
        self.predict, self.seen = predict, {}

    def __call__(self, texts):
        out = self.predict(texts)
        self.seen.update(zip(texts, out))
        return out


def score(gold: Path, refiner, rows: dict[str, list[dict]]) -> dict:
    """Micro F1 per view (eval_lines), per-row counts for the bootstrap, cascade counters per view."""
    from prox.evaluate.run import eval_lines, line_predictor

    out = {}
    for view in VIEWS:
        if hasattr(refiner, "reset_stats"):
            refiner.reset_stats()
        rec = Recorder(line_predictor(refiner))
        res = eval_lines(gold, rec, views={view})["scores"][view]["ALL"]
        counts = []
        for r in rows[view]:
            removed = set(rec.seen[r["text"]])
            noisy, content = set(r["noisy_lines"]), set(r["content_lines"])
            tp = len(removed & noisy)
            counts.append((tp, len(removed & content), len(noisy) - tp))
        counts = np.array(counts, dtype=float)
        assert tuple(counts.sum(0).astype(int)) == (res["tp"], res["fp"], res["fn"])  # same scorer
        out[view] = {"f1": f1(res["tp"], res["fp"], res["fn"]), "counts": counts,
                     "stats": refiner.stats() if hasattr(refiner, "stats") else None}
    return out


def bootstrap(rows: list[dict], base: np.ndarray, other: np.ndarray, n: int, seed: int = 0) -> tuple[float, float]:
    """95 % interval of F1(other) - F1(base), pages resampled with replacement."""
    pages = sorted({r["doc_id"] for r in rows})
    idx = {p: i for i, p in enumerate(pages)}
    page_of = np.array([idx[r["doc_id"]] for r in rows])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        w = np.bincount(rng.integers(0, len(pages), len(pages)), minlength=len(pages))[page_of][:, None]
        a, b = (base * w).sum(0), (other * w).sum(0)
        diffs.append(f1(*b) - f1(*a))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def timed(refiner, texts: list[str], batch: int) -> float:
    """docs/s, doc + chunk programs, every cache emptied first."""
    parts = [refiner] + [getattr(refiner, a) for a in ("builtin", "encoder") if hasattr(refiner, a)]
    for r in parts:
        if hasattr(r, "_cache"):
            r._cache.clear()
        enc = getattr(r, "encoder", None)
        if enc is not None and hasattr(enc, "_cache"):  # the LineEncoder's line vectors
            enc._cache.clear()
        if hasattr(r, "reset_stats"):
            r.reset_stats()
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        part = texts[i:i + batch]
        refiner.doc_programs(part)
        refiner.chunk_programs(part)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", default=str(BENCH / "lines-public-dev.jsonl.gz"))
    ap.add_argument("--docs", type=int, default=300, help="documents of the speed corpus")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--margins", default="0,0.05,0.1,0.25,0.5,1,2,inf")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (0: none)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed one)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    import torch

    torch.set_num_threads(1)
    from prox.refiners import get_refiner

    margins = [float(m) for m in args.margins.split(",")]
    gold = Path(args.gold)
    with gzip.open(gold, "rt", encoding="utf-8") as fh:
        all_rows = [json.loads(line) for line in fh]
    rows = {v: [r for r in all_rows if r["view"] == v] for v in VIEWS}

    t0 = time.perf_counter()
    cas = get_refiner("cascade", threads=1)
    print(f"cascade load: {time.perf_counter() - t0:.2f} s; builtin threshold {cas.builtin.line_threshold:.4f}, "
          f"encoder threshold {cas.encoder.line_threshold:.4f}", flush=True)

    # ---------------------------------------------------------------- quality on dev
    t0 = time.perf_counter()
    res = {"builtin": score(gold, cas.builtin, rows)}
    res["encoder"] = score(gold, cas.encoder, rows)
    print(f"builtin + encoder on dev: {time.perf_counter() - t0:.0f} s", flush=True)
    settings = [(m, lines) for m in margins for lines in ("unsure", "all")]
    for m, lines in settings:
        cas.margin, cas.encoder_lines = m, lines
        res[(m, lines)] = score(gold, cas, rows)
    b, e = res["builtin"], res["encoder"]

    # ---------------------------------------------------------------- speed
    texts = corpus(args.docs)
    print(f"speed corpus: {len(texts)} docs, mean {sum(len(t.encode()) for t in texts) / len(texts) / 1000:.2f} KB",
          flush=True)
    warm = texts[:20]
    cas.margin = float("inf")
    cas.doc_programs(warm), cas.chunk_programs(warm)
    speed = {"builtin": timed(cas.builtin, texts, args.batch), "encoder": timed(cas.encoder, texts, args.batch)}
    speed_share = {}
    for m in margins:
        cas.margin, cas.encoder_lines = m, "unsure"
        speed[m] = timed(cas, texts, args.batch)
        s = cas.stats()
        speed_share[m] = s["pages_to_encoder"] / max(s["pages"], 1)

    # ---------------------------------------------------------------- table
    print()
    print(f"dev F1 (micro): builtin dclm {b['dclm']['f1']:.4f} wet {b['wet']['f1']:.4f}; "
          f"encoder dclm {e['dclm']['f1']:.4f} wet {e['wet']['f1']:.4f}")
    if args.boot:
        for v in VIEWS:
            lo, hi = bootstrap(rows[v], b[v]["counts"], e[v]["counts"], args.boot)
            print(f"  encoder - builtin, {v}: {e[v]['f1'] - b[v]['f1']:+.4f} (95% page bootstrap {lo:+.4f} .. {hi:+.4f})")
    print()
    head = ("setting", "pages→enc dclm", "lines→enc dclm", "pages→enc wet", "lines→enc wet", "F1 dclm", "gain kept dclm",
            "F1 wet", "gain kept wet", "Δdclm 95% CI", "pages→enc 2KB", "docs/s", "speed vs encoder")
    print(" | ".join(head))
    table = []

    def kept(r, v):
        gain = e[v]["f1"] - b[v]["f1"]
        return (r[v]["f1"] - b[v]["f1"]) / gain if gain else float("nan")

    def row(name, r, sp=None, share2k=None):
        cells = [name]
        for v in VIEWS:
            st = r[v]["stats"]
            if st:
                cells += [f"{st['pages_to_encoder'] / max(st['pages'], 1):.3f}", f"{st['lines_unsure'] / max(st['lines'], 1):.3f}"]
            else:
                cells += ["-", "-"]
        cells += [f"{r['dclm']['f1']:.4f}", f"{kept(r, 'dclm'):.2f}", f"{r['wet']['f1']:.4f}", f"{kept(r, 'wet'):.2f}"]
        if args.boot and r is not b:
            lo, hi = bootstrap(rows["dclm"], b["dclm"]["counts"], r["dclm"]["counts"], args.boot)
            cells.append(f"{lo:+.4f}..{hi:+.4f}")
        else:
            cells.append("-")
        cells += ["-" if share2k is None else f"{share2k:.3f}", "-" if sp is None else f"{sp:.1f}",
                  "-" if sp is None else f"{sp / speed['encoder']:.2f}x"]
        print(" | ".join(cells), flush=True)
        table.append(cells)

    row("builtin", b, speed["builtin"], 0.0)
    row("encoder", e, speed["encoder"], 1.0)
    for m, lines in settings:
        sp = speed[m] if lines == "unsure" else None
        row(f"cascade margin={m:g} lines={lines}", res[(m, lines)], sp, speed_share[m] if lines == "unsure" else None)
    if args.json:
        Path(args.json).write_text(json.dumps({"head": head, "rows": table}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
