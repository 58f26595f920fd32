"""Refiner registry: `--refiner NAME[:ARG]` resolves here.

Each entry is imported only when chosen, so heavy engines (torch, vLLM) stay optional.
"""
from __future__ import annotations

import importlib
from typing import Any

from prox.refiners.base import Refiner, join_chunk_programs

# name -> "module:factory". The factory takes (arg: str | None, **options) -> Refiner.
REFINERS: dict[str, str] = {
    "builtin": "prox.refiners.builtin:make_refiner",
    "transformers": "prox.refiners.lm:make_transformers_refiner",
    "vllm": "prox.refiners.lm:make_vllm_refiner",
    "openai": "prox.refiners.lm:make_openai_refiner",
    "rules": "prox.refiners.rules:make_refiner",
}


def get_refiner(spec: str = "builtin", **options: Any) -> Refiner:
    """Build a refiner from a spec such as ``builtin``, ``transformers`` or ``rules:c4``."""
    name, _, arg = spec.partition(":")
    if name not in REFINERS:
        raise ValueError(f"unknown refiner {spec!r}; choose one of {', '.join(sorted(REFINERS))}")
    module_name, factory_name = REFINERS[name].split(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(arg or None, **options)


__all__ = ["Refiner", "REFINERS", "get_refiner", "join_chunk_programs"]
