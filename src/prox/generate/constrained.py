"""The ProX program language as a grammar, for constrained decoding.

One definition, two spellings, so every backend constrains to the same language:

- `program_regex(stage)`  — a Python/ECMA-compatible regex; used by the transformers
  backend (through llguidance) and by vLLM (``StructuredOutputsParams(regex=...)``).
- `program_gbnf(stage)`   — GBNF for llama.cpp's server (the ``grammar`` request field).

The language is the canonical output of the released ProX models:

    doc:    keep_doc() | drop_doc()
    chunk:  skip_chunk()
          | one operation per line, each one of
              remove_lines(line_start=N, line_end=N)
              normalize(source_str="...", target_str="...")

Lengths are bounded so a constrained generation always terminates inside the grammar
well before typical token budgets; a budget cut can still stop mid-line, and
`complete_prefix` then keeps the complete lines only.
"""
from __future__ import annotations

import re

# Bounds of the constrained language (ours, not the paper's; chosen to cover real outputs):
MAX_DIGITS = 6          # line indices up to 999,999 (long_doc fixtures reach ~10^3–10^4 lines)
MAX_STRING_CHARS = 200  # normalize() arguments are URLs / boilerplate phrases, not paragraphs
MAX_OPERATIONS = 64     # chunk outputs are capped at 256 tokens by ProX (max_tokens=256)

# A normalize() argument: any characters but the quote, backslash and line breaks.
_STRING_CLASS = r'[^"\\\n\r]'
_SOURCE_START = r'[^"\\\n\r ]'
# Llama-2 chat answers start with a space token ("[/INST] keep_doc()"); allow one.
_LEAD = " ?"


def _bounds(max_ops: int, max_chars: int, max_digits: int) -> tuple[int, int, int]:
    for name, value, least in (("max_ops", max_ops, 1), ("max_chars", max_chars, 2), ("max_digits", max_digits, 1)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, not {value!r}")
    return max_ops, max_chars, max_digits


def program_regex(
    stage: str,
    *,
    max_ops: int = MAX_OPERATIONS,
    max_chars: int = MAX_STRING_CHARS,
    max_digits: int = MAX_DIGITS,
) -> str:
    """The program language of `stage` ("doc" or "chunk") as one regex (full match)."""
    if stage == "doc":
        return rf"{_LEAD}(keep_doc\(\)|drop_doc\(\))"
    if stage != "chunk":
        raise ValueError(f"stage must be 'doc' or 'chunk', not {stage!r}")
    max_ops, max_chars, max_digits = _bounds(max_ops, max_chars, max_digits)
    num = f"[0-9]{{1,{max_digits}}}"
    remove = rf"remove_lines\(line_start={num}, line_end={num}\)"
    # source: not empty and not exactly " " (the parser refuses both, as the reference skips them)
    source = f"({_SOURCE_START}{_STRING_CLASS}{{0,{max_chars - 1}}}| {_STRING_CLASS}{{1,{max_chars - 1}}})"
    normalize = (
        rf'normalize\(source_str="{source}"'
        rf'(, target_str="{_STRING_CLASS}{{0,{max_chars}}}")?\)'
    )
    op = f"({remove}|{normalize})"
    return rf"{_LEAD}(skip_chunk\(\)|{op}(\n{op}){{0,{max_ops - 1}}})"


def program_gbnf(
    stage: str,
    *,
    max_ops: int = MAX_OPERATIONS,
    max_chars: int = MAX_STRING_CHARS,
    max_digits: int = MAX_DIGITS,
) -> str:
    """The program language of `stage` in llama.cpp's GBNF."""
    if stage == "doc":
        return 'root ::= " "? ("keep_doc()" | "drop_doc()")\n'
    if stage != "chunk":
        raise ValueError(f"stage must be 'doc' or 'chunk', not {stage!r}")
    max_ops, max_chars, max_digits = _bounds(max_ops, max_chars, max_digits)
    return (
        f'root ::= " "? ("skip_chunk()" | op ("\\n" op){{0,{max_ops - 1}}})\n'
        'op ::= remove | normalize\n'
        'remove ::= "remove_lines(line_start=" num ", line_end=" num ")"\n'
        'normalize ::= "normalize(source_str=\\"" source "\\"" (", target_str=\\"" char{0,%d} "\\"")? ")"\n'
        % max_chars
        + 'source ::= first char{0,%d} | " " char{1,%d}\n' % (max_chars - 1, max_chars - 1)
        + f"num ::= [0-9]{{1,{max_digits}}}\n"
        + 'char ::= [^"\\\\\\n\\r]\n'
        + 'first ::= [^"\\\\\\n\\r ]\n'
    )


def matches(text: str, stage: str, **bounds: int) -> bool:
    """Whether `text` is a complete program of the constrained language."""
    return re.fullmatch(program_regex(stage, **bounds), text) is not None


def complete_prefix(text: str, stage: str, **bounds: int) -> str:
    """The longest prefix of whole lines of `text` that is a complete program ("" if none).

    A constrained generation cut by the token budget is a prefix of a valid program;
    this drops its unfinished last line so the parser sees only complete operations.
    """
    if matches(text, stage, **bounds):
        return text
    if stage == "doc":
        return ""
    lines = text.split("\n")
    for n in range(len(lines) - 1, 0, -1):
        candidate = "\n".join(lines[:n])
        if matches(candidate, stage, **bounds):
            return candidate
    return ""
