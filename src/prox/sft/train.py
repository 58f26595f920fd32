"""`prox train lm`: supervised fine-tuning of a small refining LM with TRL.

Base model: a local Hugging Face model directory or a local ``.gguf`` file (de-quantized
to float32 on load). Output: a plain Hugging Face model directory (weights, config,
generation config, tokenizer with its chat template) that the transformers and vLLM
backends load directly. With ``--lora`` the adapter is trained, then merged into the base
weights before saving, so the output never needs peft.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prox.annotate.records import load_sft_records
from prox.refiners.lm import TRAINED_RENDER_FILE
from prox.sft.data import DEFAULT_MAX_LENGTH, to_dataset, tokenize_records

# The LM refiner reads the recorded prompt format back from this file (its "render" entry).
SUMMARY_FILE = TRAINED_RENDER_FILE


@dataclass
class TrainLMOptions:
    stage: str | None = None  # train on one stage's records only ("doc" / "chunk"); None: all
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float | None = None  # default: 2e-4 with LoRA, 2e-5 for full fine-tuning
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = DEFAULT_MAX_LENGTH
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    seed: int = 0
    logging_steps: int = 5
    gradient_checkpointing: bool = False
    threads: int | None = None  # torch CPU threads; None: torch's default
    # bf16 autocast: None = auto (a CUDA GPU with bf16, or a CPU with AMX/AVX512-BF16, where
    # bf16 matmuls run ~4x faster than fp32: measured 932 vs 229 GFLOPS on 2 Sapphire Rapids cores)
    bf16: bool | None = None
    max_minutes: float | None = None  # stop (and save) after this much training wall time

    def use_bf16(self) -> bool:
        if self.bf16 is not None:
            return self.bf16
        return bf16_available()

    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.lora else 2e-5


def bf16_available() -> bool:
    """Whether bf16 training is fast here: CUDA with bf16, or a CPU with AMX / AVX512-BF16."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def _time_budget_callback(minutes: float):
    """A TrainerCallback ending training (cleanly: the model is still saved) after ``minutes``."""
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        deadline = float("inf")

        def on_train_begin(self, args, state, control, **kwargs):
            self.deadline = time.perf_counter() + minutes * 60

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() >= self.deadline:
                control.should_training_stop = True
            return control

    return TimeBudget()


def _clean_copy(model: Any) -> Any:
    """A float32 copy of a GGUF-loaded model without the (unsaveable) GGUF quantization marker."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(model.state_dict())
    if getattr(model, "generation_config", None) is not None:
        clean.generation_config = model.generation_config
    return clean


def load_base(path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in float32 from a local model dir or ``.gguf`` file. No hub access."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"base model {str(path)!r} does not exist (prox never downloads models)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"base model file {str(path)!r} is not a .gguf file; pass a model directory or a GGUF file")
        kwargs = {"gguf_file": path.name, "local_files_only": True}
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
        model = _clean_copy(AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kwargs))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def convert_base(path: str | Path, out_dir: str | Path) -> Path:
    """Save a base model (e.g. a ``.gguf`` file) as a plain Hugging Face directory."""
    model, tokenizer = load_base(path)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _score_only_completion_positions_on_cpu() -> None:
    """Make TRL's chunked loss score only the unmasked (program) positions on CPU too.

    TRL (1.16) scores every position of the sequence against the whole vocabulary unless the
    device runs Triton (it keeps tile shapes fixed for compilers such as Neuron's). On CPU,
    in eager mode, nothing recompiles, and scoring all ~1,200 prompt positions through the
    49k-entry LM head was ~25 % of a SmolLM2 chunk-SFT step (measured with torch.profiler).
    The masked positions never reach the loss either way, so the loss is unchanged.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_prox_cpu_compact", False):
        return

    def use_compact(device):
        return device.type == "cpu" or original(device)

    use_compact._prox_cpu_compact = True
    trl_utils._use_triton = use_compact


def build_trainer(data: str | Path, model: Any, tokenizer: Any, out_dir: str | Path, options: TrainLMOptions):
    """The configured `trl.SFTTrainer` (exposed so that tests can inspect its batches)."""
    import torch
    from trl import SFTConfig, SFTTrainer

    _score_only_completion_positions_on_cpu()

    records = load_sft_records(data, stage=options.stage)
    tokenized = tokenize_records(records, tokenizer, max_length=options.max_length)
    dataset = to_dataset(tokenized)
    use_cuda = torch.cuda.is_available()
    config = SFTConfig(
        output_dir=str(Path(out_dir) / "trainer"),
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.grad_accum,
        num_train_epochs=options.epochs,
        max_steps=options.max_steps,
        learning_rate=options.lr(),
        lr_scheduler_type=options.lr_scheduler,
        warmup_steps=options.warmup_ratio,  # transformers >= 5: a float < 1 is a ratio of all steps
        logging_steps=options.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=options.seed,
        use_cpu=not use_cuda,
        bf16=options.use_bf16(),
        max_length=options.max_length,
        completion_only_loss=True,  # labels of prompt tokens become -100
        packing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **({"gradient_checkpointing": True} if options.gradient_checkpointing else {}),
    )
    peft_config = None
    if options.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_time_budget_callback(options.max_minutes)] if options.max_minutes else None,
    )
    return trainer, tokenized


def train_lm(data: str | Path, base_model: str | Path, out_dir: str | Path, options: TrainLMOptions | None = None) -> dict[str, Any]:
    """Fine-tune ``base_model`` on the SFT records in ``data``; save a loadable model to ``out_dir``."""
    import shutil

    import torch

    options = options or TrainLMOptions()
    if options.threads:
        torch.set_num_threads(options.threads)
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_base(base_model)
    trainer, tokenized = build_trainer(data, model, tokenizer, out, options)
    result = trainer.train()
    trained = trainer.model
    if options.lora:
        trained = trained.merge_and_unload()  # plain weights: no peft needed to load the output
    trained = trained.to(torch.float32)
    trained.config.use_cache = True
    gen = trained.generation_config
    eos_ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    if tokenizer.eos_token_id not in eos_ids:
        gen.eos_token_id = [i for i in [tokenizer.eos_token_id, *eos_ids] if i is not None]
    gen.pad_token_id = tokenizer.pad_token_id
    trained.save_pretrained(out)
    tokenizer.save_pretrained(out)  # tokenizer.json, tokenizer_config.json and chat_template.jinja
    shutil.rmtree(out / "trainer", ignore_errors=True)
    render = sorted({(r.meta.get("preset"), r.meta.get("chunk_budget")) for r in load_sft_records(data, stage=options.stage)},
                    key=str)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "base_model": str(base_model),
        "data": str(data),
        "options": asdict(options),
        # how the training prompts were rendered: refine with the same preset / chunk budget
        "render": [{"preset": p, "chunk_budget": b} for p, b in render],
        "learning_rate": options.lr(),
        "counts": dict(tokenized.counts),
        "prompt_tokens": tokenized.prompt_tokens,
        "completion_tokens": tokenized.completion_tokens,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_logged_loss": losses[0] if losses else None,
        "last_logged_loss": losses[-1] if losses else None,
        "seconds": round(time.perf_counter() - start, 2),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "bf16": bool(trainer.args.bf16),  # what the trainer ran with, not a second probe of the CPU
        "threads": torch.get_num_threads(),
        "stopped_by_time_budget": bool(options.max_minutes) and trainer.state.global_step < trainer.state.max_steps,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
