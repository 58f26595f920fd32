"""The embedded CPU refiner: line/doc features, a pure-numpy model, training, programs.

``prox.refiners.builtin`` wraps it as a `Refiner`; ``prox train builtin`` trains it.
"""
from __future__ import annotations

__all__ = ["BuiltinModel", "shipped_model_path"]


def __getattr__(name: str):
    if name in __all__:
        from prox.builtin import model

        return getattr(model, name)
    raise AttributeError(name)
