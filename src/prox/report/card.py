"""Hugging Face style dataset card (``README.md``) for a refine output folder."""
from __future__ import annotations

import json
from pathlib import Path

from prox.pipeline.layout import OUTCOMES, RunLayout
from prox.report.data import Summary, load_rows, load_stats, summarize

# Hugging Face Hub size_categories buckets (upper bounds, exclusive).
SIZE_BUCKETS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B")]


def size_category(n: int) -> str:
    for bound, name in SIZE_BUCKETS:
        if n < bound:
            return name
    return "n>1T"


def render_card(outdir: str | Path, *, pretty_name: str | None = None, license: str = "other") -> str:
    outdir = Path(outdir)
    kept_glob = RunLayout(outdir).output_glob("kept")
    stats = load_stats(outdir)
    s = summarize(load_rows(outdir))
    refiner = stats.get("refiner")
    refiner_name = (refiner.get("spec") or refiner.get("name")) if isinstance(refiner, dict) else refiner
    name = pretty_name or f"{outdir.resolve().name} (refined with prox)"
    total = s.total or 1
    front = "\n".join([
        "---",
        f"license: {license}",
        "task_categories:",
        "- text-generation",
        "size_categories:",
        f"- {size_category(s.counts['kept'])}",
        f"pretty_name: {json.dumps(name)}",
        "tags:",
        "- prox",
        "- pretraining-data",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {kept_glob}",
        "---",
    ])
    outcome_rows = "\n".join(f"| {o} | {s.counts[o]:,} | {100 * s.counts[o] / total:.1f}% |" for o in OUTCOMES)
    reason_rows = "\n".join(f"| {k} | {v:,} |" for k, v in s.reasons.most_common(20)) or "| (none) | 0 |"
    settings = stats.get("settings") or {}
    settings_rows = "\n".join(f"| {k} | `{json.dumps(v)}` |" for k, v in settings.items())
    inputs = stats.get("inputs") or []
    body = f"""
# {name}

This corpus was refined with prox — programs written per document, in the style
of ProX (*Programming Every Example*, arXiv 2409.17115): a refiner writes `keep_doc()` / `drop_doc()` at
document level and `remove_lines(...)` / `normalize(...)` at chunk level, and a safe executor applies them.
The `default` config holds the **kept** documents (`{kept_glob}`); `dropped/` and `failed/` hold the
original text of the other documents with their reason. Every record keeps the raw text and the programs
in `metadata`.

## Configuration

| setting | value |
|---|---|
| refiner | `{refiner_name or "unknown"}` |
| inputs | {", ".join(f"`{i}`" for i in inputs) or "–"} |
{settings_rows}

## Statistics

| outcome | documents | share |
|---|---|---|
{outcome_rows}

| | value |
|---|---|
| characters in | {s.chars_in:,} |
| characters kept | {s.chars_out:,} ({100 * s.chars_out / max(1, s.chars_in):.1f}%) |
| lines removed (kept docs) | {s.lines_removed:,} |
| normalizations (kept docs) | {sum(s.normalizations.values()):,} |
| formula lines kept | {_formula(s)} |

### Dropped and failed, by reason

| outcome: reason | documents |
|---|---|
{reason_rows}
{_normalization_section(s)}
## Licence

The licence of the refined text is that of the input corpus; set `license:` above accordingly.
An HTML report of this run (`prox report {outdir}`) shows samples before and after refining.
"""
    return front + "\n" + body


def write_dataset_card(outdir: str | Path, *, pretty_name: str | None = None, license: str = "other") -> Path:
    """Write ``OUTDIR/README.md`` (Hugging Face dataset card); callable from the pipeline after a run."""
    path = Path(outdir) / "README.md"
    path.write_text(render_card(outdir, pretty_name=pretty_name, license=license), encoding="utf-8")
    return path


# most frequent normalizations listed in the card
CARD_NORMALIZATIONS = 10


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'").replace("\n", " ") + "`" if text else "\"\""


def _normalization_section(s: Summary) -> str:
    """The most frequent normalizations with one example each (before -> after); empty when none ran."""
    if not s.normalizations:
        return ""
    rows = "\n".join(
        f"| {_cell(src)} | {_cell(tgt)} | {n:,} | {_cell(s.normalization_examples.get((src, tgt), ('', ''))[0])} "
        f"| {_cell(s.normalization_examples.get((src, tgt), ('', ''))[1])} |"
        for (src, tgt), n in s.normalizations.most_common(CARD_NORMALIZATIONS))
    return ("\n### Most frequent normalizations\n\n| source | target | times | example before | after |\n"
            "|---|---|---|---|---|\n" + rows + "\n")


def _formula(s: Summary) -> str:
    """Formula lines (math markup, `prox.mathtext`) kept, removed and lost with dropped documents."""
    if not s.formula_lines_in:
        return "none in the input"
    return (f"{s.formula_lines_kept:,} of {s.formula_lines_in:,} ({100 * s.formula_lines_kept / s.formula_lines_in:.1f}%); "
            f"{s.formula_lines_removed:,} removed, {s.formula_lines_dropped:,} in dropped docs")
