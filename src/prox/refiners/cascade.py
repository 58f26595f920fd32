"""The cascade refiner: the builtin decides the lines it is sure about, the encoder only the rest.

``--refiner cascade`` (shipped models) or ``cascade:PATH`` (an encoder model file, as
``encoder:PATH``). Needs what the encoder refiner needs (``pip install 'prox[encoder]'``).

Chunk stage: the builtin scores every page. A removable line (non-blank, not protected by
formula evidence) is *unsure* when its builtin P(noise) lies in a band around the builtin's
threshold: ``|logit(p) - logit(threshold)| < margin``. A page without unsure lines gets the
builtin's decision; a page with one is run through the encoder refiner as a whole page (its
BiGRU reads all the lines), and the encoder's decision replaces the builtin's on the unsure
lines (``encoder_lines="unsure"``) or on every line of the page (``"all"``). ``margin=0``
never calls the encoder (= the builtin); a very large margin (``inf``) sends every page with a
removable line to it (with ``encoder_lines="all"``: = the encoder refiner).
Doc stage: the builtin's doc decision, as the encoder refiner.

``stats()`` counts the pages and removable lines seen by the chunk stage and how many of them
went to the encoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from prox.builtin.predict import document_chunk_programs, removable_lines
from prox.encoder.device import check_device
from prox.refiners.options import parse_options

DEFAULT_MARGIN = 1.0
ENCODER_LINES = ("unsure", "all")
_EPS = 1e-6


def check_cascade(margin: float, encoder_lines: str) -> None:
    """Raise ValueError for a margin below 0 (or nan) or an unknown ``encoder_lines``."""
    if not margin >= 0:
        raise ValueError(f"option margin: expected a number >= 0, got {margin!r}")
    if encoder_lines not in ENCODER_LINES:
        raise ValueError(f"option encoder_lines: expected one of {', '.join(ENCODER_LINES)}, got {encoder_lines!r}")


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


class CascadeRefiner:
    name = "cascade"

    def __init__(self, model=None, *, builtin=None, encoder=None, margin: float = DEFAULT_MARGIN,
                 encoder_lines: str = "unsure", line_threshold: float | None = None,
                 builtin_threshold: float | None = None, doc_threshold: float | None = None,
                 protect_math: bool = True, normalize: bool = True, threads: int | None = None,
                 device: str = "cpu") -> None:
        from prox.encoder.device import resolve_device
        from prox.refiners.builtin import BuiltinRefiner
        from prox.refiners.encoder import EncoderRefiner

        margin = float(margin)
        check_cascade(margin, encoder_lines)
        resolve_device(device)  # a missing GPU fails before the builtin loads
        self.margin = margin
        self.encoder_lines = encoder_lines
        self.builtin = builtin if isinstance(builtin, BuiltinRefiner) else BuiltinRefiner(
            builtin, line_threshold=builtin_threshold, doc_threshold=doc_threshold, protect_math=protect_math,
            normalize=normalize)
        # the encoder refiner shares the builtin (its features, its caches, the doc decision)
        self.encoder = EncoderRefiner(model, builtin=self.builtin, encoder=encoder, line_threshold=line_threshold,
                                      protect_math=protect_math, normalize=normalize, threads=threads,
                                      device=device)
        self.protect_math = bool(protect_math)
        self.normalize = bool(normalize)
        self.reset_stats()

    # ------------------------------------------------------------------ counters
    def reset_stats(self) -> None:
        self.pages = self.pages_to_encoder = self.lines = self.lines_unsure = 0

    def stats(self) -> dict[str, int]:
        """Chunk-stage counters since construction (or `reset_stats`): pages and removable lines
        seen, pages sent to the encoder, unsure lines (those the band gave to the encoder)."""
        return {"pages": self.pages, "pages_to_encoder": self.pages_to_encoder, "lines": self.lines,
                "lines_unsure": self.lines_unsure}

    # ------------------------------------------------------------------ decisions
    def _removable(self, doc) -> np.ndarray:
        return removable_lines(len(doc.lines), doc.nonblank, doc.base, self.protect_math)

    def unsure_lines(self, doc, removable: np.ndarray | None = None) -> np.ndarray:
        """Bool per line of a builtin `DocAnalysis`: removable and inside the band."""
        if removable is None:
            removable = self._removable(doc)
        if self.margin <= 0 or not removable.any():
            return np.zeros(len(doc.lines), dtype=bool)
        if math.isinf(self.margin):
            return removable
        dist = np.abs(_logit(doc.probs) - _logit(self.builtin.line_threshold))
        return removable & (dist < self.margin)

    def noisy_masks(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The cascade's noisy-line mask of each text (before range merging); updates the counters."""
        docs = self.builtin.analyze(texts)
        masks, unsure = [], []
        for doc, builtin_noisy in zip(docs, self.builtin.noisy(docs)):
            removable = self._removable(doc)
            masks.append(builtin_noisy & removable)  # the builtin's decision; protected even at threshold 0
            u = self.unsure_lines(doc, removable)
            unsure.append(u)
            self.pages += 1
            self.lines += int(removable.sum())
            self.lines_unsure += int(u.sum())
        send = [i for i, u in enumerate(unsure) if u.any()]
        self.pages_to_encoder += len(send)
        if send:
            for i, enc_noisy in zip(send, self.encoder.noisy(self.encoder.analyze([texts[i] for i in send]))):
                if self.encoder_lines == "all":
                    masks[i] = enc_noisy
                else:
                    masks[i] = masks[i].copy()
                    masks[i][unsure[i]] = enc_noisy[unsure[i]]
        return masks

    def noisy_lines(self, texts: Sequence[str]) -> list[list[int]]:
        return [np.flatnonzero(m).tolist() for m in self.noisy_masks(texts)]

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        return self.builtin.doc_programs(texts)

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        matcher = self.builtin.model.fragment_matcher if self.normalize else None
        return document_chunk_programs(self.builtin.analyze(texts), self.noisy_masks(texts), matcher)


