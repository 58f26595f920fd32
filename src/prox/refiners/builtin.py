"""The builtin refiner: the embedded CPU model writes the same programs as the LM refiners.

``--refiner builtin`` uses the model shipped in ``prox/builtin/model/``;
``--refiner builtin:PATH`` loads a model trained with ``prox train builtin``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from prox.builtin.model import BuiltinModel, DocAnalysis
from prox.builtin import features as F
from prox.builtin.predict import doc_program, document_chunk_programs, noisy_masks
from prox.refiners.options import parse_options
from prox.refiners.stage_cache import StageCache


class BuiltinRefiner:
    """Predicts keep/drop per document and noisy lines per document; no LM, no network.

    Options: ``line_threshold`` (P(noise) at which a line is removed) and
    ``doc_threshold`` (P(keep) below which a document is dropped) and ``rescue_margin`` (a page
    whose removals are expected to cost more word F1 than this keeps its likely content lines:
    `prox.builtin.predict.noisy_mask`; negative: every page, ``inf``: never) override the model's
    tuned values; ``protect_math=False`` lets the trees remove lines with math markup
    (by default they are kept, see `BuiltinModel.analyze`). See `BuiltinOptions`.
    """

    name = "builtin"

    def __init__(self, model: BuiltinModel | str | Path | None = None, *, line_threshold: float | None = None,
                 doc_threshold: float | None = None, protect_math: bool = True, normalize: bool = True,
                 rescue_margin: float | None = None) -> None:
        self.model = model if isinstance(model, BuiltinModel) else BuiltinModel.load(model)
        self.line_threshold = self.model.line_threshold if line_threshold is None else float(line_threshold)
        if doc_threshold is not None:
            self.doc_threshold = float(doc_threshold)
        else:
            self.doc_threshold = self.model.doc.threshold if self.model.doc is not None else 0.0
        self.rescue_margin = self.model.rescue_margin if rescue_margin is None else float(rescue_margin)
        self.protect_math = bool(protect_math)
        self.normalize = bool(normalize)
        self._cache: StageCache[DocAnalysis] = StageCache()

    def analyze(self, texts: Sequence[str]) -> list[DocAnalysis]:
        return self._cache.get(texts, lambda missing: self.model.analyze(missing, protect_math=self.protect_math))

    def noisy_lines(self, texts: Sequence[str]) -> list[list[int]]:
        """Predicted noisy line indices of each text (before range merging)."""
        return [np.flatnonzero(m).tolist() for m in self.noisy(self.analyze(texts))]

    def noisy(self, docs: Sequence[DocAnalysis]) -> list[np.ndarray]:
        """The lines of analysed documents to remove (`prox.builtin.predict.noisy_mask`)."""
        return noisy_masks([d.probs for d in docs], [F.line_words(d.base) for d in docs], self.line_threshold,
                           self.rescue_margin)

    def keep_probs(self, texts: Sequence[str]) -> list[float]:
        return self.model.doc_keep_probs(self.analyze(texts)).tolist()

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        return [doc_program(p >= self.doc_threshold) for p in self.keep_probs(texts)]

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        # junk prefixes/suffixes of the kept lines are cut where safe (`prox.builtin.fragments`)
        matcher = self.model.fragment_matcher if self.normalize else None
        docs = self.analyze(texts)
        return document_chunk_programs(docs, self.noisy(docs), matcher)


@dataclass(frozen=True)
class BuiltinOptions:
    model: Any = None  # a model file (.npz) or a loaded BuiltinModel; default: the shipped one
    line_threshold: float | None = None  # P(noise) at which a line is removed (default: the model's)
    doc_threshold: float | None = None  # P(keep) below which a document is dropped (default: the model's)
    protect_math: bool = True  # never remove lines with formula evidence (prox.mathtext)
    normalize: bool = True  # cut learned junk prefixes/suffixes of kept lines with normalize()
    rescue_margin: float | None = None  # word-F1 rescue of pages the threshold would empty (default: the model's; inf: off)


def make_refiner(arg: str | None = None, **options: Any) -> BuiltinRefiner:
    """Registry factory: ``builtin`` (shipped model) or ``builtin:PATH``."""
    opts = parse_options(BuiltinOptions, options, refiner="builtin")
    return BuiltinRefiner(opts.model or arg, line_threshold=opts.line_threshold, doc_threshold=opts.doc_threshold,
                          protect_math=opts.protect_math, normalize=opts.normalize,
                          rescue_margin=opts.rescue_margin)


make_refiner.options = BuiltinOptions  # type: ignore[attr-defined]
