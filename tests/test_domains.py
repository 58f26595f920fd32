"""`--domain math`: the released math refiners from a local folder, math teacher prompts, math annotation."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import LLAMA2_TOKENIZER
from prox.annotate.records import OutputFolder, load_sft_records
from prox.annotate.run import AnnotateOptions, Annotator, Document
from prox.annotate.templates import ALL_TEMPLATES, CHUNK_FAMILIES, DOC_EDU, DOC_FORMAT, SYSTEM, TeacherTemplates
from prox.cli import app
from prox.domains import DOMAINS, get_domain, released_models
from prox.render import PromptRenderer



def test_released_models_are_found_by_name_in_a_local_folder(tmp_path):
    for name in ("math-doc-refining-lm", "math-chunk-refining-lm", "web-chunk-refining-lm"):
        (tmp_path / name).mkdir()
    assert released_models("math", tmp_path) == {
        "doc_model": str(tmp_path / "math-doc-refining-lm"), "chunk_model": str(tmp_path / "math-chunk-refining-lm")}
    assert released_models("web", tmp_path, stages=("chunk",)) == {"chunk_model": str(tmp_path / "web-chunk-refining-lm")}
    with pytest.raises(FileNotFoundError, match="web-doc-refining-lm"):
        released_models("web", tmp_path)
    with pytest.raises(ValueError, match="unknown domain 'chem'"):
        get_domain("chem")
    assert set(DOMAINS) == {"web", "math"}


def test_math_templates_replace_the_web_ones_and_overrides_still_win(tmp_path):
    web = TeacherTemplates.load()
    math = TeacherTemplates.load(domain="math")
    assert set(math.sources) == set(ALL_TEMPLATES)
    for name in (SYSTEM, DOC_EDU, *CHUNK_FAMILIES):
        assert math.sources[name] != web.sources[name] and math.origin[name] == "package:math"
    assert math.sources[DOC_FORMAT] == web.sources[DOC_FORMAT] and math.origin[DOC_FORMAT] == "package"
    assert "formula" in math.sources[SYSTEM] and "Educational score" in math.sources[DOC_EDU]
    (tmp_path / "chunk_links.txt").write_text("{{ chunk }} mine", encoding="utf-8")
    mixed = TeacherTemplates.load(tmp_path, domain="math")
    assert mixed.sources["chunk_links.txt"] == "{{ chunk }} mine"
    assert mixed.origin["chunk_header.txt"] == "package:math"


class ScriptedMathTeacher:
    """Answers like a teacher would, and records which prompts it was sent."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def ask(self, requests, *, max_tokens):
        out = []
        for messages in requests:
            system, user = messages[0]["content"], messages[-1]["content"]
            self.prompts.append(system + "\n" + user)
            if "Educational score" in user:
                out.append("Worked derivation with steps. Educational score: 4")
            elif "Extraction Quality Score" in user:
                out.append("Clean. Extraction Quality Score: 4")
            else:
                # remove the numbered lines that are Q&A furniture, never a formula line
                chunk = user.rsplit("Now the chunk to clean:", 1)[-1]
                furniture = [int(n) for n, text in re.findall(r"\[(\d{3})\] ?(.*)", chunk)
                             if text.strip() in ("Share", "Cite", "Follow", "Add a comment |")]
                out.append("\n".join(f"remove_lines(line_start={n}, line_end={n})" for n in furniture) or "skip_chunk()")
        return out

    def stats(self):
        return {"requests": len(self.prompts)}


MATH_SEED = "\n".join([
    "Sum of the first n integers", "", "How do I show that", "$$", "\\sum_{k=1}^n k = \\frac{n(n+1)}{2}", "$$",
    "for every $n \\ge 1$?", "", "By induction: the case $n=1$ holds, and", "\\begin{align}",
    "\\sum_{k=1}^{n+1} k &= \\frac{n(n+1)}{2} + n + 1 \\\\", "&= \\frac{(n+1)(n+2)}{2}.", "\\end{align}",
    "Share", "Cite", "Follow", "Add a comment |",
])


def test_annotate_math_seeds_with_math_prompts(tmp_path):
    if not LLAMA2_TOKENIZER.exists():
        pytest.skip(f"shared tokenizer fixture not found at {LLAMA2_TOKENIZER}")
    renderer = PromptRenderer(LLAMA2_TOKENIZER, preset="prox", with_ids=False)
    teacher = ScriptedMathTeacher()
    templates = TeacherTemplates.load(domain="math")
    docs = [Document("m1", MATH_SEED)]
    with OutputFolder(tmp_path / "chunk") as out:
        stats = Annotator(out, renderer, options=AnnotateOptions(task="chunk"), teacher=teacher, templates=templates).run(docs)
    assert stats["counts"]["docs_labelled"] == 1
    assert teacher.prompts and all("formula" in p for p in teacher.prompts)  # the math system prompt
    records = load_sft_records(tmp_path / "chunk")
    assert len(records) == 1
    lines = MATH_SEED.split("\n")
    assert records[0].completion == f"remove_lines(line_start={lines.index('Share')}, line_end={lines.index('Add a comment |')})"
    with OutputFolder(tmp_path / "doc") as out:
        stats = Annotator(out, renderer, options=AnnotateOptions(task="doc"), teacher=teacher, templates=templates).run(docs)
    assert stats["counts"]["docs_labelled"] == 1
    assert load_sft_records(tmp_path / "doc")[0].completion == "keep_doc()"
    assert any("learning mathematics" in p for p in teacher.prompts)


def test_refine_cli_domain_options(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n', encoding="utf-8")
    runner = CliRunner()
    bad = runner.invoke(app, ["refine", str(src), "-o", str(tmp_path / "o1"), "--domain", "chem"])
    assert bad.exit_code != 0 and "unknown domain" in bad.output
    builtin = runner.invoke(app, ["refine", str(src), "-o", str(tmp_path / "o2"), "--prox-models", str(tmp_path)])
    assert builtin.exit_code != 0 and "LM refiner" in builtin.output
    missing = runner.invoke(app, ["refine", str(src), "-o", str(tmp_path / "o3"), "--refiner", "transformers",
                                  "--domain", "math", "--prox-models", str(tmp_path)])
    assert missing.exit_code != 0 and "math-doc-refining-lm" in missing.output
    # the builtin has one model for both domains: --domain math runs it unchanged
    ok = runner.invoke(app, ["refine", str(src), "-o", str(tmp_path / "o4"), "--domain", "math"])
    assert ok.exit_code == 0, ok.output


def test_the_packaged_math_templates_ship_with_the_package():
    import prox

    folder = Path(prox.__file__).parent / "templates" / "math"
    assert {p.name for p in folder.glob("*.txt")} == {SYSTEM, DOC_EDU, *CHUNK_FAMILIES}
