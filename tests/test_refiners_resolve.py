"""One refiner resolver (`prox.refiners.get_refiner`) for every caller, and early stage checks."""
from __future__ import annotations

import json

import pytest

from prox.refiners import check_refiner_spec, get_refiner
from fakes import WordRuleRefiner

DOC = "one two three four five six\nshort line\nseven eight nine ten eleven\n"


def test_module_factory_specs_resolve_in_get_refiner():
    made = get_refiner("fakes:make_refiner", min_doc_words=3, min_line_words=3)
    assert isinstance(made, WordRuleRefiner) and made.min_doc_words == 3
    assert made.doc_programs([DOC, "too short"]) == ["keep_doc()", "drop_doc()"]
    assert made.chunk_programs([DOC]) == [["remove_lines(line_start=1, line_end=1)"]]
    # default factory name make_refiner; a class works as a factory too
    assert isinstance(get_refiner("fakes"), WordRuleRefiner)
    assert get_refiner("fakes:WordRuleRefiner", chunk_lines=7).chunk_lines == 7
    # registry specs still take precedence
    assert get_refiner("rules:c4").name == "rules:c4"


def test_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown refiner 'no_such_module_xyz'"):
        get_refiner("no_such_module_xyz")
    with pytest.raises(ValueError, match="unknown refiner"):
        check_refiner_spec("no_such_module_xyz:factory")
    with pytest.raises(ValueError, match="has no callable 'nope'"):
        get_refiner("fakes:nope")
    check_refiner_spec("builtin")  # registry names are accepted without importing anything


def test_compare_and_eval_paths_accept_module_factory(tmp_path):
    from prox.compare import Doc, refine_docs
    from prox.pipeline.layout import read_outputs

    docs = [Doc("a", DOC * 3), Doc("b", "tiny doc")]
    stats = refine_docs(docs, "fakes:make_refiner", tmp_path / "out", refiner_options={"min_doc_words": 5})
    assert stats["documents"] == {"docs_in": 2, "kept": 1, "dropped": 1, "failed": 0}
    kept = list(read_outputs(tmp_path / "out", "kept"))
    assert [r.id for r in kept] == ["a"] and "short line" not in kept[0].text
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["refiner"]["spec"] == "fakes:make_refiner"


class ChunkOnly(WordRuleRefiner):
    stages = ("chunk",)


def test_refiner_stages_known_without_loading_a_model():
    from prox.refiners import refiner_stages

    # paths are never opened: the stages come from the options alone
    assert refiner_stages("transformers", chunk_model="/nowhere/chunk") == ("chunk",)
    assert refiner_stages("transformers:/nowhere/m") == ("doc", "chunk")
    assert refiner_stages("vllm", doc_model="/nowhere/doc") == ("doc",)
    assert refiner_stages("openai:http://127.0.0.1:9/v1") == ("doc", "chunk")
    assert refiner_stages("openai:http://127.0.0.1:9/v1", chunk_model="served") == ("chunk",)
    assert refiner_stages("builtin") == refiner_stages("rules:c4") == refiner_stages("fakes") == ("doc", "chunk")
    assert refiner_stages(ChunkOnly()) == ("chunk",)
    with pytest.raises(ValueError, match="no model given"):
        refiner_stages("transformers")


def test_cli_refuses_a_stage_the_refiner_cannot_run(tmp_path):
    from typer.testing import CliRunner

    from prox.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": DOC}) + "\n")
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(app, ["refine", str(src), "-o", str(out), "--refiner", "transformers",
                            "--chunk-model", str(tmp_path / "no-model"), "--stages", "doc,chunk"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output
    assert "cannot run the doc stage" in lines[0] and "--stages chunk" in lines[0]
    assert not out.exists()  # nothing started
    r = runner.invoke(app, ["refine", str(src), "-o", str(out), "--refiner", "transformers"])
    assert r.exit_code == 2 and "no model given" in r.output and not out.exists()


def test_python_api_refuses_a_stage_an_object_refiner_cannot_run(tmp_path):
    from prox.pipeline import RefineConfig, RunError, run_refine

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": DOC * 20}) + "\n")
    with pytest.raises(RunError, match="cannot run the doc stage.*--stages chunk"):
        run_refine(RefineConfig(inputs=[str(src)], output_dir=str(tmp_path / "o1"), refiner=ChunkOnly()))
    stats = run_refine(RefineConfig(inputs=[str(src)], output_dir=str(tmp_path / "o2"), refiner=ChunkOnly(),
                                    stages=("chunk",)))
    assert stats["documents"]["kept"] == 1 and stats["programs"]["lines_removed"] == 20
