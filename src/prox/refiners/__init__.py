"""Refiner registry: `--refiner NAME[:ARG]` resolves here.

Each entry is imported only when chosen, so heavy engines (torch, vLLM) stay optional.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

from prox.program import STAGES
from prox.refiners.base import Refiner, join_chunk_programs
from prox.refiners.options import UnknownOptionError, option_names, parse_options

# name -> "module:factory". The factory takes (arg: str | None, **options) -> Refiner.
REFINERS: dict[str, str] = {
    "builtin": "prox.refiners.builtin:make_refiner",
    "encoder": "prox.refiners.encoder:make_refiner",
    "cascade": "prox.refiners.cascade:make_refiner",
    "transformers": "prox.refiners.lm:make_transformers_refiner",
    "vllm": "prox.refiners.lm:make_vllm_refiner",
    "openai": "prox.refiners.lm:make_openai_refiner",
    "rules": "prox.refiners.rules:make_refiner",
}


def get_refiner(spec: str = "builtin", **options: Any) -> Refiner:
    """Build a refiner from a spec.

    ``builtin``, ``builtin:MODEL.npz``, ``transformers[:MODEL]``, ``vllm[:MODEL]``,
    ``openai[:URL]``, ``rules:NAME[+NAME]`` come from the registry (factory called as
    ``factory(arg, **options)``). Any other ``module[:factory]`` imports ``module`` and calls
    ``factory(**options)`` (default factory name ``make_refiner``), so an importable Refiner
    works everywhere (`prox refine`, `prox eval`, `prox compare`) without registering it.
    """
    factory, args = _resolve(spec)
    return factory(*args, **options)



def refiner_stages(refiner: Any, **options: Any) -> tuple[str, ...]:
    """The stages a refiner can run, known without building it (no model is loaded).

    An object: its ``stages`` attribute (default both). A spec: the options are checked first
    (`check_refiner_options`), then the factory's ``stages(arg, **options)`` function when it
    has one (the LM factories: the stages given a model), else both.
    Raises ValueError when the options cannot make a refiner at all (an unknown option, a bad
    value, no model).
    """
    if not isinstance(refiner, str):
        return tuple(getattr(refiner, "stages", STAGES))
    check_refiner_options(refiner, **options)
    factory, args = _resolve(refiner)
    probe = getattr(factory, "stages", None)
    return tuple(probe(*args, **options)) if callable(probe) else STAGES


def refiner_options_class(spec: str) -> type | None:
    """The typed options of a spec's factory (its ``options`` attribute), None when it declares none."""
    factory, _ = _resolve(spec)
    return getattr(factory, "options", None)


def check_refiner_options(spec: str, **options: Any) -> None:
    """Raise (`UnknownOptionError` / ValueError) for an option the refiner does not have or a value
    of the wrong type, before any work starts and without building the refiner."""
    cls = refiner_options_class(spec)
    if cls is not None:
        parse_options(cls, options, refiner=spec)


def accepts_option(spec: str, name: str) -> bool:
    """Whether the refiner of ``spec`` has option ``name`` (refiners without typed options: no)."""
    cls = refiner_options_class(spec)
    return cls is not None and name in option_names(cls)


def check_refiner_spec(spec: str) -> None:
    """Raise ValueError for a spec that names neither a registered refiner nor an importable module
    (cheap: imports nothing from the registry, only locates a ``module:factory`` module)."""
    name = spec.partition(":")[0]
    if name in REFINERS:
        return
    try:
        found = importlib.util.find_spec(name) if name else None
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"unknown refiner {spec!r}; choose one of {', '.join(sorted(REFINERS))} or module:factory")


def _resolve(spec: str) -> tuple[Callable[..., Any], tuple]:
    """(factory, leading positional args) for a spec."""
    check_refiner_spec(spec)
    name, _, arg = spec.partition(":")
    if name in REFINERS:
        module_name, factory_name = REFINERS[name].split(":")
        return getattr(importlib.import_module(module_name), factory_name), (arg or None,)
    factory = getattr(importlib.import_module(name), arg or "make_refiner", None)
    if not callable(factory):
        raise ValueError(f"refiner {spec!r}: module {name!r} has no callable {arg or 'make_refiner'!r}")
    return factory, ()


__all__ = ["Refiner", "REFINERS", "STAGES", "UnknownOptionError", "accepts_option", "check_refiner_options",
           "check_refiner_spec", "get_refiner", "join_chunk_programs", "refiner_options_class", "refiner_stages"]
