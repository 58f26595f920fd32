"""The word-F1 rescue of the builtin's line decision (`prox.builtin.predict.noisy_mask`) and the
training step that chooses its margin (`prox.builtin.train.choose_rescue_margin`)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import BENCHMARKS, need
from prox.builtin import features as F
from prox.builtin.data import Loaded, line_row
from prox.builtin.fragments import word_pages
from prox.builtin.model import BuiltinModel
from prox.builtin.predict import best_expected_keep, expected_word_f1, noisy_mask, noisy_masks
from prox.builtin.train import RESCUE_MARGINS, TrainConfig, train
from prox.evaluate.metrics import word_prf
from prox.records import load_records
from prox.refiners import get_refiner
from prox.refiners.builtin import BuiltinRefiner

THRESHOLD = 0.37


def test_expected_word_f1_by_hand():
    keep_prob = np.array([1.0, 0.5, 0.0])
    words = np.array([10.0, 10.0, 10.0])
    # expected gold = 10 + 5 = 15 words; keeping the first line: hits 10, output 10
    assert expected_word_f1(keep_prob, words, np.array([True, False, False])) == pytest.approx(2 * 10 / 25)
    # keeping the first two: hits 15, output 20
    assert expected_word_f1(keep_prob, words, np.array([True, True, False])) == pytest.approx(2 * 15 / 35)
    # no words at all: nothing to lose
    assert expected_word_f1(np.array([0.3]), np.array([0.0]), np.array([False])) == 1.0


def test_best_expected_keep_is_the_best_prefix_by_keep_probability():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 12))
        keep_prob, words = rng.random(n), rng.integers(0, 30, n).astype(float)
        best = best_expected_keep(keep_prob, words)
        f_best = expected_word_f1(keep_prob, words, best)
        # no subset of the lines does better (exhaustive)
        for bits in range(1, 2 ** n):
            kept = np.array([(bits >> i) & 1 for i in range(n)], dtype=bool)
            assert expected_word_f1(keep_prob, words, kept) <= f_best + 1e-12


def test_a_page_whose_content_all_looks_a_little_noisy_keeps_its_content():
    # a forum thread in a full-page dump: the posts score 0.5-0.65, the menus 0.99
    probs = np.array([0.99, 0.99, 0.99, 0.6, 0.55, 0.65, 0.5, 0.99, 0.99])
    words = np.array([1, 2, 1, 30, 25, 40, 20, 2, 1], dtype=float)
    assert noisy_mask(probs, words, THRESHOLD, None).tolist() == [True] * 9  # the threshold empties it
    rescued = noisy_mask(probs, words, THRESHOLD, 0.1)
    assert rescued.tolist() == [True, True, True, False, False, False, False, True, True]
    assert noisy_mask(probs, words, THRESHOLD, math.inf).all()  # inf: the threshold alone
    # a line whose words are less likely content than the page's expected F1 / 2 still goes
    probs[5] = 0.8
    assert noisy_mask(probs, words, THRESHOLD, 0.1)[5]


def test_a_confident_page_is_left_to_the_threshold():
    probs = np.array([0.99, 0.95, 0.05, 0.1, 0.02, 0.9])
    words = np.array([2, 3, 40, 35, 50, 4], dtype=float)
    assert (noisy_mask(probs, words, THRESHOLD, 0.1) == (probs >= THRESHOLD)).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 60)), min_size=0, max_size=40),
       st.sampled_from([-1.0, 0.0, 0.05, 0.2, math.inf]))
def test_the_rescue_only_ever_keeps_more(lines, margin):
    probs = np.array([p for p, _ in lines], dtype=float)
    words = np.array([w for _, w in lines], dtype=float)
    rescued = noisy_mask(probs, words, THRESHOLD, margin)
    assert not (rescued & (probs < THRESHOLD)).any()
    assert (rescued <= (probs >= THRESHOLD)).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 60)), max_size=30), min_size=1, max_size=6),
       st.sampled_from([None, -1.0, 0.0, 0.05, 0.2, math.inf]))
def test_the_batch_decision_equals_the_per_document_one(docs, margin):
    probs = [np.array([p for p, _ in d], dtype=float) for d in docs]
    words = [np.array([w for _, w in d], dtype=float) for d in docs]
    batch = noisy_masks(probs, words, THRESHOLD, margin)
    assert [m.tolist() for m in batch] == [noisy_mask(p, w, THRESHOLD, margin).tolist() for p, w in zip(probs, words)]


def _mean_word_f1(refiner: BuiltinRefiner, rows: list[dict]) -> float:
    from prox.evaluate.run import text_predictor

    out = text_predictor(refiner, ["chunk"])([r["text"] for r in rows])
    return float(np.mean([word_prf(o, r["gold_text"])[2] for o, r in zip(out, rows)]))


def test_shipped_model_rescues_full_page_dumps_on_train_pages():
    """On real `wet` pages (train split), the shipped rescue margin raises word F1 over the
    threshold alone and removes no line the threshold keeps."""
    rows = [r for r in load_records(need(BENCHMARKS / "words-public-train.jsonl.gz")) if r["view"] == "wet"][:120]
    model = BuiltinModel.load()
    assert model.rescue_margin is not None and model.rescue_margin in RESCUE_MARGINS
    rescue, threshold_only = BuiltinRefiner(model), BuiltinRefiner(model, rescue_margin=math.inf)
    with_rescue, without = _mean_word_f1(rescue, rows), _mean_word_f1(threshold_only, rows)
    assert with_rescue > without + 0.01, (with_rescue, without)
    for a, b in zip(rescue.noisy_lines([r["text"] for r in rows]), threshold_only.noisy_lines([r["text"] for r in rows])):
        assert set(a) <= set(b)


def test_rescue_margin_is_a_typed_option():
    ref = get_refiner("builtin", rescue_margin="inf")
    assert ref.rescue_margin == math.inf
    with pytest.raises(ValueError):
        get_refiner("builtin", rescue_margin="sometimes")


def test_training_chooses_a_margin_that_keeps_line_f1(tmp_path):
    rows = [r for r in load_records(need(BENCHMARKS / "words-public-train.jsonl.gz"))
            if r["source"] == "wcxb-dev"][:160]
    labels = {r["id"]: r for r in load_records(need(BENCHMARKS / "lines-public-train.jsonl.gz"))}
    data = Loaded()
    data.lines = [line_row(labels[r["id"]]) for r in rows]
    gold = {text: g for _, text, g in word_pages(rows)}
    model = train(data.lines, [], TrainConfig(seed=1, folds=2, trees=30, min_df=2, threads=1), gold_texts=gold)
    summary = model.meta["line_cv"]["rescue"]
    table = {row["margin"]: row for row in summary["table"]}
    assert summary["word_pages"] == len(rows)
    assert set(table) == {None, *RESCUE_MARGINS}
    chosen = table[summary["margin"]]
    # the choice: best word F1 among the margins within the line-F1 tolerance of the threshold alone
    views = {r["view"] for r in rows}
    for view in views:
        assert chosen["line_f1"][view] >= table[None]["line_f1"][view] - summary["tolerance"]
    feasible = [r for r in table.values()
                if all(r["line_f1"][v] >= table[None]["line_f1"][v] - summary["tolerance"] for v in views)]
    assert chosen["word_f1"] == max(r["word_f1"] for r in feasible)
    assert model.rescue_margin == summary["margin"]
    assert BuiltinModel.load(model.save(tmp_path / "m.npz")).rescue_margin == model.rescue_margin
