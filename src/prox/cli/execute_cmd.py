"""`prox execute INPUT -o OUTPUT`: run the programs already in a JSONL file (no model)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from prox.cli import app


def execute_records(records, *, stage: str, mode: str, options=None, counts: Counter | None = None):
    """Execute each `Row` from `prox.records.read_records`; yield output records.

    Every input line gives exactly one output record; a `BadRecord` gives
    ``{"id": null, "line": N, "error": str(bad)}``. ``counts`` gets one of
    ``kept`` / ``dropped`` / ``failed`` / ``error`` per record (plus ``dropped:<reason>``,
    ``error:<kind>`` and ``program_ignored``).
    """
    from prox.executor import execute
    from prox.records import BadRecord

    counts = counts if counts is not None else Counter()
    for row in records:
        if isinstance(row, BadRecord):
            counts["error"] += 1
            counts["error:malformed_json"] += 1
            yield {"id": None, "line": row.number, "error": str(row)}
            continue
        line_no, record = row.number, row.data
        missing = [k for k in ("id", "text", "program") if k not in record]
        bad = [k for k in ("text", "program") if k in record and not isinstance(record[k], str)]
        if missing or bad:
            counts["error"] += 1
            counts["error:missing_field" if missing else "error:bad_field"] += 1
            out = dict(record)
            out["line"] = line_no
            out["error"] = (f"missing field(s): {', '.join(missing)}" if missing
                            else f"field(s) not a string: {', '.join(bad)}")
            yield out
            continue
        result = execute(record["text"], record["program"], stage=stage, mode=mode, options=options)
        out = dict(record)
        out["raw_text"] = record["text"]
        out["text"] = result.text
        out["execution"] = result.summary()
        if result.failed is not None:
            counts["failed"] += 1
            out["error"] = result.failed
        elif result.dropped:
            counts["dropped"] += 1
            counts[f"dropped:{result.drop_reason}"] += 1
        else:
            counts["kept"] += 1
        if result.program_ignored:
            counts["program_ignored"] += 1
        yield out


def summary_line(counts: Counter, output: str) -> str:
    total = counts["kept"] + counts["dropped"] + counts["failed"] + counts["error"]
    reasons = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items()) if k.startswith("dropped:"))
    kinds = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items()) if k.startswith("error:"))
    return (f"execute: {total} records: {counts['kept']} kept, {counts['dropped']} dropped"
            f"{f' ({reasons})' if reasons else ''}, {counts['failed']} failed, {counts['error']} errors"
            f"{f' ({kinds})' if kinds else ''}; {counts['program_ignored']} programs ignored -> {output}")


@app.command("execute")
def execute_cmd(
    input: Path = typer.Argument(..., help="JSONL(.gz/.zst) records with id, text, program", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "-o", "--output", help="output JSONL(.gz/.zst)"),
    stage: str = typer.Option("chunk", "--stage", help="doc | chunk"),
    mode: str = typer.Option("strict", "--mode", help="strict | reference"),
    drop_ratio: float = typer.Option(None, "--drop-ratio", help="drop when <= 1-ratio of words remain [0.95]"),
    min_words: int = typer.Option(None, "--min-words", help="drop when <= this many words remain [10]"),
    max_errors: int = typer.Option(None, "--max-errors", help="ignore programs with >= this many errors [2]"),
) -> None:
    """Execute each record's `program` on its `text`; write refined text and a summary."""
    from prox.executor import MODES, ExecOptions
    from prox.program import STAGES
    from prox.records import JsonlWriter, read_records

    if stage not in STAGES:
        raise typer.BadParameter(f"--stage must be one of {', '.join(STAGES)}")
    if mode not in MODES:
        raise typer.BadParameter(f"--mode must be one of {', '.join(MODES)}")
    overrides = {k: v for k, v in (("drop_ratio", drop_ratio), ("min_words", min_words),
                                   ("max_errors", max_errors)) if v is not None}
    try:
        options = ExecOptions(**overrides)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    counts: Counter = Counter()
    with JsonlWriter(output) as writer:
        for out in execute_records(read_records(input), stage=stage, mode=mode, options=options, counts=counts):
            writer.write(out)
    typer.echo(summary_line(counts, str(output)))
