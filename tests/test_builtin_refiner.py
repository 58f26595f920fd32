"""The shipped builtin model: loads offline and fast, writes programs that parse and execute."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

import builtin_oracle as O
from conftest import BENCHMARKS
from prox.builtin import features as F
from prox.records import load_records
from prox.builtin.model import BuiltinModel, shipped_model_path
from prox.builtin.predict import noisy_ranges
from prox.executor import execute
from prox.parse import parse_program
from prox.program import DropDoc, KeepDoc, NoOp, RemoveLines
from prox.refiners import get_refiner, join_chunk_programs
from prox.refiners.builtin import BuiltinRefiner


EDGE_TEXTS = [
    "",
    " ",
    "\n\n\n",
    "one line without newline",
    "Home\nAbout\nContact\n",
    "line\r\nwith\r\ncrlf\r\n",
    "\u200b\u200b\n\u3000",
    "日本語のテキストです。これは段落です。\n次の行。",
    "x" * 50000,
    "word " * 5000,
    "\n".join(f"Item {i}" for i in range(2000)),
    "A normal paragraph that ends with a period and has quite a few words in it, really.\n\nShare\nTweet",
]


@pytest.fixture(scope="module")
def refiner() -> BuiltinRefiner:
    if not shipped_model_path().is_file():
        pytest.fail(f"shipped model missing: {shipped_model_path()}")
    return BuiltinRefiner()


def test_shipped_model_loads_offline_fast_and_small():
    path = shipped_model_path()
    assert path.stat().st_size <= 20_000_000
    t0 = time.perf_counter()
    model = BuiltinModel.load()
    assert time.perf_counter() - t0 < 1.0
    assert model.doc is not None and len(model.vocab) > 1000
    assert model.meta["line_features"] == F.LINE_FEATURES
    assert "licences" in model.meta


def test_registry_builds_the_builtin_refiner(tmp_path):
    r = get_refiner("builtin")
    assert r.name == "builtin"
    with pytest.raises(FileNotFoundError):
        get_refiner(f"builtin:{tmp_path / 'nope.npz'}")


def _check_programs(refiner: BuiltinRefiner, texts: list[str]) -> None:
    docs = refiner.doc_programs(texts)
    chunks = refiner.chunk_programs(texts)
    assert len(docs) == len(chunks) == len(texts)
    for text, dprog, cprogs in zip(texts, docs, chunks):
        dp = parse_program(dprog, stage="doc")
        assert not dp.errors and len(dp.operations) == 1 and isinstance(dp.operations[0], (KeepDoc, DropDoc))
        program = join_chunk_programs(cprogs)
        cp = parse_program(program, stage="chunk")
        assert not cp.errors, (program, cp.errors)
        n = len(text.split("\n"))
        ranges = [op for op in cp.operations if isinstance(op, RemoveLines)]
        assert ranges or cp.operations == [NoOp("skip_chunk")]
        for op in ranges:
            assert 0 <= op.start <= op.end < n
        assert all(a.end + 1 < b.start for a, b in zip(ranges, ranges[1:]))  # merged, sorted
        res = execute(text, program, stage="chunk")
        # the builtin's programs are clean: no error, never ignored; only the executor's word rules may drop
        assert not res.errors and not res.program_ignored, (program, res.errors)
        assert res.drop_reason in (None, "too_few_words", "low_kept_ratio"), res.drop_reason
        assert execute(text, dprog, stage="doc").dropped == isinstance(dp.operations[0], DropDoc)


def test_programs_parse_and_execute_on_edge_cases(refiner):
    _check_programs(refiner, EDGE_TEXTS)


def test_programs_parse_and_execute_on_real_pages(refiner):
    gold = BENCHMARKS / "lines-public-dev.jsonl.gz"
    if not gold.exists():
        pytest.skip(f"shared data missing: {gold}")
    texts = [r["text"] for _, r in zip(range(150), load_records(gold))]
    _check_programs(refiner, texts)


def test_removes_obvious_boilerplate_and_keeps_prose(refiner):
    prose = ("The river flooded the lower town after three days of rain, and the council opened the school "
             "gym as a shelter for the families who had to leave their homes.")
    text = "\n".join([
        "Skip to main content", "", prose, "", prose.replace("river", "lake"), "",
        "Share this article", "Facebook", "Twitter", "", "© 2024 Example News. All rights reserved.",
    ])
    noisy = set(refiner.noisy_lines([text])[0])
    assert 2 not in noisy and 4 not in noisy
    assert {6, 7, 8, 10} <= noisy


def test_cache_and_batch_give_the_same_programs(refiner):
    texts = EDGE_TEXTS[3:8]
    one_by_one = [refiner.chunk_programs([t])[0] for t in texts]
    refiner._cache.clear()
    assert refiner.chunk_programs(texts) == one_by_one


def test_thresholds_can_be_overridden(refiner):
    everything = BuiltinRefiner(refiner.model, line_threshold=0.0, doc_threshold=1.01, rescue_margin=float("inf"))
    text = "Some words here.\nMore words there."
    assert everything.chunk_programs([text]) == [["remove_lines(line_start=0, line_end=1)"]]
    # with the word-F1 rescue on, a threshold that would empty the page keeps its likely content
    rescued = BuiltinRefiner(refiner.model, line_threshold=0.0, rescue_margin=0.0)
    assert rescued.chunk_programs([text]) != [["remove_lines(line_start=0, line_end=1)"]]
    assert everything.doc_programs([text]) == ["drop_doc()"]


def test_noisy_ranges_bridge_blank_lines():
    lines = ["a", "", "b", "c", "", "", "d", "e"]
    noisy = np.array([1, 0, 1, 0, 0, 0, 1, 1], dtype=bool)
    assert noisy_ranges(lines, noisy) == [(0, 2), (6, 7)]
    assert noisy_ranges(lines, noisy, bridge_blank=False) == [(0, 0), (2, 2), (6, 7)]


def test_batch_features_equal_per_document_features():
    texts = EDGE_TEXTS + ["a\n\nb\n" * 5, "Long line " * 30 + "\nshort\n\n" + "x " * 40]
    bases = [O.base_matrix(t.split("\n")) for t in texts]
    rng = np.random.default_rng(0)
    scores = [rng.normal(size=len(b)) for b in bases]
    X, nonblank = O.batch_line_features(bases, scores)
    ref = np.concatenate([O.doc_line_features(b, s)[i] for b, s, i in zip(bases, scores, nonblank)])
    assert X.shape == ref.shape and np.allclose(X, ref, atol=1e-12)


def test_model_round_trip_is_exact(refiner, tmp_path):
    path = refiner.model.save(tmp_path / "copy.npz")
    again = BuiltinModel.load(path)
    texts = EDGE_TEXTS[3:] + [json.dumps({"k": 1})]
    a = [d.probs for d in refiner.model.analyze(texts)]
    b = [d.probs for d in again.analyze(texts)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert path.read_bytes() == refiner.model.save(tmp_path / "copy2.npz").read_bytes()


def test_saving_the_shipped_model_writes_the_shipped_file(tmp_path):
    shipped = shipped_model_path()
    assert BuiltinModel.load(shipped).save(tmp_path / "copy.npz").read_bytes() == shipped.read_bytes()
