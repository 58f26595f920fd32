"""`prox compare`: real refiners on real pages, a tiny proxy pre-training, the table and plot."""
from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import BENCHMARKS, LLAMA2_TOKENIZER
from prox.compare import Doc, ProxyConfig, refine_docs, run_compare, split_eval
from prox.compare.data import clean_text, load_corpus
from prox.pipeline.layout import read_outputs
from prox.compare.proxy import ByteTokenizer, VocabMap, encode_stream, train_and_eval

LINES = BENCHMARKS / "lines-public-train.jsonl.gz"
TINY = dict(seq_len=64, batch_size=4, train_tokens=64 * 4 * 6, hidden=32, layers=2, heads=2, max_eval_tokens=3000)


@pytest.fixture(scope="module")
def pages():
    if not LINES.exists():
        pytest.skip(f"shared benchmarks not found at {LINES}")
    return load_corpus([LINES], where={"view": "dclm"}, limit=40)


def test_split_eval_holds_out_pages_and_uses_gold_content(pages):
    train, eval_texts = split_eval(pages, 20)
    assert 0 < len(eval_texts) and len(train) + len(eval_texts) <= len(pages)
    held = [d for d in pages if d not in train]
    # eval text is the gold-clean content: only content lines of the page, in order
    d = held[0]
    raw = d.text.split("\n")
    assert clean_text(d).split("\n") == [raw[i] for i in sorted(d.meta["content_lines"])]
    assert clean_text(Doc("x", "plain text")) == "plain text"


def test_proxy_is_deterministic_and_learns():
    tok = ByteTokenizer()
    train = encode_stream(tok, ["the cat sat on the mat. " * 40] * 5)
    ev = encode_stream(tok, ["the cat sat on the mat. " * 20])
    cfg = ProxyConfig(seq_len=32, batch_size=8, train_tokens=32 * 8 * 30, hidden=32, layers=1, heads=2, lr=1e-2,
                      seed=3, device="cpu")
    a = train_and_eval(train, ev, tok.vocab_size, cfg, eval_bytes=len(ev))
    b = train_and_eval(train, ev, tok.vocab_size, cfg, eval_bytes=len(ev))
    assert a.eval_loss == b.eval_loss
    assert a.eval_loss < 3.0  # untrained byte model: ln(257) = 5.55; a repeated sentence is easy
    assert a.train_tokens_seen == cfg.steps * cfg.batch_size * cfg.seq_len


def test_vocab_map_compacts_llama_ids():
    if not LLAMA2_TOKENIZER.exists():
        pytest.skip("llama2 tokenizer fixture absent")
    from prox.compare.proxy import load_tokenizer

    tok = load_tokenizer(str(LLAMA2_TOKENIZER))
    assert tok.vocab_size == 32000 and tok.eos_id == 2
    s = encode_stream(tok, ["Hello world.", "Bonjour le monde."])
    vm = VocabMap([s])
    assert vm.size == len(set(s)) and sorted(set(vm.apply(s))) == list(range(vm.size))


def test_run_compare_end_to_end(pages, tmp_path):
    res = run_compare(pages, tmp_path, refiners=["raw", "rules:c4", "rules:nope"], eval_percent=20,
                      proxy=ProxyConfig(**TINY, device="cpu"), log=lambda m: None)
    rows = {v["refiner"]: v for v in res["variants"]}
    assert "error" in rows["rules:nope"] and "unknown rule set" in rows["rules:nope"]["error"]
    raw, c4 = rows["raw"], rows["rules:c4"]
    assert raw["docs_kept"] == raw["docs_in"] and raw["tokens_kept"] > c4["tokens_kept"] > 0
    # same budget for every variant
    assert raw["proxy"]["train_tokens_seen"] == c4["proxy"]["train_tokens_seen"]
    assert c4["proxy"]["epochs"] > raw["proxy"]["epochs"]
    md = (tmp_path / "compare.md").read_text()
    assert "| rules:c4 |" in md and "error" in md
    assert json.loads((tmp_path / "compare.json").read_text())["variants"][1]["refiner"] == "rules:c4"
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    # each variant is a refine output folder; kept text of c4 is shorter than raw
    with gzip.open(tmp_path / "refined" / "rules_c4" / "kept" / "00000.jsonl.gz", "rt") as f:
        rec = json.loads(f.readline())
    assert rec["metadata"]["raw_text"] != rec["text"] or rec["metadata"]["chunk_programs"] == ["skip_chunk()"]
    stats = json.loads((tmp_path / "refined" / "rules_c4" / "stats.json").read_text())
    assert stats["documents"]["docs_in"] == sum(stats["documents"][o] for o in ("kept", "dropped", "failed"))
    # every variant went through the `prox refine` pipeline (its stats, run.json, task accounting)
    assert stats["balanced"] and stats["tasks"]["reported"] == 2 and stats["settings"]["stages"] == ["doc", "chunk"]
    assert stats["refiner"]["spec"] == "rules:c4" and stats["documents"]["docs_in"] == raw["docs_in"]
    assert (tmp_path / "refined" / "rules_c4" / ".prox" / "run.json").exists()
    raw_stats = json.loads((tmp_path / "refined" / "raw" / "stats.json").read_text())
    assert raw_stats["settings"]["stages"] == [] and raw_stats["refiner"]["spec"] is None
    assert raw_stats["text"]["chars_out"] == raw_stats["text"]["chars_in"] == raw["chars_kept"]
    raw_recs = list(read_outputs(tmp_path / "refined" / "raw", "kept"))  # one part per pipeline task
    assert len(raw_recs) == raw["docs_in"] and all(r.text == r.raw_text for r in raw_recs)
    # 2 pipeline tasks/workers (the default) refine exactly like one: same kept documents and texts
    one = refine_docs(pages[:24], "rules:c4", tmp_path / "c4_one", workers=1)
    two = refine_docs(pages[:24], "rules:c4", tmp_path / "c4_two", workers=2)
    assert one["tasks"]["reported"] == 1 and two["tasks"]["reported"] == 2
    by_id = lambda d: sorted((r.id, r.text) for r in read_outputs(d, "kept"))  # noqa: E731
    assert by_id(tmp_path / "c4_one") == by_id(tmp_path / "c4_two") and by_id(tmp_path / "c4_one")


def test_cli_compare(pages, tmp_path):
    from typer.testing import CliRunner

    from prox.cli import app

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in pages[:25]))
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps({"text": d.text}) + "\n" for d in pages[25:30]))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["compare", str(corpus), "-o", str(out), "--refiners", "raw,rules:fineweb",
                                 "--eval-set", str(evals), "--train-tokens", "1024", "--seq-len", "64",
                                 "--batch-size", "4", "--hidden", "32", "--heads", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "compare.json").read_text())
    assert res["eval_texts"] == 5 and res["corpus_docs"] == 25
    assert [v["refiner"] for v in res["variants"]] == ["raw", "rules:fineweb"]
