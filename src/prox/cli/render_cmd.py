"""`prox render`: write the doc- or chunk-stage prompts (strings and token ids) of a JSONL corpus.

Each output record is the input record plus ``prompts`` (list of strings; one for the doc
stage) and ``prompt_token_ids`` (list of lists of ints: the ids the model receives). Chunk
stage records also get ``chunks`` (first_line, last_line, budget_tokens per prompt); doc stage
records get ``truncated``. A line that is not a JSON object with a string ``text`` becomes a
record with ``error`` (a reason code) and ``error_detail``; it is counted, never fatal.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

import typer

from prox import records
from prox.cli import app
from prox.program import STAGES
from prox.render import (
    CHUNK_TOKEN_BUDGET,
    DOC_PROMPT_MAX_IDS,
    PRESETS,
    PROX_SYSTEM_PROMPT,
    PromptRenderer,
    RenderError,
)


# `prox render`'s published error codes (docs/prompts.md) for the kinds of `prox.records.BadRecord`.
BAD_RECORD_CODES = {"bad_json": "malformed_json", "non_utf8": "bad_utf8"}


def input_records(path: Path, text_key: str = "text") -> Iterator[tuple[int, dict]]:
    """(1-based line number, record) per non-blank line; bad lines come back with ``error``."""
    for row in records.read_records(path):
        if isinstance(row, records.BadRecord):
            yield row.number, {"input_line": row.number, "error": BAD_RECORD_CODES.get(row.kind, row.kind),
                               "error_detail": row.detail}
            continue
        lineno, record = row.number, row.data
        if text_key not in record:
            yield lineno, {**record, "input_line": lineno, "error": "missing_text",
                           "error_detail": f"no {text_key!r} field"}
            continue
        if not isinstance(record[text_key], str):
            yield lineno, {**record, "input_line": lineno, "error": "text_not_string",
                           "error_detail": f"{text_key!r} is a {type(record[text_key]).__name__}"}
            continue
        yield lineno, record


def render_records(renderer: PromptRenderer, records: list[dict], stage: str, text_key: str) -> list[dict]:
    """Adds prompts/prompt_token_ids to the good records of one batch (error records pass through).

    If the batch fails as a whole, each record is retried alone and a failing one gets
    ``error: "render_failed"``, so one bad document never stops the corpus."""
    try:
        return _render_batch(renderer, records, stage, text_key)
    except Exception:  # noqa: BLE001 - isolate the culprit below
        pass
    out = []
    for record in records:
        try:
            out.extend(_render_batch(renderer, [record], stage, text_key))
        except Exception as exc:  # noqa: BLE001 - recorded and counted
            out.append({**record, "error": "render_failed", "error_detail": f"{type(exc).__name__}: {exc}"[:300]})
    return out


def _render_batch(renderer: PromptRenderer, records: list[dict], stage: str, text_key: str) -> list[dict]:
    records = [dict(r) for r in records]
    good = [r for r in records if "error" not in r]
    texts = [r[text_key] for r in good]
    if stage == "doc":
        for record, prompt in zip(good, renderer.doc_prompts(texts)):
            record["prompts"] = [prompt.text]
            record["prompt_token_ids"] = [prompt.token_ids]
            record["truncated"] = prompt.truncated
    else:
        for record, (chunks, prompts) in zip(good, renderer.render_chunks_batch(texts)):
            record["prompts"] = [p.text for p in prompts]
            record["prompt_token_ids"] = [p.token_ids for p in prompts]
            record["chunks"] = [
                {"first_line": c.first_line, "last_line": c.last_line, "budget_tokens": c.budget_tokens}
                for c in chunks
            ]
    return records


@app.command("render")
def render_command(
    input: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL (.gz/.zst) records with `text` (and `id`)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output JSONL (.gz/.zst by suffix)."),
    stage: str = typer.Option(..., "--stage", help="doc | chunk"),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Directory with tokenizer.json (and tokenizer_config.json)."),
    preset: str = typer.Option("prox", "--preset", help="prox (the released ProX models' inputs) | model (the tokenizer's chat_template) | plain (no template)."),
    budget: int = typer.Option(CHUNK_TOKEN_BUDGET, "--budget", help="Chunk token budget (ProX: 1500)."),
    doc_max_ids: int = typer.Option(DOC_PROMPT_MAX_IDS, "--doc-max-ids", help="Cut doc prompt ids to this many (ProX: 2000); 0 = no cut."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System message (default: the ProX one)."),
    no_system_prompt: bool = typer.Option(False, "--no-system-prompt", help="Send no system message."),
    text_key: str = typer.Option("text", "--text-key", help="Field that holds the document."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Records tokenized together."),
) -> None:
    """Render doc- or chunk-stage prompts and their token ids for every record."""
    if stage not in STAGES:
        raise typer.BadParameter(f"choose one of {', '.join(STAGES)}", param_hint="--stage")
    if preset not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="--preset")
    system = None if no_system_prompt else (system_prompt if system_prompt is not None else PROX_SYSTEM_PROMPT)
    try:
        renderer = PromptRenderer(
            tokenizer, preset, system_prompt=system, chunk_budget=budget,
            doc_max_ids=doc_max_ids or None,
        )
    except (RenderError, OSError, ValueError) as exc:
        typer.echo(f"prox render: {exc}", err=True)
        raise typer.Exit(2)

    counts: Counter = Counter()
    n_prompts = 0
    with records.JsonlWriter(output) as dst:
        batch: list[dict] = []

        def flush() -> None:
            nonlocal n_prompts
            for record in render_records(renderer, batch, stage, text_key):
                if "error" in record:
                    counts[f"error:{record['error']}"] += 1
                else:
                    counts["rendered"] += 1
                    n_prompts += len(record["prompts"])
                dst.write(record)
            batch.clear()

        for _, record in input_records(input, text_key):
            batch.append(record)
            if len(batch) >= batch_size:
                flush()
        flush()

    errors = {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("error:")}
    summary = {"records": sum(counts.values()), "rendered": counts["rendered"], "prompts": n_prompts,
               "errors": errors, "stage": stage, "preset": preset, "output": str(output)}
    typer.echo(json.dumps(summary), err=True)
    sys.stderr.flush()
