"""Where the mathematics is in a text (pure functions, no model).

Math corpora (OpenWebMath, FineMath, forum and Q&A crawls, lecture notes) carry formulas as
LaTeX (`$…$`, `$$…$$`, `\\[…\\]`, `\\begin{…}…\\end{…}`), as forum tags (`[tex]…[/tex]`,
`[itex]`, `[math]`) or as plain text (`x^3+2x^2+8x+1=0`, `f(x) = 2x`, `∑ a_i ≤ 1`). To a
line-level refiner a formula looks like a menu item: short, no sentence end, few stop
words. This module finds, for each line of a document:

* ``markup``: the line holds math markup (a TeX command, inline or display math
  delimiters, a math tag);
* ``block``: the line is part of a multi-line math block (its delimiters included);
* ``symbols``: how many plain-text math signs it has (``=``, ``^``, ``f(x)``, math
  symbols, digit-operator-digit) -- a feature, not proof.

``markup | block`` is *formula evidence*: refiners keep those lines (``protected_lines``).
Stack Exchange's ``$\\begingroup$`` / ``$\\endgroup$`` markers are page furniture, not
math, and are ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# A multi-line block whose closing delimiter is not found within this many lines is not a
# block (a stray `$$` or `\begin{` must not protect the rest of the page).
MAX_BLOCK_LINES = 60

# Stack Exchange wraps every post and comment in these; they are furniture, not math.
_SE_GROUP = re.compile(r"\\?\$\\(?:begin|end)group\\?\$")
# TeX control words (\frac, \alpha, \mathbb); control symbols (`\,`) also escape plain text.
# After a letter only a lower-case command counts (x\in A, 1\cdot 2): "ASDA\Wal-Mart" and
# "Packs\Vehicles" are paths, not TeX.
_TEX_COMMAND = re.compile(r"(?<![A-Za-z])\\[A-Za-z]{2,}|\\[a-z]{2,}")
# Inline math the way pandoc reads it: `$` followed by a non-space, a closing `$` preceded
# by a non-space and not followed by a digit (so "$5 and $10" and "$19.99-$29.99" are prices).
_INLINE_DOLLAR = re.compile(r"(?<![\\$])\$(?=[^\s$])([^$\n@]{1,400}?)(?<=[^\s\\])\$(?![\d$])")
# `$$` delimits display math, except "$$299.00" (a price), "$$$" and "| $$" (price levels:
# no TeX on the line) and the "@$$" of a censored word.
_DISPLAY_DOLLARS = re.compile(r"(?<![$@])\$\$(?![\d$])")
_TEXISH = re.compile(r"[\\^_={}]")
_DELIMITERS = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\begin\{|\\end\{|\[/?(?:tex|itex|latex|math)\]|<math[\s>]", re.I)
# Caret between symbols (x^2, e^{i\pi}, (a+b)^n) or a braced subscript (f_{n+1}): rare outside
# math; the same letter on both sides ("T^T") is an emoticon.
_POWER = re.compile(r"([\w)\]}])\^([\w({\-+])(\w?)|[A-Za-z]_\{")
# A whole line delimited by `$ … $` with TeX inside (pandoc would not read "$ x = 1 $").
_SPACED_DOLLAR_LINE = re.compile(r"^\s*\$[^$]*[\\_^={}][^$]*\$\s*$")
# Plain-text math signs (a feature: `=` and `×` also occur in URLs and product sizes).
_MATH_SYMBOLS = re.compile(
    r"[=<>≤≥≠≈≡±∓×÷·∘√∛∞∑∏∫∮∂∇∈∉∋⊂⊃⊆⊇∪∩∧∨¬∀∃∄→←↔⇒⇐⇔↦∝∼≅⊥∥∠°′″ℕℤℚℝℂαβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩ]"
    r"|\b[A-Za-z]\([A-Za-z0-9, ]{1,12}\)"  # f(x), P(A, B)
    r"|\d\s?[+*/^]\s?\d"  # 3 + 4, 2*5, 10/3
    r"|[\w)\]}]\^[\w({]"
)
_URL = re.compile(r"\S+://\S+|www\.\S+")

# Openers of multi-line blocks: (pattern for an opener, function giving its closer pattern).
_OPENERS: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(r"\\begin\{([A-Za-z*]+)\}"), lambda m: re.compile(r"\\end\{" + re.escape(m.group(1)) + r"\}")),
    (re.compile(r"\\\["), lambda m: re.compile(r"\\\]")),
    (re.compile(r"\[(tex|itex|latex|math)\]", re.I), lambda m: re.compile(r"\[/" + m.group(1) + r"\]", re.I)),
)


@dataclass(frozen=True)
class MathLines:
    """Per-line math facts of one document (arrays of ``len(lines)``)."""

    markup: np.ndarray  # bool: TeX command, math delimiters or a math tag on the line
    block: np.ndarray  # bool: inside (or delimiting) a multi-line math block
    symbols: np.ndarray  # int: plain-text math signs on the line

    @property
    def protected(self) -> np.ndarray:
        """Lines with formula evidence: a refiner keeps them."""
        return self.markup | self.block


def _strip_furniture(line: str) -> str:
    return _SE_GROUP.sub(" ", line) if "group" in line else line


def has_markup(line: str) -> bool:
    """True when the line holds TeX math markup (a command, delimiters, a math tag, a power)."""
    s = _strip_furniture(line)
    if "\\" in s and _TEX_COMMAND.search(s):
        return True
    if ("\\" in s or "[" in s or "<" in s) and _DELIMITERS.search(s):
        return True
    if "$" in s and (display_delimiters(s) or _INLINE_DOLLAR.search(s) or _SPACED_DOLLAR_LINE.match(s)):
        return True
    if "^" not in s and "_{" not in s:
        return False
    for m in _POWER.finditer(_URL.sub(" ", s)):
        base, exponent, more = m.group(1), m.group(2), m.group(3)
        if base is None or not (base.isalpha() and base.lower() == exponent.lower() and not more):
            return True  # a power or a subscript; "T^T" (the same letter alone both sides) is an emoticon
    return False


def symbol_count(line: str) -> int:
    """Plain-text math signs on the line (URLs left out)."""
    s = _URL.sub(" ", line) if ("://" in line or "www." in line) else line
    return len(_MATH_SYMBOLS.findall(s))


def display_delimiters(line: str) -> int:
    """How many `$$` of the line open or close display math (see `_DISPLAY_DOLLARS`)."""
    if "$$" not in line:
        return 0
    found = list(_DISPLAY_DOLLARS.finditer(line))
    if not found:
        return 0
    rest = _DISPLAY_DOLLARS.sub(" ", line)
    if not rest.strip() or _TEXISH.search(rest):
        return len(found)
    # no TeX beside them: only a `$$` glued to text is a delimiter ("$$x$$", "$$a+b")
    return sum(1 for m in found if (m.start() and line[m.start() - 1] not in " \t|")
               or (m.end() < len(line) and line[m.end()] not in " \t|"))


def _dollar_toggles(line: str) -> tuple[int, bool]:
    """(number of display `$$` delimiters, whether the line is a lone `$`) of a furniture-free line."""
    return display_delimiters(line), line.strip() == "$"


def block_lines(lines: Sequence[str]) -> np.ndarray:
    """Lines inside a multi-line math block, delimiters included (bounded look-ahead)."""
    n = len(lines)
    out = np.zeros(n, dtype=bool)
    clean = [_strip_furniture(ln) for ln in lines]
    i = 0
    while i < n:
        s = clean[i]
        end = -1
        if "$" in s:
            doubles, lone = _dollar_toggles(s)
            if doubles % 2 == 1 or lone:
                # find the line that closes it: an odd number of `$$` (or a lone `$`)
                for j in range(i + 1, min(n, i + MAX_BLOCK_LINES)):
                    d, l1 = _dollar_toggles(clean[j])
                    if (doubles % 2 == 1 and d % 2 == 1) or (lone and (l1 or clean[j].rstrip().endswith("$"))):
                        end = j
                        break
        if end < 0 and ("\\" in s or "[" in s):
            for opener, closer_of in _OPENERS:
                m = opener.search(s)
                if m is None:
                    continue
                closer = closer_of(m)  # type: ignore[operator]
                if closer.search(s, m.end()):
                    continue  # opened and closed on the same line
                for j in range(i + 1, min(n, i + MAX_BLOCK_LINES)):
                    if closer.search(clean[j]):
                        end = j
                        break
                if end >= 0:
                    break
        if end > i:
            out[i : end + 1] = True
            i = end + 1
        else:
            i += 1
    return out


def math_lines(lines: Sequence[str]) -> MathLines:
    """Math facts of every line of one document (``lines`` as ``text.split("\\n")``)."""
    markup = np.fromiter((has_markup(ln) if ln.strip() else False for ln in lines), dtype=bool, count=len(lines))
    symbols = np.fromiter((symbol_count(ln) if ln.strip() else 0 for ln in lines), dtype=np.int64, count=len(lines))
    block = block_lines(lines)
    blank = np.fromiter((not ln.strip() for ln in lines), dtype=bool, count=len(lines))
    return MathLines(markup=markup, block=block & ~blank, symbols=symbols)


def protected_lines(lines: Sequence[str]) -> np.ndarray:
    """Lines with formula evidence (markup or inside a math block): never remove these."""
    return math_lines(lines).protected


# Anything that can open a multi-line block; documents without one skip the line walk.
_BLOCK_HINT = re.compile(r"\$\$|\\begin\{|\\\[|\[(?:tex|itex|latex|math)\]|^\s*\\?\$\s*$", re.I | re.M)


def may_have_blocks(text: str) -> bool:
    """Cheap test: could `block_lines` find anything in this text?"""
    return ("$" in text or "\\" in text or "[" in text) and _BLOCK_HINT.search(text) is not None
