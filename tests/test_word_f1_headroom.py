"""The pieces of `benchmarks/word_f1_headroom.py` its table rests on: gold coverage of a line and
the smoothed (two-state Viterbi) decision. The script itself trains on the benchmark (~4 min)."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "word_f1_headroom.py"


def load_script():
    spec = importlib.util.spec_from_file_location("word_f1_headroom", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gold_coverage_counts_aligned_blocks_of_three_words():
    h = load_script()
    page = "\n".join([
        "Home | News | Sport",
        "The council approved the new budget on Monday evening.",
        "Posted by admin. The vote was close, seven to six.",
        "",
        "Share: Facebook Twitter",
        "News",
    ])
    gold = "The council approved the new budget on Monday evening. The vote was close, seven to six."
    cov = h.gold_coverage(page, gold)
    assert cov.tolist()[:2] == [0.0, 1.0]
    # "posted by admin" is not in the gold, the 7 words after it are
    assert cov[2] == 7 / 10
    assert cov[3] == 1.0  # no words: nothing to miss
    assert cov[4] == 0.0
    # a single gold word ("news" is not in this gold; "the" is) never matches on its own
    assert h.gold_coverage("the\nNews", gold).tolist() == [0.0, 0.0]


def brute_force(vote: np.ndarray, switch_cost: float) -> np.ndarray:
    best, best_cost = None, np.inf
    for states in itertools.product((0, 1), repeat=len(vote)):
        s = np.array(states)
        cost = -(vote * s).sum() + switch_cost * np.count_nonzero(np.diff(s))
        if cost < best_cost - 1e-12:
            best, best_cost = s, cost
    return best.astype(bool)


def test_smoothed_is_the_cheapest_state_path():
    h = load_script()
    rng = np.random.default_rng(0)
    threshold = 0.4
    for _ in range(60):
        n = int(rng.integers(1, 9))
        p = rng.uniform(0.01, 0.99, n)
        w = rng.integers(0, 30, n).astype(float)
        cost = float(rng.choice([0.0, 0.5, 2.0]))
        z = np.log(p / (1 - p)) - np.log(threshold / (1 - threshold))
        expected = brute_force(z * np.sqrt(1 + w), cost)
        assert h.smoothed(p, w, threshold, cost).tolist() == expected.tolist()
    # no switch cost: the plain threshold
    p = np.array([0.1, 0.5, 0.3, 0.9])
    assert h.smoothed(p, np.ones(4), threshold, 0.0).tolist() == (p >= threshold).tolist()
