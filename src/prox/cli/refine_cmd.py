"""`prox refine INPUT... -o OUTDIR`: doc stage -> chunk stage -> execution, on datatrove."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer

from prox.cli import app
from prox.cli.options import REFINER_OPTION_HELP, parse_refiner_options

EPILOG = """\
[bold]Examples[/bold]

  [cyan]prox refine examples/sample/wcxb-sample.jsonl.gz -o runs/sample[/cyan]
      refine the shipped sample with the builtin CPU refiner

  [cyan]prox refine data/ 'more/*.parquet' -o runs/big --tasks 8 --workers 2 --output-format parquet[/cyan]
      folders and globs; 8 resumable tasks, 2 at a time; Parquet out

  [cyan]prox refine corpus.jsonl.zst -o runs/lm --refiner transformers --model ./my-prox-model --batch-size 16[/cyan]
      an LM refiner (options are passed to the refiner)

  [cyan]prox refine owm.jsonl.gz -o runs/math --refiner vllm --domain math --prox-models /models[/cyan]
      the released ProX math refiners (/models/math-doc-refining-lm, /models/math-chunk-refining-lm)

  [cyan]prox refine corpus.jsonl.gz -o runs/doc --stages doc --limit 1000[/cyan]
      doc stage only, first 1,000 documents

  [cyan]prox refine data/ -o runs/x --executor slurm --slurm-partition cpu --tasks 64[/cyan]
      submit 64 Slurm array tasks

