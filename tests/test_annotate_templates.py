"""Teacher prompt templates: packaged defaults, per-file overrides, prefills."""
from __future__ import annotations

import pytest

from prox.annotate.templates import ALL_TEMPLATES, CHUNK_FAMILIES, DOC_EDU, TeacherTemplates


def test_packaged_templates_render_the_document_and_the_score_format():
    t = TeacherTemplates.load()
    assert set(t.sources) == set(ALL_TEMPLATES) and set(t.origin.values()) == {"package"}
    messages = t.messages(DOC_EDU, document="Water boils at 100 °C at sea level.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Water boils at 100 °C at sea level." in messages[1]["content"]
    assert 'Educational score: <total points>' in messages[1]["content"]
    for name in CHUNK_FAMILIES:
        user = t.messages(name, chunk="[doc]\n[000]Home | News\n[/doc]")[-1]["content"]
        assert user.rstrip().endswith("[doc]\n[000]Home | News\n[/doc]\nProgram:")
        assert "remove_lines(line_start=" in user and "skip_chunk()" in user


def test_override_dir_replaces_only_the_files_it_has(tmp_path):
    (tmp_path / "doc_edu.txt").write_text("Score this: {{ document }}")
    (tmp_path / "doc_edu.prefill.txt").write_text("Educational score: \n")
    t = TeacherTemplates.load(tmp_path)
    assert t.origin["doc_edu.txt"] == str(tmp_path / "doc_edu.txt")
    assert t.origin["doc_format.txt"] == "package"
    messages = t.messages(DOC_EDU, document="abc")
    assert messages[1]["content"] == "Score this: abc"
    assert messages[2] == {"role": "assistant", "content": "Educational score: "}
    assert t.full_answer(DOC_EDU, "3\nbecause") == "Educational score: 3\nbecause"  # server did not echo it
    assert t.full_answer(DOC_EDU, "Educational score: 4") == "Educational score: 4"  # server echoed it
    assert t.full_answer(DOC_EDU, None) is None


def test_bad_override_is_a_clear_error(tmp_path):
    (tmp_path / "chunk_links.txt").write_text("no placeholder here")
    with pytest.raises(ValueError, match="chunk"):
        TeacherTemplates.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        TeacherTemplates.load(tmp_path / "missing")
    with pytest.raises(Exception):
        TeacherTemplates.load().render(DOC_EDU)  # the document is required (StrictUndefined)
