"""The builtin refiner on math: assembled training pages, formula protection, the shipped model."""
from __future__ import annotations

import numpy as np
import pytest

from prox import execute
from prox.builtin.data import DocRow, LineRow, in_train_split
from prox.builtin.mathpages import SYNTHETIC_SOURCE, MathPageConfig, build_pages, keep_docs
from prox.refiners import get_refiner

QA = (
    "Is $5^n+n$ ever prime?\n\n"
    "In the comments there was a claim that $5^n+n$ is never prime.\n"
    "It does not look obvious to prove.\n\n"
    "We have\n"
    "$$\n5^n + n \\equiv 0 \\pmod 2\n$$\n"
    "for odd $n$, so only even $n$ matter.\n\n"
    "Thanks!"
)


def _host() -> LineRow:
    lines = ["Home", "Blog", "About", "Real article title", "A paragraph of the article.", "Footer links", "© 2024 Site"]
    return LineRow("h", "\n".join(lines), noisy={0, 1, 2, 5, 6}, content={3, 4}, group="h", view="dclm", source="wcxb-dev")


def _math_docs(n: int) -> list[DocRow]:
    return [DocRow(f"mathse:{i}", QA.replace("$5^n+n$", f"$5^n+{i}n$"), True, "mathse-math") for i in range(n)]


def test_pages_label_math_content_and_chrome_by_construction():
    docs = _math_docs(60)
    pages = build_pages(docs, [_host()], MathPageConfig(seed=3))
    # only the id-hash train split of the math documents is used
    assert len(pages) == sum(in_train_split(d.id) for d in docs) > 0
    hosted = 0
    for page in pages:
        lines = page.text.split("\n")
        assert page.view == page.source == SYNTHETIC_SOURCE
        assert not page.noisy & page.content
        assert all(lines[i].strip() for i in page.noisy | page.content)  # blank lines are unlabelled
        # every line of the post is content, formulas and connective lines included
        for post_line in ("We have", "$$", "5^n + n \\equiv 0 \\pmod 2", "Thanks!"):
            assert any(lines[i] == post_line for i in page.content)
        if "Home" in lines:
            hosted += 1
            assert lines.index("Home") in page.noisy and lines.index("© 2024 Site") in page.noisy
    assert 0 < hosted < len(pages)  # some pages are the clean post alone
    # deterministic for a seed
    assert [p.text for p in build_pages(docs, [_host()], MathPageConfig(seed=3))] == [p.text for p in pages]


def test_furniture_is_noise_and_other_titles_are_related_lists():
    pages = build_pages(_math_docs(80), [_host()], MathPageConfig(seed=1, clean_share=0.0, furniture_share=1.0))
    furniture = [(p.text.split("\n"), p.noisy) for p in pages]
    seen = set()
    for lines, noisy in furniture:
        for i in noisy:
            seen.add(lines[i])
    assert {"Share", "Add a comment |"} & seen or {"Reply With Quote", "Similar threads"} & seen
    assert any(s.startswith(("asked ", "answered ", "#")) for s in seen)


def test_keep_docs_weigh_the_pages_against_the_labels():
    pages = build_pages(_math_docs(40), [_host()], MathPageConfig(seed=0))
    rows = keep_docs(pages, labelled_docs=100, cfg=MathPageConfig(doc_weight_share=0.5))
    assert len(rows) == len(pages)
    assert all(r.keep and not r.tune for r in rows)
    assert sum(r.weight for r in rows) == pytest.approx(50.0)
    assert keep_docs(pages, labelled_docs=100, cfg=MathPageConfig(doc_weight_share=0.0)) == []


def _removed(text: str, program: str) -> set[int]:
    res = execute(text, program, stage="chunk")
    return {i for a, b in res.removed_ranges for i in range(a, b + 1)}


def test_shipped_builtin_keeps_formulas_and_removes_qa_furniture():
    page = "\n".join([
        "Skip to main content", "Stack Exchange Network", "Log in", "Sign up", "Home", "Questions", "Tags", "Users", "",
        "Integral of sec x", "", "Ask Question", "Asked 5 years, 1 month ago", "Viewed 665 times", "8",
        "How do I compute", "$$", "\\int \\sec x \\, dx", "$$", "without looking it up?", "",
        "Multiply by $\\frac{\\sec x + \\tan x}{\\sec x + \\tan x}$ and substitute $u = \\sec x + \\tan x$:",
        "\\begin{align}", "\\int \\sec x\\,dx &= \\int \\frac{du}{u} \\\\", "&= \\ln|\\sec x + \\tan x| + C", "\\end{align}",
        "x^3+2x^2+8x+1=0", "",
        "Share", "Cite", "Follow", "answered Nov 28, 2019 at 12:21", "Add a comment |", "",
        "Hot Network Questions", "Bath Fan Roof Outlet Coupling", "Growing plants on Mars",
        "Company", "About", "Press", "Privacy Policy", "Terms of Service", "Cookie Settings",
    ])
    refiner = get_refiner("builtin")
    removed = _removed(page, refiner.chunk_programs([page])[0][0])
    lines = page.split("\n")
    formula = [i for i, ln in enumerate(lines) if any(c in ln for c in "$\\^")]
    assert not removed & set(formula), [lines[i] for i in sorted(removed & set(formula))]
    furniture = [lines.index(s) for s in ("Skip to main content", "Share", "Cite", "Follow", "Hot Network Questions",
                                          "Privacy Policy", "Add a comment |")]
    assert len(removed & set(furniture)) >= len(furniture) - 1
    # protect_math=False hands the formula lines back to the trees (an option, not the default)
    off = get_refiner("builtin", protect_math=False)
    assert off.protect_math is False and refiner.protect_math is True


def test_shipped_builtin_on_the_public_math_pages(math_rows):
    """The math targets of issue 10 on the public math pages (lines-math-public)."""
    refiner = get_refiner("builtin")
    programs = refiner.chunk_programs([r["text"] for r in math_rows])
    tp = fp = fn = formula = formula_kept = clean_content = clean_kept = 0
    for row, prog in zip(math_rows, programs):
        removed = _removed(row["text"], prog[0])
        noisy, content, f = set(row["noisy_lines"]), set(row["content_lines"]), set(row["meta"]["formula_lines"])
        tp += len(removed & noisy)
        fp += len(removed & content)
        fn += len(noisy - removed)
        formula += len(f)
        formula_kept += len(f - removed)
        if row["source"] == "approach0-mse":
            clean_content += len(content)
            clean_kept += len(content - removed)
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert formula_kept / formula >= 0.99
    assert clean_kept / clean_content >= 0.99
    assert f1 >= 0.93


def test_shipped_builtin_keeps_math_qa_documents(benchmark_docs):
    math_docs = [d for d in benchmark_docs if d["source"] == "mathse-math" and not in_train_split(d["id"])]
    programs = get_refiner("builtin").doc_programs([d["text"] for d in math_docs])
    kept = np.mean(["keep_doc" in p for p in programs])
    assert kept >= 0.95, kept
