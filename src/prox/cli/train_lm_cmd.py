"""`prox train lm --data SFT.jsonl --base-model PATH -o DIR [--lora]`: SFT of a small refining LM (TRL)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from prox.cli.train_cmd import train_app

EPILOG = """\
[bold]Examples[/bold]

  [cyan]prox train lm --data ann/chunk/sft.jsonl --base-model ./SmolLM2-135M-Instruct -o models/chunk --lora --max-steps 200[/cyan]
      LoRA fine-tuning, merged into the base before saving

  [cyan]prox train lm --data ann/chunk --base-model SmolLM2-135M-Instruct.Q4_1.gguf -o models/chunk[/cyan]
      full fine-tuning from a local GGUF file (de-quantized to float32)

The output folder is a plain Hugging Face model (weights, config, tokenizer, chat template) plus
prox_sft.json (data counts, losses, timings, how the prompts were rendered). Load it with
[cyan]prox refine --refiner transformers --chunk-model DIR -O preset=model[/cyan] (the preset the data was rendered with).
"""


@train_app.command("lm", epilog=EPILOG, no_args_is_help=True)
def train_lm_command(
    data: Path = typer.Option(..., "--data", help="sft.jsonl from `prox annotate` (or its folder)."),
    base_model: Path = typer.Option(..., "--base-model", help="Local model directory or .gguf file (never downloaded)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output model directory."),
    lora: bool = typer.Option(False, "--lora/--full", help="Train a LoRA adapter (merged before saving) or all weights."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Only records of this stage: doc or chunk (default: all)."),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after N optimizer steps (overrides --epochs)."),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="Default 2e-4 with --lora, 2e-5 otherwise."),
    batch_size: int = typer.Option(4, "--batch-size"),
    grad_accum: int = typer.Option(1, "--grad-accum"),
    max_length: int = typer.Option(2560, "--max-length", help="Longer prompt+program examples are skipped (counted)."),
    lora_r: int = typer.Option(16, "--lora-r"),
    lora_alpha: int = typer.Option(32, "--lora-alpha"),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout",
                                       help="0 is ~30 % faster on CPU (dropout masks were a fifth of a step)."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--fp32",
                                        help="bf16 autocast (default: on where fast: CUDA bf16, or a CPU with AMX/AVX512-BF16)."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes",
                                                help="Stop after this much training wall time (the model is still saved)."),
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer, loss on the program tokens only)."""
    from prox.sft.train import TrainLMOptions, train_lm

    if stage not in (None, "doc", "chunk"):
        raise typer.BadParameter("--stage must be doc or chunk", param_hint="--stage")
    if not data.exists():
        raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
    options = TrainLMOptions(
        stage=stage, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, epochs=epochs, max_steps=max_steps,
        learning_rate=learning_rate, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
        seed=seed, threads=threads, gradient_checkpointing=gradient_checkpointing, bf16=bf16, max_minutes=max_minutes,
    )
    summary = train_lm(data, base_model, output, options)
    typer.echo(json.dumps({k: summary[k] for k in ("counts", "steps", "train_loss", "seconds", "bf16", "stopped_by_time_budget", "render")}, indent=1))
    typer.echo(f"saved {output}")
