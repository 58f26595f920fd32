"""LM generation backends: batched rendered prompts in, generated texts out.

- `base`: the `Generator` protocol, `GenerationStats` (token accounting) and `BackendBase`
  (the checks and the trimming of constrained output every backend shares).
- `constrained`: the program grammar (regex, GBNF) for constrained decoding.
- `transformers_backend`, `vllm_backend`, `openai_backend`: the engines; each is imported
  only when used (torch, vLLM and llguidance stay optional).
"""
from prox.generate.base import GenerationStats, Generator

__all__ = ["GenerationStats", "Generator"]
