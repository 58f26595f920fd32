"""Where the math is: markup, multi-line blocks, plain-text signs (prox.mathtext)."""
from __future__ import annotations

import numpy as np
import pytest

from prox.mathtext import block_lines, has_markup, math_lines, may_have_blocks, protected_lines, symbol_count


@pytest.mark.parametrize("line", [
    r"Recall that $f: \mathbb{R} \rightarrow \mathbb{R}$ is continuous.",
    "$x^3+2x^2+8x+1=0$",
    r"\int \sec x \, dx",
    r"$$h \approx {{GM} \over c^2} \times {1 \over r}$$",
    r"\[ a^2 + b^2 = c^2 \]",
    r"so \(x\) is odd",
    "[tex]\\Delta K = (dd^{\\dagger} + d^{\\dagger}d)K[/tex]",
    "[itex]",
    "The answer is $0$.",
    "A bank makes a loss of $1,000,000$ in $2016$.",
    "$ f_n = f_{n+1} + (n-1) f_{n-2} $",
    "40x (dy/dx) - ln(x^8) = 0",
    r"\begin{cases} x & x > 0 \\",
    r"so x\in A",
    "$$ x = 3 $$",
    "= \\frac{1}{2} $$",
])
def test_math_markup_is_found(line):
    assert has_markup(line)


@pytest.mark.parametrize("line", [
    "Prices from $5 to $10 per month",
    "Save $19.99-$29.99 today",
    "$$299.00",
    "Relative Price  $$$$  $$$",
    "Share Cite Follow",
    "asked Nov 28, 2019 at 10:33",
    r"$\begingroup$",
    r"\$\endgroup\$",
    r"$\begingroup$ Gravitational waves are tiny. $\endgroup$",
    "3,1238 silver badges16 bronze badges",
    "Visit https://example.com/?a=1&b=x^2 now",
    "Home > Blog > Weight Loss",
    "So happy T^T",  # an emoticon, not a power
    "girly @$$",  # a censored word
    "vibe: 5 | quality: 4.5 | service: 4.5 | $$",  # a price level
    "will this be at ASDA\\Wal-Mart in the UK?",  # a path-like backslash after a letter
    "References: <c40sdm$mov$1@smc.vnet.net> <c4388p$egq$1@smc.vnet.net>",  # message ids
])
def test_prices_furniture_and_nav_are_not_markup(line):
    assert not has_markup(line)


def test_multiline_blocks_are_found_with_their_delimiters():
    lines = [
        "We compute",
        "$$",
        "\\sum_{k=0}^n k",
        "= \\frac{n(n+1)}{2}",
        "$$",
        "and also",
        "\\begin{align}",
        "a &= b \\\\",
        "c &= d",
        "\\end{align}",
        "[tex]",
        "x = 1",
        "[/tex]",
        "$",
        "y = 2",
        "$",
        "Share",
    ]
    block = block_lines(lines)
    assert block.tolist() == [False] + [True] * 4 + [False] + [True] * 4 + [True] * 3 + [True] * 3 + [False]
    assert may_have_blocks("\n".join(lines))


def test_an_unclosed_opener_protects_nothing_beyond_the_look_ahead():
    lines = ["$$ stray"] + ["menu item"] * 100
    assert not block_lines(lines).any()
    lines = ["\\begin{proof}"] + ["nav"] * 100
    assert not block_lines(lines).any()


def test_protected_lines_and_symbols():
    lines = ["Home", "Let $x>0$.", "", "x = 2 + 3", "Contact us"]
    ml = math_lines(lines)
    assert ml.markup.tolist() == [False, True, False, False, False]
    assert protected_lines(lines).tolist() == [False, True, False, False, False]
    assert ml.symbols[3] >= 2 and ml.symbols[0] == 0 and ml.symbols[2] == 0
    assert symbol_count("see https://x.org/?a=b=c") == 0
    assert isinstance(ml.block, np.ndarray) and ml.block.dtype == bool


def test_public_math_pages_formula_lines_are_found(math_rows):
    """On the public math pages, most formula lines carry markup and almost no noise line does."""
    formula = found = noisy = noisy_found = 0
    for row in math_rows:
        prot = protected_lines(row["text"].split("\n"))
        f = row["meta"]["formula_lines"]
        formula += len(f)
        found += int(prot[f].sum())
        noisy += len(row["noisy_lines"])
        noisy_found += int(prot[row["noisy_lines"]].sum())
    assert found / formula >= 0.9  # measured 0.917 (the rest is plain-text math: the model's job)
    assert noisy_found / noisy <= 0.005  # measured 4 of 1,863