@dataclass(frozen=True)
class CascadeOptions:
    model: Any = None  # the encoder model file (.npz) or a loaded EncoderModel; default: the shipped one
    builtin: Any = None  # the builtin model (.npz, BuiltinModel or BuiltinRefiner); default: the shipped one
    encoder: Any = None  # a loaded prox.encoder.embed.LineEncoder (tests); default: the shipped base encoder
    margin: float = DEFAULT_MARGIN  # band |logit(p) - logit(builtin threshold)| sent to the encoder; 0 = builtin only
    encoder_lines: str = "unsure"  # on a page sent to the encoder, it decides the "unsure" lines or "all" lines
    line_threshold: float | None = None  # the encoder's P(noise) threshold (default: its model's)
    builtin_threshold: float | None = None  # the builtin's P(noise) threshold, the band's centre (default: its model's)
    doc_threshold: float | None = None  # the builtin's P(keep) below which a document is dropped
    protect_math: bool = True  # never remove lines with formula evidence (prox.mathtext)
    normalize: bool = True  # the builtin's learned junk prefix/suffix cuts on kept lines
    threads: int | None = None  # torch threads (default: torch's)
    device: str = "cpu"  # the encoder's device: cpu, cuda, cuda:N or auto (cuda when available)

    def __post_init__(self) -> None:  # checked by check_refiner_options too, before any model loads
        check_cascade(self.margin, self.encoder_lines)
        check_device(self.device)


def make_refiner(arg: str | None = None, **options: Any) -> CascadeRefiner:
    """Registry factory: ``cascade`` (shipped models) or ``cascade:PATH`` (an encoder model file)."""
    o = parse_options(CascadeOptions, options, refiner="cascade")
    return CascadeRefiner(o.model or arg, builtin=o.builtin, encoder=o.encoder, margin=o.margin,
                          encoder_lines=o.encoder_lines, line_threshold=o.line_threshold,
                          builtin_threshold=o.builtin_threshold, doc_threshold=o.doc_threshold,
                          protect_math=o.protect_math, normalize=o.normalize, threads=o.threads,
                          device=o.device)


make_refiner.options = CascadeOptions  # type: ignore[attr-defined]
