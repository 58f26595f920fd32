"""Offline batched generation with vLLM on GPUs (optional extra: ``pip install 'prox[vllm]'``).

vLLM is imported only when this backend is built. Prompts go in as token ids
(``TokensPrompt``) when the renderer has them, so the released ProX models see exactly
the reference inputs; greedy decoding (``temperature=0``); prefix caching on (all
prompts of one stage share the long system/chat prefix). ``constrained=True`` uses
vLLM's structured outputs with the program regex (``StructuredOutputsParams`` in
vLLM >= 0.11, ``GuidedDecodingParams`` before).
"""
from __future__ import annotations

import importlib
from typing import Any, Sequence

from prox.generate.base import BackendBase, Timer, check_max_new_tokens, prompt_ids, prompt_text


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise ImportError("the vllm backend needs vLLM on a GPU machine: pip install 'prox[vllm]'") from exc


def structured_output_kwargs(vllm: Any, regex: str) -> dict[str, Any]:
    """``SamplingParams`` keyword for a regex constraint, for the installed vLLM version."""
    sampling = importlib.import_module("vllm.sampling_params")
    if hasattr(sampling, "StructuredOutputsParams"):  # vLLM >= 0.11 (guided_* removed in 0.12)
        return {"structured_outputs": sampling.StructuredOutputsParams(regex=regex)}
    if hasattr(sampling, "GuidedDecodingParams"):  # vLLM 0.6.x - 0.10.x
        return {"guided_decoding": sampling.GuidedDecodingParams(regex=regex)}
    raise ImportError(f"vLLM {getattr(vllm, '__version__', '?')} has no structured-output parameters")


def tokens_prompt(ids: list[int]) -> Any:
    """A vLLM token-id prompt (``TokensPrompt`` is a TypedDict; a plain dict is the same)."""
    try:
        from vllm.inputs import TokensPrompt  # type: ignore[import-not-found]
    except ImportError:
        return {"prompt_token_ids": ids}
    return TokensPrompt(prompt_token_ids=ids)


def build_llm(model: str | Any, *, tokenizer: str | Any | None = None, **llm_options: Any) -> Any:
    """A ``vllm.LLM`` engine for ``model`` (a directory), prefix caching on unless switched off."""
    vllm = _import_vllm()
    options = {"enable_prefix_caching": True, **llm_options}
    if tokenizer is not None:
        options["tokenizer"] = str(tokenizer)
    return vllm.LLM(model=str(model), **options)


class VLLMGenerator(BackendBase):
    """`Generator` on a ``vllm.LLM`` engine.

    Args:
        model: model directory (or an already built ``vllm.LLM`` as ``llm=``).
        tokenizer: tokenizer directory when it differs from the model's.
        stage, constrained: grammar-constrained decoding for that stage.
        llm_options: more ``vllm.LLM`` arguments (``tensor_parallel_size``,
            ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ...).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        tokenizer: str | None = None,
        stage: str | None = None,
        constrained: bool = False,
        llm: Any = None,
        grammar_bounds: dict[str, int] | None = None,
        **llm_options: Any,
    ) -> None:
        self.vllm = _import_vllm()
        super().__init__(stage=stage, constrained=constrained, grammar_bounds=grammar_bounds)
        if llm is None:
            if model is None:
                raise ValueError("the vllm backend needs a model directory")
            llm = build_llm(model, tokenizer=tokenizer, **llm_options)
        self.llm = llm

    def sampling_params(self, max_new_tokens: int) -> Any:
        kwargs: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_new_tokens, "n": 1}
        if self.constrained:
            kwargs.update(structured_output_kwargs(self.vllm, self.program_regex()))
        return self.vllm.SamplingParams(**kwargs)

    def generate(self, prompts: Sequence[Any], *, max_new_tokens: int) -> list[str]:
        check_max_new_tokens(max_new_tokens)
        if not prompts:
            return []
        inputs = []
        for p in prompts:
            ids = prompt_ids(p)
            inputs.append(tokens_prompt(list(ids)) if ids is not None else prompt_text(p))
        with Timer(self.stats):
            results = self.llm.generate(inputs, self.sampling_params(max_new_tokens), use_tqdm=False)
        texts = []
        for result in results:
            completion = result.outputs[0]
            self.stats.prompt_tokens += len(result.prompt_token_ids or [])
            self.stats.completion_tokens += len(completion.token_ids)
            self.stats.truncated += int(completion.finish_reason == "length")
            texts.append(completion.text)
        self.stats.prompts += len(texts)
        return self.complete(texts)
