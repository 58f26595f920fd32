"""The vLLM backend's own code paths, with a stand-in ``vllm`` module injected in sys.modules.

vLLM itself is not installed here (GPU-only, several GB); the fake below records exactly
what our backend passes to ``vllm.LLM``, ``SamplingParams``, ``TokensPrompt`` and the
structured-output parameters, and returns scripted completions.
"""
from __future__ import annotations

import gzip
import json
import sys
import types

import pytest

from conftest import LLAMA2_TOKENIZER, REFERENCE, SHARED
from prox.generate.constrained import program_regex
from prox.parse import parse_program

PROMPTS = REFERENCE / "prompts-public.jsonl.gz"


def fake_vllm(*, structured: bool = True, reply=None):
    """A minimal module tree: vllm.LLM, vllm.SamplingParams, vllm.inputs, vllm.sampling_params."""
    vllm = types.ModuleType("vllm")
    sampling = types.ModuleType("vllm.sampling_params")
    inputs = types.ModuleType("vllm.inputs")
    vllm.engines = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class StructuredOutputsParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class GuidedDecodingParams(StructuredOutputsParams):
        pass

    def TokensPrompt(**kwargs):  # noqa: N802 - a TypedDict in vLLM
        return {"kind": "TokensPrompt", **kwargs}

    class LLM:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            self.calls = []
            vllm.engines.append(self)

        def generate(self, prompts, sampling_params, use_tqdm=True):
            self.calls.append((prompts, sampling_params, use_tqdm))
            out = []
            for prompt in prompts:
                text, finish = (reply or (lambda p, s: ("keep_doc()", "stop")))(prompt, sampling_params)
                ids = prompt["prompt_token_ids"] if isinstance(prompt, dict) else [0] * len(prompt.split())
                completion = types.SimpleNamespace(text=text, token_ids=list(range(len(text) // 3 + 1)),
                                                   finish_reason=finish)
                out.append(types.SimpleNamespace(prompt_token_ids=ids, outputs=[completion]))
            return out

    vllm.LLM, vllm.SamplingParams, vllm.__version__ = LLM, SamplingParams, "0.0-fake"
    sampling.SamplingParams = SamplingParams
    if structured:
        sampling.StructuredOutputsParams = StructuredOutputsParams
    else:
        sampling.GuidedDecodingParams = GuidedDecodingParams
    inputs.TokensPrompt = TokensPrompt
    vllm.sampling_params, vllm.inputs = sampling, inputs
    return {"vllm": vllm, "vllm.sampling_params": sampling, "vllm.inputs": inputs}


@pytest.fixture
def install(monkeypatch):
    def do(**kwargs):
        modules = fake_vllm(**kwargs)
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        return modules["vllm"]

    return do


def reference_record() -> dict:
    if not PROMPTS.exists() or not LLAMA2_TOKENIZER.is_dir():
        pytest.skip(f"shared fixtures not found under {SHARED}")
    with gzip.open(PROMPTS, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if len(record["chunks"]) >= 2:
                return record
    raise AssertionError("no multi-chunk record in the prompt vectors")


def test_refiner_feeds_reference_token_ids_to_one_prefix_cached_engine(install):
    from prox.refiners import get_refiner

    record = reference_record()
    vllm = install()
    refiner = get_refiner("vllm:/models/prox-refining", tokenizer=str(LLAMA2_TOKENIZER), tensor_parallel_size=2,
                          gpu_memory_utilization=0.8)
    assert len(vllm.engines) == 1  # one engine shared by both stages
    engine = vllm.engines[0]
    assert engine.kwargs == {"model": "/models/prox-refining", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8,
                             "enable_prefix_caching": True, "tokenizer": str(LLAMA2_TOKENIZER)}

    assert refiner.doc_programs([record["text"]]) == ["keep_doc()"]
    prompts, params, use_tqdm = engine.calls[-1]
    assert prompts == [{"kind": "TokensPrompt", "prompt_token_ids": record["doc_prompt_ids"]}]
    assert params.kwargs == {"temperature": 0.0, "max_tokens": 64, "n": 1} and use_tqdm is False

    chunk_outputs = refiner.chunk_programs([record["text"]])
    prompts, params, _ = engine.calls[-1]
    assert [p["prompt_token_ids"] for p in prompts] == [c["prompt_ids"] for c in record["chunks"]]
    assert params.kwargs["max_tokens"] == 256
    assert [len(c) for c in chunk_outputs] == [len(record["chunks"])]


@pytest.mark.parametrize("structured", [True, False])
def test_constrained_sampling_params_and_trimming(install, structured):
    from prox.generate.vllm_backend import VLLMGenerator

    cut = 'remove_lines(line_start=0, line_end=3)\nnormalize(source_str="Click'
    vllm = install(structured=structured, reply=lambda p, s: (cut, "length"))
    gen = VLLMGenerator("/models/chunk", stage="chunk", constrained=True)
    out = gen.generate(["[doc]\n[000]Click here\n[/doc]"], max_new_tokens=16)
    params = vllm.engines[0].calls[0][1].kwargs
    key = "structured_outputs" if structured else "guided_decoding"
    assert params[key].kwargs == {"regex": program_regex("chunk")}
    assert out == ["remove_lines(line_start=0, line_end=3)"]  # the unfinished line is dropped
    assert parse_program(out[0], stage="chunk").errors == []
    assert gen.stats.truncated == 1 and gen.stats.trimmed == 1 and gen.stats.prompts == 1
    assert vllm.engines[0].calls[0][0] == ["[doc]\n[000]Click here\n[/doc]"]  # text prompt without ids


def test_missing_vllm_is_a_clear_error(monkeypatch):
    from prox.generate.vllm_backend import VLLMGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"prox\[vllm\]"):
        VLLMGenerator("/models/x")
