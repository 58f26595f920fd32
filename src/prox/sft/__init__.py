"""Supervised fine-tuning of small refining LMs on `prox annotate` records (TRL)."""
from __future__ import annotations

from prox.sft.data import DEFAULT_MAX_LENGTH, tokenize_records
from prox.sft.train import TrainLMOptions, build_trainer, convert_base, load_base, train_lm

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "TrainLMOptions",
    "build_trainer",
    "convert_base",
    "load_base",
    "tokenize_records",
    "train_lm",
]
