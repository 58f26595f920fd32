"""`prox compare`: refine one corpus with several refiners, pre-train a proxy LM on each, tabulate.

Rows: ``raw`` (no refining) and any refiner spec (``rules:gopher``, ``builtin``, ``transformers``...).
Outputs in ``OUTDIR``: ``refined/<variant>/`` (the usual refine layout, so ``prox report`` works on
each), ``compare.json``, ``compare.md`` and ``compare.png``.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from prox.compare.data import Doc, split_eval
from prox.compare.proxy import ProxyConfig, VocabMap, encode_stream, load_tokenizer, train_and_eval
from prox.compare.refine import WORKERS, refine_file, write_corpus
from prox.pipeline.layout import read_outputs

DEFAULT_REFINERS = ("raw", "rules:gopher", "rules:c4", "rules:fineweb", "rules:gopher+c4+fineweb", "builtin")


def variant_dir_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", spec)


def refine_variant(spec: str, corpus: Path, outdir: Path, *, mode: str = "strict",
                   refiner_options: dict | None = None, workers: int = WORKERS) -> dict:
    """One variant through the `prox refine` pipeline; ``raw`` = the pipeline with no refiner (all kept)."""
    return refine_file(corpus, None if spec == "raw" else spec, outdir, mode=mode, refiner_options=refiner_options,
                       workers=workers)


def run_compare(docs: Sequence[Doc], outdir: str | Path, *, refiners: Sequence[str] = DEFAULT_REFINERS,
                eval_texts: Sequence[str] | None = None, eval_percent: int = 10, tokenizer: str | None = None,
                proxy: ProxyConfig | None = None, mode: str = "strict", refiner_options: dict | None = None,
                workers: int = WORKERS, log: Callable[[str], None] = print) -> dict:
    """Run the whole comparison; returns (and writes) the result dict. A variant that fails to
    refine or train is recorded with its error and the others go on."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    proxy = proxy or ProxyConfig()
    if eval_texts is None:
        docs, eval_texts = split_eval(list(docs), eval_percent)
        eval_source = f"held-out {eval_percent}% of pages (gold-clean content where labelled)"
    else:
        eval_source = "given eval set"
    if not eval_texts:
        raise ValueError("the eval set is empty")
    tok = load_tokenizer(tokenizer)
    log(f"corpus: {len(docs)} docs; eval: {len(eval_texts)} texts ({eval_source}); tokenizer: {tok.name}")

    corpus = write_corpus(docs, outdir / "corpus.jsonl")  # the pipeline's input for every variant
    variants: list[dict[str, Any]] = []
    streams: dict[str, list[int]] = {}
    for spec in refiners:
        vdir = outdir / "refined" / variant_dir_name(spec)
        t0 = time.perf_counter()
        row: dict[str, Any] = {"refiner": spec, "dir": str(vdir.relative_to(outdir))}
        try:
            stats = refine_variant(spec, corpus, vdir, mode=mode, refiner_options=refiner_options, workers=workers)
            kept = [r.text for r in read_outputs(vdir, "kept")]
            streams[spec] = encode_stream(tok, kept) if kept else []
            n = stats["documents"]
            row.update(docs_in=len(docs), docs_kept=n["kept"], docs_dropped=n["dropped"],
                       docs_failed=n["failed"], chars_kept=stats["text"]["chars_out"],
                       dropped_reasons=stats["dropped_reasons"],
                       tokens_kept=len(streams[spec]), refine_s=round(time.perf_counter() - t0, 2))
            log(f"[{spec}] kept {row['docs_kept']}/{len(docs)} docs, {row['tokens_kept']} tokens ({row['refine_s']} s)")
        except Exception as exc:  # noqa: BLE001 - one broken variant must not sink the comparison
            row["error"] = f"refine: {type(exc).__name__}: {exc}"[:500]
            log(f"[{spec}] refine failed: {row['error']}")
        variants.append(row)

    eval_stream = encode_stream(tok, eval_texts)
    eval_bytes = sum(len(t.encode("utf-8")) + 1 for t in eval_texts)
    vocab_size = tok.vocab_size
    vmap = None
    if vocab_size > 4096:
        vmap = VocabMap([eval_stream, *streams.values()])
        vocab_size = vmap.size
        eval_stream = vmap.apply(eval_stream)
    t_run = time.perf_counter()
    n_train = sum(1 for r in variants if "error" not in r)
    done = 0
    for row in variants:
        spec = row["refiner"]
        if "error" in row:
            continue
        try:
            stream = vmap.apply(streams[spec]) if vmap else streams[spec]
            res = train_and_eval(stream, eval_stream, vocab_size, proxy, eval_bytes=eval_bytes,
                                 log=lambda m, s=spec: log(f"[{spec}] {m}"))
            row["proxy"] = res.to_dict()
            done += 1
            left = (time.perf_counter() - t_run) / done * (n_train - done)
            log(f"[{spec}] eval loss {res.eval_loss:.4f} ppl {res.eval_ppl:.2f} bpb {res.eval_bpb} ({res.wall_s} s); "
                f"proxy {done}/{n_train}, about {left:.0f} s left")
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"proxy: {type(exc).__name__}: {exc}"[:500]
            log(f"[{spec}] proxy failed: {row['error']}")
    result = {
        "corpus_docs": len(docs), "eval_texts": len(eval_texts), "eval_tokens_total": len(eval_stream),
        "eval_source": eval_source, "tokenizer": tok.name, "vocab_size": vocab_size,
        "proxy_config": {**proxy.__dict__, "steps": proxy.steps}, "mode": mode, "variants": variants,
    }
    (outdir / "compare.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (outdir / "compare.md").write_text(markdown_table(result), encoding="utf-8")
    try:
        plot(result, outdir / "compare.png")
    except ImportError as exc:
        log(f"no plot: {exc} (pip install 'prox[lm]')")
    return result


def markdown_table(result: dict) -> str:
    cfg = result["proxy_config"]
    lines = [
        "| refiner | docs kept | tokens kept | epochs | eval loss | eval ppl | bits/byte |",
        "|---|---|---|---|---|---|---|",
    ]
    base = next((v for v in result["variants"] if v["refiner"] == "raw" and "proxy" in v), None)
    for v in result["variants"]:
        if "error" in v and "proxy" not in v:
            lines.append(f"| {v['refiner']} | – | – | – | error: {v['error'][:80]} | – | – |")
            continue
        p = v["proxy"]
        delta = f" ({p['eval_loss'] - base['proxy']['eval_loss']:+.3f})" if base and v is not base else ""
        lines.append(
            f"| {v['refiner']} | {v['docs_kept']}/{v['docs_in']} | {v['tokens_kept']:,} | {p['epochs']:.2f} "
            f"| {p['eval_loss']:.4f}{delta} | {p['eval_ppl']:.2f} | {p['eval_bpb'] if p['eval_bpb'] is not None else '–'} |"
        )
    lines += [
        "",
        f"Proxy: Llama, {cfg['layers']} layers, hidden {cfg['hidden']}, seq {cfg['seq_len']}, batch {cfg['batch_size']}, "
        f"{cfg['steps']} steps ({cfg['train_tokens']:,} training tokens per variant), seed {cfg['seed']}; "
        f"tokenizer {result['tokenizer']} (vocab {result['vocab_size']}); eval: {result['eval_texts']} texts, "
        f"{result['eval_source']}. Lower loss is better; (±) is the difference to raw.",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [v for v in result["variants"] if "proxy" in v]
    names = [v["refiner"] for v in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(names, [v["proxy"]["eval_loss"] for v in rows], color="#4c72b0")
    axes[0].set_title("held-out loss (nats/token, lower is better)")
    if rows:
        lo = min(v["proxy"]["eval_loss"] for v in rows)
        hi = max(v["proxy"]["eval_loss"] for v in rows)
        pad = max(0.02, (hi - lo) * 0.5)
        axes[0].set_ylim(lo - pad, hi + pad)
    axes[1].bar(names, [v["tokens_kept"] for v in rows], color="#55a868")
    axes[1].set_title("tokens kept")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
