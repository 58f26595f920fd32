"""Scoring protocol of the benchmarks README, and its baseline numbers."""
from __future__ import annotations

import json

import pytest

from conftest import BENCHMARKS, need
from prox.evaluate.baselines import DOC_BASELINES, c4_fails, doc_rule_drops, remove_short
from prox.evaluate.metrics import DocCounts, LineCounts, LineScorer
from prox.evaluate.run import doc_predictor, eval_docs, eval_lines, line_predictor, removed_lines


def test_line_counts_micro_and_macro_conventions():
    c = LineCounts()
    c.add([0, 1, 5], noisy={0, 2}, content={1, 3})  # tp 1, fp 1 (5 is uncertain), fn 1
    c.add([], noisy=set(), content={0})  # neither predicted nor noisy -> P=R=F1=1
    c.add([0], noisy=set(), content={0})  # predicted, no noisy -> P=0, R=1, F1=0
    c.add([], noisy={4}, content=set())  # noisy, nothing predicted -> P=1, R=0, F1=0
    d = c.to_dict()
    assert (d["tp"], d["fp"], d["fn"]) == (1, 2, 2)
    assert d["micro"]["precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert d["micro"]["recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert d["macro"]["precision"] == pytest.approx((0.5 + 1 + 0 + 1) / 4, abs=1e-4)
    assert d["macro"]["recall"] == pytest.approx((0.5 + 1 + 1 + 0) / 4, abs=1e-4)
    assert d["macro"]["f1"] == pytest.approx((0.5 + 1 + 0 + 0) / 4, abs=1e-4)


def test_line_scorer_groups_by_view_and_source():
    s = LineScorer()
    s.add("dclm", "a", [0], {0}, {1})
    s.add("dclm", "b", [1], {0}, {1})
    out = s.to_dict()
    assert out["dclm"]["a"]["micro"]["f1"] == 1.0
    assert out["dclm"]["b"]["micro"]["f1"] == 0.0
    assert out["dclm"]["ALL"]["rows"] == 2 and out["dclm"]["ALL"]["micro"]["f1"] == 0.5
    assert list(out["dclm"])[-1] == "ALL"


def test_doc_counts():
    c = DocCounts()
    for pred, gold in [(True, True), (True, False), (False, True), (False, False), (False, False)]:
        c.add(pred, gold)
    d = c.to_dict()
    assert d["drop"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert d["keep"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert d["accuracy"] == 0.6


def test_baseline_rules_on_lines():
    assert c4_fails("Menu") and c4_fails("We use cookies to improve this site.")
    assert not c4_fails('He said "yes."') and not c4_fails("A full sentence here.")
    assert remove_short("one two three\n\nfour five six seven eight nine") == [0, 1]
    assert doc_rule_drops("too short.")
    assert not doc_rule_drops(" ".join(["word"] * 60) + ".")


def test_removed_lines_follows_the_executor():
    text = "a\nb\nc\nd"
    assert removed_lines(text, "remove_lines(line_start=1, line_end=2)") == [1, 2]
    assert removed_lines(text, "remove_lines(line_start=2, line_end=9)") == [2, 3]  # clipped
    assert removed_lines(text, "skip_chunk()") == []


def test_reproduces_readme_dev_line_baselines():
    """README §4: dev dclm ALL micro F1 is 0.563 (< 5 words) and 0.579 (C4); wet 0.822 / 0.874."""
    gold = need(BENCHMARKS / "lines-public-dev.jsonl.gz")
    short = eval_lines(gold, line_predictor(baseline="short"))["scores"]
    c4 = eval_lines(gold, line_predictor(baseline="c4-line-rule"))["scores"]
    assert eval_lines(gold, line_predictor(baseline="c4"))["scores"] == c4  # the old name still works
    assert round(short["dclm"]["ALL"]["micro"]["f1"], 3) == 0.563
    assert round(c4["dclm"]["ALL"]["micro"]["f1"], 3) == 0.579
    assert round(short["wet"]["ALL"]["micro"]["f1"], 3) == 0.822
    assert round(c4["wet"]["ALL"]["micro"]["f1"], 3) == 0.874
    assert round(c4["dclm"]["scrapinghub-aeb"]["micro"]["f1"], 3) == 0.626
    nothing = eval_lines(gold, line_predictor(baseline="nothing"))["scores"]
    assert nothing["dclm"]["ALL"]["micro"]["f1"] == 0.0


def test_reproduces_readme_doc_baselines():
    """README §4 doc table, dclm-human-majority: doc rule 0.548 / 0.628 / 0.592."""
    gold = need(BENCHMARKS / "docs-public.jsonl.gz")
    res = eval_docs(gold, doc_predictor(baseline="doc-rule"), sources={"dclm-human-majority"})
    s = res["scores"]["dclm-human-majority"]
    assert res["docs"] == 218
    assert (round(s["drop"]["f1"], 3), round(s["keep"]["f1"], 3), round(s["accuracy"], 3)) == (0.548, 0.628, 0.592)
    keep_all = eval_docs(gold, doc_predictor(baseline="keep-all"), sources={"dclm-human-majority"})["scores"]
    assert round(keep_all["ALL"]["keep"]["f1"], 3) == 0.710
    assert set(DOC_BASELINES) == {"keep-all", "drop-all", "doc-rule"}


def test_doc_split_is_a_partition():
    gold = need(BENCHMARKS / "docs-public.jsonl.gz")
    pred = doc_predictor(baseline="keep-all")
    n = {s: eval_docs(gold, pred, sources={"dclm-human-majority"}, split=s)["docs"] for s in ("all", "train", "holdout")}
    assert n["train"] + n["holdout"] == n["all"] == 218
    assert 150 <= n["train"] <= 190


def test_eval_cli_baselines_json(tmp_path):
    from typer.testing import CliRunner

    from prox.cli import app

    gold = tmp_path / "gold.jsonl"
    rows = [
        {"id": "x:dclm", "source": "s", "view": "dclm", "text": "Home\nA real sentence that ends well.\nShare",
         "noisy_lines": [0, 2], "content_lines": [1], "uncertain_lines": []},
    ]
    gold.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = CliRunner().invoke(app, ["eval", "lines", str(gold), "--baseline", "c4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["baselines"]["c4"]["scores"]["dclm"]["s"]["micro"]["f1"] == 1.0
    assert "refiner" not in out  # --baseline alone scores only the baselines
    res = CliRunner().invoke(app, ["eval", "lines", str(gold), "--baseline", "nope"])
    assert res.exit_code != 0


def test_math_rows_count_formula_and_content_lines_kept():
    c = LineCounts()
    c.add([0, 2, 3], noisy={0}, content={1, 2, 3, 4}, formula={2, 4})
    c.add([1], noisy={1}, content={0})  # not a math row: no formula counts
    m = c.to_dict()["math"]
    assert m == {"rows": 1, "formula_lines": 2, "formula_deleted": 1, "formula_kept": 0.5,
                 "content_lines": 4, "content_deleted": 2, "content_kept": 0.5}
    plain = LineCounts()
    plain.add([1], noisy={1}, content={0})
    assert "math" not in plain.to_dict()


def test_reproduces_readme_math_formula_deletions():
    """README "Math lines" baselines: the < 5 words rule deletes 269 of the 983 formula lines,
    the C4 rule 688; removing nothing keeps every formula and content line."""
    gold = need(BENCHMARKS / "lines-math-public.jsonl.gz")
    math = {b: eval_lines(gold, line_predictor(baseline=b))["scores"]["md"]["ALL"]["math"]
            for b in ("nothing", "short", "c4-line-rule")}
    assert (math["short"]["formula_lines"], math["short"]["formula_deleted"]) == (983, 269)
    assert math["c4-line-rule"]["formula_deleted"] == 688
    assert math["c4-line-rule"]["formula_kept"] == round(1 - 688 / 983, 4)
    assert (math["nothing"]["formula_kept"], math["nothing"]["content_kept"]) == (1.0, 1.0)
    assert math["nothing"]["rows"] == 62 and math["nothing"]["content_lines"] == 1864
    per_source = eval_lines(gold, line_predictor(baseline="short"), sources={"approach0-mse"})["scores"]["md"]
    assert per_source["approach0-mse"]["math"]["formula_lines"] == 541
    # rows without meta.formula_lines have no math figures
    dev = eval_lines(need(BENCHMARKS / "lines-public-dev.jsonl.gz"), line_predictor(baseline="nothing"), limit=20)
    assert all("math" not in g for by_source in dev["scores"].values() for g in by_source.values())


def test_eval_cli_prints_tables_and_scores_a_refiner_beside_baselines(tmp_path):
    from typer.testing import CliRunner

    from prox.cli import app

    gold = need(BENCHMARKS / "lines-math-public.jsonl.gz")
    res = CliRunner().invoke(app, ["eval", "lines", str(gold), "-r", "rules:c4", "-b", "short", "-b", "nothing",
                                   "-o", str(tmp_path / "out.json")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["refiner"] == "rules:c4" and list(out["baselines"]) == ["short", "nothing"]
    refined = out["scores"]["md"]["ALL"]
    assert refined["rows"] == 62 and refined["math"]["formula_lines"] == 983
    table = res.output
    assert "Lines: micro P / R / F1 / macro F1" in table and "Math rows: formula lines kept (deleted)" in table
    row = next(line for line in table.splitlines() if "ALL" in line and "983" in line)
    m = refined["math"]
    assert f"{m['formula_kept']:.3f} ({m['formula_deleted']}) / {m['content_kept']:.3f}" in row
    assert "0.726 (269)" in row and "1.000 (0) / 1.000" in row
    header = next(line for line in table.splitlines() if "rules:c4" in line)
    assert header.index("rules:c4") < header.index("short") < header.index("nothing")

    docs = need(BENCHMARKS / "docs-public.jsonl.gz")
    res = CliRunner().invoke(app, ["eval", "docs", str(docs), "-b", "doc-rule", "--source", "dclm-human-majority"])
    assert res.exit_code == 0, res.output
    assert "0.545 / 0.551 / 0.548 · 0.628 · 0.592" in res.output  # README doc rule: 0.548 / 0.628 / 0.592
    res = CliRunner().invoke(app, ["eval", "docs", str(docs), "-b", "doc-rule", "--source", "dclm-human-majority", "--json"])
    assert json.loads(res.output)["baselines"]["doc-rule"]["docs"] == 218