Outputs: OUTDIR/kept/, OUTDIR/dropped/ (with "reason"), OUTDIR/failed/ (with "error"), OUTDIR/stats.json.
Killed? Rerun the same command: finished tasks are skipped, cached programs are reused.
"""


@app.command(
    "refine",
    epilog=EPILOG,
    rich_help_panel="Refine",
    no_args_is_help=True,
)
def refine(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet files, folders or globs."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (kept/, dropped/, failed/, stats.json)."),
    refiner: str = typer.Option("builtin", "--refiner", "-r", help="builtin | transformers | vllm | openai | rules:NAME | module:factory."),
    stages: str = typer.Option("doc,chunk", "--stages", help="Stages to run: doc,chunk (default), doc or chunk."),
    mode: str = typer.Option("strict", "--mode", help="Executor mode: strict or reference."),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the document text."),
    id_field: str = typer.Option("id", "--id-field", help="Field holding the document id (generated as <file stem>:<line> when absent)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Process only the first N documents (in input order)."),
    output_format: str = typer.Option("jsonl", "--output-format", help="jsonl (gzip) or parquet."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Documents per refiner call (default 32); also the generate batch of LM refiners (their batch_size option)."),
    max_chars: int = typer.Option(2_000_000, "--max-chars", help="Documents longer than this go to failed/ as too_large."),
    max_lines: Optional[int] = typer.Option(None, "--max-lines", help="Documents with more lines than this go to failed/ as too_large (default 100,000)."),
    doc_model: Optional[str] = typer.Option(None, "--doc-model", help="Doc-stage model (local path), passed to the refiner."),
    chunk_model: Optional[str] = typer.Option(None, "--chunk-model", help="Chunk-stage model (local path), passed to the refiner."),
    model: Optional[str] = typer.Option(None, "--model", help="Model for both stages (local path or served name), passed to the refiner."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer directory, passed to the refiner."),
    domain: str = typer.Option("web", "--domain", help="web | math: which released ProX refiners --prox-models picks. The builtin has one model for both (formulas are protected)."),
    prox_models: Optional[Path] = typer.Option(None, "--prox-models", help="Local folder holding the released ProX refiners under their names (DIR/math-doc-refining-lm, DIR/math-chunk-refining-lm, ...): sets --doc-model/--chunk-model for --domain."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, passed to the refiner."),
    constrained: Optional[bool] = typer.Option(None, "--constrained/--unconstrained", help="Grammar-constrained decoding, passed to the refiner."),
    option: List[str] = typer.Option([], "--option", "-O", help=REFINER_OPTION_HELP),
    executor: str = typer.Option("local", "--executor", help="local | slurm | ray."),
    tasks: int = typer.Option(1, "--tasks", help="Number of tasks (shards); each finishes and resumes on its own."),
    workers: int = typer.Option(1, "--workers", help="Tasks run at the same time (local executor)."),
    slurm_partition: Optional[str] = typer.Option(None, "--slurm-partition", rich_help_panel="Slurm"),
    slurm_time: str = typer.Option("24:00:00", "--slurm-time", rich_help_panel="Slurm"),
    slurm_cpus_per_task: int = typer.Option(1, "--slurm-cpus-per-task", rich_help_panel="Slurm"),
    slurm_mem_per_cpu_gb: int = typer.Option(2, "--slurm-mem-per-cpu-gb", rich_help_panel="Slurm"),
    slurm_gpus_per_task: int = typer.Option(0, "--slurm-gpus-per-task", rich_help_panel="Slurm"),
    slurm_job_name: str = typer.Option("prox-refine", "--slurm-job-name", rich_help_panel="Slurm"),
    slurm_qos: str = typer.Option("normal", "--slurm-qos", rich_help_panel="Slurm"),
    slurm_venv: Optional[str] = typer.Option(None, "--slurm-venv", help="venv folder (or its bin/activate script) to activate in the jobs.", rich_help_panel="Slurm"),
    ray_cpus_per_task: float = typer.Option(1, "--ray-cpus-per-task", rich_help_panel="Ray"),
    ray_mem_per_cpu_gb: float = typer.Option(2, "--ray-mem-per-cpu-gb", rich_help_panel="Ray"),
    ray_gpus_per_task: float = typer.Option(0, "--ray-gpus-per-task", rich_help_panel="Ray"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete OUTDIR's previous outputs first (no resume)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show datatrove's INFO logs."),
) -> None:
    """Refine documents with ProX programs: doc stage (keep/drop), chunk stage (line edits), execution."""
    from prox.pipeline import InputError, RefineConfig, RunError, run_refine
    from prox.pipeline.layout import RunLayout

    refiner_options: dict[str, Any] = {}
    for name, value in (("doc_model", doc_model), ("chunk_model", chunk_model), ("model", model),
                        ("tokenizer", tokenizer), ("base_url", base_url), ("constrained", constrained)):
        if value is not None:
            refiner_options[name] = value
    if batch_size is not None and _accepts(refiner, "batch_size"):
        refiner_options["batch_size"] = batch_size  # the pipeline's batch is also the LM's generate batch
    refiner_options.update(parse_refiner_options(option))
    stage_list = tuple(s.strip() for s in stages.split(",") if s.strip())
    _domain_models(refiner, domain, prox_models, stage_list, refiner_options)
    slurm = {"partition": slurm_partition, "time": slurm_time, "cpus_per_task": slurm_cpus_per_task,
             "mem_per_cpu_gb": slurm_mem_per_cpu_gb, "gpus_per_task": slurm_gpus_per_task,
             "job_name": slurm_job_name, "qos": slurm_qos}
    if slurm_venv:
        slurm["venv_path"] = slurm_venv
    config = RefineConfig(
        inputs=list(inputs), output_dir=str(output), refiner=refiner, refiner_options=refiner_options,
        stages=stage_list, mode=mode,
        text_field=text_field, id_field=id_field, limit=limit, output_format=output_format,
        batch_size=batch_size or 32, max_chars=max_chars, executor=executor, tasks=tasks, workers=workers,
        slurm=slurm if executor == "slurm" else {},
        ray={"cpus_per_task": ray_cpus_per_task, "mem_per_cpu_gb": ray_mem_per_cpu_gb, "gpus_per_task": ray_gpus_per_task}
        if executor == "ray" else {},
        progress=progress, overwrite=overwrite, console_level="INFO" if verbose else "WARNING",
        **({"max_lines": max_lines} if max_lines is not None else {}),
    )
    try:
        stats = run_refine(config)
    except (InputError, RunError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - one clear line; the task logs hold the traceback
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"error: {type(exc).__name__}: {message} (task logs: {RunLayout(output).task_logs_dir}/)", err=True)
        raise typer.Exit(1) from None
    if stats.get("submitted"):
        typer.echo(f"submitted Slurm job {stats['job_name']}; stats.json is written when it finishes")
        return
    typer.echo(_summary(stats, str(output)))


def _accepts(refiner: str, option: str) -> bool:
    from prox.refiners import accepts_option

    try:
        return accepts_option(refiner, option)
    except (ValueError, ImportError):
        return False  # a bad spec is reported by the pipeline's own check


def _domain_models(refiner: str, domain: str, models_dir: Path | None, stages: tuple[str, ...],
                   options: dict[str, Any]) -> None:
    """Fill doc_model / chunk_model from the released refiners of ``domain`` (explicit ones win)."""
    from prox.domains import get_domain, released_models

    try:
        get_domain(domain)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--domain") from None
    if models_dir is None:
        return
    if refiner.split(":", 1)[0] not in ("transformers", "vllm"):
        raise typer.BadParameter("--prox-models needs an LM refiner that loads local models (transformers or vllm)",
                                 param_hint="--prox-models")
    try:
        found = released_models(domain, models_dir, stages)
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prox-models") from None
    for key, path in found.items():
        options.setdefault(key, path)


def _summary(stats: dict[str, Any], output: str) -> str:
    docs = stats["documents"]
    thr = stats["throughput"]
    text = stats["text"]
    reasons = ", ".join(f"{k} {v}" for k, v in stats["dropped_reasons"].items())
    errors = ", ".join(f"{k} {v}" for k, v in stats["failed_reasons"].items())
    lines = [
        f"{docs['docs_in']} documents: kept {docs['kept']}, dropped {docs['dropped']}"
        + (f" ({reasons})" if reasons else "") + f", failed {docs['failed']}" + (f" ({errors})" if errors else ""),
        f"characters kept {text['chars_out']:,} of {text['chars_in']:,}"
        + (f" ({text['chars_kept_ratio']:.1%})" if text["chars_kept_ratio"] is not None else "")
        + f"; lines removed {stats['programs']['lines_removed']:,}",
        f"{thr['wall_s']:.1f} s, {thr['docs_per_s'] or 0:,.1f} docs/s, {thr['mb_per_s'] or 0:.2f} MB/s -> {output}",
    ]
    if not stats.get("complete", True):
        lines.append("warning: not every task reported; rerun the same command to finish")
    return "\n".join(lines)
