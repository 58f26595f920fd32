"""Per-text analyses kept between the doc and the chunk stage of the same documents.

A refiner that reads each document once for both stages (the builtin, the encoder) analyses a
batch for the doc programs and finds the same texts again for the chunk programs.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Iterable, Sequence, TypeVar

A = TypeVar("A")

CACHE_DOCS = 4096  # analyses kept (at least one whole batch)


class StageCache(Generic[A]):
    """The analyses of the latest texts, oldest evicted first (first in, first out)."""

    def __init__(self, size: int = CACHE_DOCS) -> None:
        self.size = size
        self._items: OrderedDict[str, A] = OrderedDict()

    def get(self, texts: Sequence[str], analyze: Callable[[list[str]], Iterable[A]]) -> list[A]:
        """The analysis of each text; ``analyze`` runs once, on the distinct texts not held."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._items]
        if missing:
            for text, analysis in zip(missing, analyze(missing)):
                self._items[text] = analysis
        out = [self._items[t] for t in texts]
        while len(self._items) > max(self.size, len(texts)):
            self._items.popitem(last=False)
        return out

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
