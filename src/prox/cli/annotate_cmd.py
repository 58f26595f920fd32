"""`prox annotate INPUT -o OUT`: SFT records from a teacher LM (any OpenAI-compatible endpoint) or gold labels."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from prox.cli import app

EPILOG = """\
[bold]Examples[/bold]

  [cyan]prox annotate docs.jsonl.gz -o ann/chunk --task chunk --tokenizer ./student \\
      --teacher-url http://127.0.0.1:8080/v1 --teacher-model llama-3-70b[/cyan]
      chunk programs from the three prompt families of a served teacher

  [cyan]prox annotate docs.jsonl.gz -o ann/doc --task doc --tokenizer ./student --teacher-url URL --teacher-model NAME[/cyan]
      keep_doc()/drop_doc() from the two 0-5 rubrics (keep if edu >= 3, or edu = 2 and format >= 4)

  [cyan]prox annotate --from-gold lines-public-train.jsonl.gz -o ann/gold --task chunk --tokenizer ./student[/cyan]
      remove_lines programs straight from human noisy_lines labels (doc task: the keep field)

Outputs: OUT/sft.jsonl (prompt = exact refiner input, completion = program), OUT/annotations.jsonl
(one outcome per document, raw teacher answers), OUT/stats.json (counts, tokens), OUT/cache/ (teacher responses).
Killed? Rerun the same command: finished documents are skipped, answered requests come from the cache.
"""


@app.command("annotate", epilog=EPILOG, rich_help_panel="Train", no_args_is_help=True)
def annotate(
    input: Optional[str] = typer.Argument(None, metavar="INPUT", help="JSONL(.gz/.zst) or Parquet documents to annotate with the teacher."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    task: str = typer.Option("chunk", "--task", help="doc (keep_doc/drop_doc) or chunk (remove_lines/normalize programs)."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="The student's tokenizer directory: prompts are rendered (and chunked) with it."),
    preset: str = typer.Option("prox", "--preset", help="Prompt format of the student: prox (Llama-2 chat, the default of every LM refiner), model (its own chat template) or plain. Refine with the same preset."),
    chunk_budget: Optional[int] = typer.Option(None, "--chunk-budget", help="Chunk token budget (default: the paper's 1,500). Refine with the same value."),
    teacher_url: Optional[str] = typer.Option(None, "--teacher-url", help="OpenAI-compatible endpoint of the teacher, e.g. http://127.0.0.1:8080/v1."),
    teacher_model: Optional[str] = typer.Option(None, "--teacher-model", help="The model name sent in each request."),
    from_gold: Optional[str] = typer.Option(None, "--from-gold", help="Build records from gold labels instead of a teacher (noisy_lines rows, or keep rows for --task doc)."),
    templates: Optional[Path] = typer.Option(None, "--templates", help="Folder of prompt template files overriding the packaged ones (same names)."),
    domain: str = typer.Option("web", "--domain", help="web | math: the packaged teacher prompts (math: a mathematical-value rubric, chunk prompts that keep every formula and remove Q&A/forum furniture)."),
    max_removed_share: float = typer.Option(0.8, "--max-removed-share", help="Reject a chunk program removing more than this share of its lines."),
    concurrency: int = typer.Option(8, "--concurrency", help="Teacher requests in flight."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries per teacher request (429/5xx/timeouts)."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds per teacher request."),
    max_answer_tokens: Optional[int] = typer.Option(None, "--max-answer-tokens", help="Teacher answer budget (default 256 tokens)."),
    batch_docs: int = typer.Option(16, "--batch-docs", help="Documents per batch (outputs are flushed after each)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Annotate at most N new documents."),
    text_field: str = typer.Option("text", "--text-field"),
    id_field: str = typer.Option("id", "--id-field"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not cache teacher responses in OUT/cache/."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over instead of resuming."),
) -> None:
    """Annotate documents with a teacher LM (or gold labels) into SFT records for `prox train lm`."""
    from prox.annotate.records import OutputFolder
    from prox.annotate.run import AnnotateOptions, Annotator, documents_from_file
    from prox.annotate.templates import TeacherTemplates
    from prox.render import PromptRenderer

    if (input is None) == (from_gold is None):
        raise typer.BadParameter("give exactly one of INPUT (teacher annotation) or --from-gold FILE")
    if task not in ("doc", "chunk"):
        raise typer.BadParameter("--task must be doc or chunk", param_hint="--task")
    teacher = None
    loaded_templates = None
    if input is not None:
        if not teacher_url or not teacher_model:
            raise typer.BadParameter("teacher annotation needs --teacher-url and --teacher-model")
        from prox.annotate.teacher import OpenAITeacher

        try:
            loaded_templates = TeacherTemplates.load(templates, domain=domain)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--domain") from None
        teacher = OpenAITeacher.from_url(
            teacher_url, teacher_model, cache_dir=None if no_cache else str(output / "cache"),
            concurrency=concurrency, max_retries=max_retries, timeout_s=timeout,
        )
    source_path = input or from_gold
    if not Path(source_path).exists():
        raise typer.BadParameter(f"{source_path} does not exist")
    render_kwargs = {"chunk_budget": chunk_budget} if chunk_budget else {}
    renderer = PromptRenderer(tokenizer, preset=preset, with_ids=False, **render_kwargs)
    options = AnnotateOptions(task=task, max_removed_share=max_removed_share, batch_docs=batch_docs,
                              limit=limit, source="gold" if from_gold else "teacher")
    if max_answer_tokens:
        options.doc_answer_tokens = options.chunk_answer_tokens = max_answer_tokens
    docs = documents_from_file(source_path, text_field=text_field, id_field=id_field, keep_row=from_gold is not None)
    with OutputFolder(output, overwrite=overwrite) as out:
        stats = Annotator(out, renderer, options=options, teacher=teacher, templates=loaded_templates).run(docs)
    counts = stats["counts"]
    typer.echo(json.dumps({k: v for k, v in counts.items() if k.startswith(("docs_", "records", "chunks_", "label"))}, indent=1))
    if stats.get("teacher"):
        t = stats["teacher"]
        typer.echo(f"teacher: {t.get('requests', 0)} requests, {t.get('cache_hits', 0)} cached, "
                   f"{t.get('prompt_tokens', 0)} prompt + {t.get('completion_tokens', 0)} completion tokens")
    typer.echo(f"wrote {output / 'sft.jsonl'} ({stats['seconds']:.1f}s); stats in {output / 'stats.json'}")
