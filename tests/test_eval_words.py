"""`prox eval words`: word-level P/R/F1 of refined text against a gold main text (benchmarks README,
"Word-level files"), side by side with the raw text and the rows' extractor outputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import BENCHMARKS, need
from prox.cli import app
from prox.evaluate.metrics import WordScorer, word_bag, word_prf
from prox.evaluate.run import eval_words, text_predictor, word_row
from fakes import WordRuleRefiner, expected_text

WORDS_DEV = BENCHMARKS / "words-public-dev.jsonl.gz"
FAKE = "fakes:make_refiner"


def dev_rows(step: int = 1) -> list:
    from prox.records import load_records

    return [word_row(r) for r in load_records(need(WORDS_DEV))][::step]


def test_word_prf_is_a_multiset_overlap_of_lowercased_word_tokens():
    assert word_bag("The cat's hat, THE hat!") == {"the": 2, "cat": 1, "s": 1, "hat": 2}
    p, r, f = word_prf("The cat, the CAT sat.", "the cat sat on the mat")  # overlap: the 2, cat 1, sat 1
    assert (p, r) == pytest.approx((4 / 5, 4 / 6))
    assert f == pytest.approx(2 * p * r / (p + r))
    assert word_prf("x y", word_bag("x z")) == pytest.approx((0.5, 0.5, 0.5))  # a precomputed gold bag
    # the line-macro conventions: empty output P = 1 (R = 0 so F1 = 0); empty gold R = 1; both empty F1 = 1
    assert word_prf("", "some gold words") == (1.0, 0.0, 0.0)
    assert word_prf("spurious", "") == (0.0, 1.0, 0.0)
    assert word_prf("", "") == (1.0, 1.0, 1.0)


def test_word_scorer_means_over_pages_per_view_source_and_output():
    s = WordScorer()
    s.add("wet", "a", {"refiner": "x y", "raw": "x y noise"}, "x y")
    s.add("wet", "b", {"refiner": "", "raw": "x"}, "x")
    s.add("dclm", "a", {"refiner": "x", "raw": "x", "extractor": "x"}, "x")
    out = s.to_dict()
    assert list(out) == ["dclm", "wet"] and list(out["wet"]) == ["a", "b", "ALL"]
    assert out["wet"]["a"]["outputs"]["raw"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    every = out["wet"]["ALL"]
    assert every["rows"] == 2
    assert every["outputs"]["refiner"] == {"rows": 2, "precision": 1.0, "recall": 0.5, "f1": 0.5}
    assert every["outputs"]["raw"]["f1"] == pytest.approx((0.8 + 1.0) / 2, abs=1e-4)
    # an output only some pages have is averaged over those pages
    assert out["dclm"]["ALL"]["outputs"]["extractor"]["rows"] == 1
    assert "extractor" not in every["outputs"]


def test_reproduces_readme_word_baselines():
    """README "Word-level files": mean word F1 on words-public-dev of the raw text, trafilatura
    (precision) and resiliparse, per view and source."""
    res = eval_words(need(WORDS_DEV))
    assert (res["rows"], res["skipped_rows"]) == (477, 0)
    published = {  # (view, source): (rows, raw text, trafilatura, resiliparse)
        ("wet", "wcxb-dev"): (241, 0.711, 0.770, 0.794),
        ("wet", "scrapinghub-aeb"): (26, 0.608, 0.964, 0.910),
        ("wet", "ALL"): (267, 0.701, 0.789, 0.805),
        ("dclm", "wcxb-dev"): (184, 0.886, 0.851, 0.886),
        ("dclm", "scrapinghub-aeb"): (26, 0.910, 0.964, 0.910),
        ("dclm", "ALL"): (210, 0.889, 0.865, 0.889),
    }
    for (view, source), (rows, raw, traf, resil) in published.items():
        group = res["scores"][view][source]
        got = [group["outputs"][k]["f1"] for k in ("raw", "trafilatura_precision", "resiliparse_main_content")]
        assert group["rows"] == rows
        # the README rounds to 3 decimals what the scorer gives to 4 (0.9095 is published as 0.910)
        assert got == pytest.approx([raw, traf, resil], abs=6e-4), (view, source)
    assert "refiner" not in res["scores"]["wet"]["ALL"]["outputs"]  # no predictor: baselines only


def test_refined_text_is_what_prox_refine_keeps(tmp_path):
    """The doc program, then the joined chunk programs, through prox.execute: the same texts the
    `prox refine` pipeline writes to kept/ (and "" for what it drops), on real pages."""
    from prox.compare.data import Doc
    from prox.compare.refine import refine_docs
    from prox.pipeline.layout import read_outputs
    from prox.refiners import get_refiner

    rows = dev_rows(step=8)
    refine_docs([Doc(r.id, r.text) for r in rows], "builtin", tmp_path / "out")
    kept = {rec.id: rec.text for rec in read_outputs(tmp_path / "out", "kept")}
    dropped = {rec.id for rec in read_outputs(tmp_path / "out", "dropped")}
    assert kept and dropped and len(kept) + len(dropped) == len(rows)
    predict = text_predictor(get_refiner("builtin"))
    assert predict.stages == ("doc", "chunk")
    refined = predict([r.text for r in rows])
    assert {r.id: t for r, t in zip(rows, refined) if t} == kept
    assert {r.id for r, t in zip(rows, refined) if not t} == dropped


def test_text_predictor_stages_on_real_pages():
    rows = dev_rows(step=20)
    texts = [r.text for r in rows]
    rule = WordRuleRefiner(min_doc_words=1000)
    short = [len(t.split()) < 1000 for t in texts]
    assert any(short) and not all(short)
    both = text_predictor(rule)(texts)
    doc_only = text_predictor(rule, stages=["doc"])(texts)
    chunk_only = text_predictor(rule, stages=["chunk"])(texts)
    for t, drop, b, d, c in zip(texts, short, both, doc_only, chunk_only):
        assert d == ("" if drop else t)
        assert c == expected_text(rule, t)  # no doc stage: nothing dropped for length
        assert b == ("" if drop else c)
    with pytest.raises(ValueError, match="stages"):
        text_predictor(rule, stages=["doc", "refine"])
    with pytest.raises(ValueError, match="stages"):
        text_predictor(rule, stages=[])


def test_a_chunk_stage_drop_is_empty_output():
    # strict executor: fewer than 10 words left after the chunk program drops the document
    text = "Home\nMenu\nOne two three four five six seven eight nine."
    assert text_predictor(WordRuleRefiner(min_doc_words=0), stages=["chunk"])([text]) == [""]


SENTENCE = "A real sentence with enough words to keep it here, and it goes on for a little while longer."  # 19 words
SHORT = "A shorter page of twelve words that the doc stage will drop."


def _gold_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "p1:wet", "source": "s", "view": "wet", "gold_text": SENTENCE,
         "text": f"Home\nAbout us\n{SENTENCE}\nShare", "baselines": {"extractor": "A real sentence with enough words"}},
        {"id": "p2:wet", "source": "t", "view": "wet", "gold_text": SHORT, "text": SHORT, "baselines": {"extractor": ""}},
        {"id": "bad", "source": "s", "view": "wet", "text": "no gold_text"},
    ]
    gold = tmp_path / "words.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return gold


def test_eval_words_cli_json_and_table(tmp_path):
    gold = _gold_file(tmp_path)
    args = ["eval", "words", str(gold), "-r", FAKE, "-O", "min_doc_words=15"]
    res = CliRunner().invoke(app, [*args, "--json", "-o", str(tmp_path / "out.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out == json.loads((tmp_path / "out.json").read_text())
    assert (out["refiner"], out["stages"], out["rows"], out["skipped_rows"]) == (FAKE, ["doc", "chunk"], 2, 1)
    s = out["scores"]["wet"]["s"]["outputs"]
    assert s["refiner"]["f1"] == 1.0  # nav lines removed, the sentence kept
    assert s["raw"]["precision"] == pytest.approx(19 / 23, abs=1e-4) and s["raw"]["recall"] == 1.0
    assert s["extractor"]["precision"] == 1.0 and s["extractor"]["recall"] == pytest.approx(6 / 19, abs=1e-4)
    t = out["scores"]["wet"]["t"]["outputs"]
    assert t["refiner"] == {"rows": 1, "precision": 1.0, "recall": 0.0, "f1": 0.0}  # dropped (< 15 words): empty
    assert t["raw"]["f1"] == 1.0
    assert list(out["scores"]["wet"]) == ["s", "t", "ALL"]

    res = CliRunner().invoke(app, [*args, "--stages", "chunk", "-o", str(tmp_path / "chunk.json")])
    assert res.exit_code == 0, res.output
    assert "Words: mean P / R / F1" in res.output and not res.output.lstrip().startswith("{")
    for label in (f"{FAKE} (chunk)", "raw text", "extractor", "ALL"):
        assert label in res.output
    chunk = json.loads((tmp_path / "chunk.json").read_text())
    assert chunk["stages"] == ["chunk"]
    assert chunk["scores"]["wet"]["t"]["outputs"]["refiner"]["f1"] == 1.0  # no doc stage, kept whole

    for bad in (["--stages", "chunk,html"], ["-O", "nonsense"]):
        assert CliRunner().invoke(app, [*args, *bad]).exit_code != 0
