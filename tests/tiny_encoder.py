"""A tiny encoder-refiner stack built inside the tests (no downloads): a 1-layer BERT with a
word-level vocabulary and random (seeded) weights, synthetic pages, a small trained sequence model.

Used by ``tests/test_encoder_refiner.py`` and ``tests/test_cascade_refiner.py`` through the
``tiny_encoder`` / ``tiny_trained`` fixtures of ``conftest.py``; importing it needs torch and
transformers (the fixtures skip without them).
"""
from __future__ import annotations

import random
from pathlib import Path

WORDS = ("the river city council said new plan would bring homes families work school years after long "
         "debate members voted share facebook twitter email subscribe newsletter cookies accept privacy "
         "policy home about contact related posts comments reply read more copyright rights reserved").split()
NOISE = ["Share on Facebook", "Subscribe to our newsletter", "Accept cookies", "Home | About | Contact",
         "Related posts", "Reply", "Read more", "Copyright 2024 All rights reserved", "Privacy policy"]


def build_tiny_encoder(folder: Path):
    """A LineEncoder over a 1-layer BERT (hidden 16), max_tokens 8, batches of 4."""
    import torch
    import transformers

    from prox.encoder.embed import LineEncoder

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS)) + list("0123456789|$=+^{}\\")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64)
    model = transformers.BertModel(cfg)
    # max_tokens 8 < the longest lines of tiny_page: a line longer than one encoder window is truncated
    return LineEncoder(model=model, tokenizer=tok, max_tokens=8, batch=4)


def tiny_page(rng: random.Random, n_body: int) -> tuple[str, set[int], set[int]]:
    """(text, noisy line indices, content line indices): noise lines around a body, blank lines between."""
    lines, noisy, content = [], set(), set()

    def add(text: str, is_noise: bool) -> None:
        (noisy if is_noise else content).add(len(lines))
        lines.append(text)
        lines.append("")

    for _ in range(rng.randint(2, 4)):
        add(rng.choice(NOISE), True)
    for _ in range(n_body):
        add(" ".join(rng.choice(WORDS[:20]) for _ in range(rng.randint(12, 30))).capitalize() + ".", False)
    for _ in range(rng.randint(2, 5)):
        add(rng.choice(NOISE), True)
    return "\n".join(lines[:-1]), noisy, content


def tiny_rows(n: int, seed: int = 0) -> list:
    from prox.builtin.data import LineRow

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text, noisy, content = tiny_page(rng, rng.randint(3, 12))
        rows.append(LineRow(f"p{i}:dclm", text, noisy, content, f"p{i}", "dclm", "synthetic"))
    return rows


def train_tiny(encoder, folder: Path):
    """(model, saved path, config, rows): the sequence model trained on 40 synthetic pages."""
    from prox.encoder.model import SeqConfig
    from prox.encoder.train import EncoderTrainConfig, train

    rows = tiny_rows(40)
    cfg = EncoderTrainConfig(seed=0, epochs=8, lr=1e-2, folds=2, threads=1, seq=SeqConfig(proj=8, hidden=8, layers=1))
    model = train(rows, encoder, cfg)
    return model, model.save(folder / "encoder.npz"), cfg, rows


def refine_tiny_pages(refiner, folder: Path) -> tuple[dict, int]:
    """`prox refine` (chunk stage) of five tiny pages plus an empty and a one-word document with
    ``refiner``; returns (the run's stats, the number of input documents)."""
    import json

    from prox.pipeline import RefineConfig, run_refine

    rng = random.Random(3)
    src = folder / "in.jsonl"
    texts = [tiny_page(rng, rng.randint(20, 40))[0] for _ in range(5)] + ["", "Reply"]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    stats = run_refine(RefineConfig(inputs=[str(src)], output_dir=str(folder / "out"), refiner=refiner, stages=("chunk",)))
    return stats, len(texts)
