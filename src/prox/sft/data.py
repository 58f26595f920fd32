"""SFT records -> a tokenized prompt-completion dataset (loss on the program tokens only).

The prompt is tokenized exactly as the transformers backend tokenizes a rendered prompt
at refine time (`prox.generate.transformers_backend`: the text as is, with the
tokenizer's special tokens only when the text does not already start with its BOS), and
the completion (the program) separately, followed by EOS. The concatenation is what the
model sees during training; ``completion_mask`` marks the program tokens, and TRL turns
every other label into -100.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from prox.annotate.records import SFTRecord

# Prompt + program tokens. Chunk prompts are <= ~1,500 budget tokens plus the chat frame
# (ProX chunk budget), and programs are short; longer examples are skipped, not truncated
# (a cut program teaches the model to stop early).
DEFAULT_MAX_LENGTH = 2560


def prompt_token_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Same rule as `TransformersGenerator._prompt_ids` for a prompt given as text."""
    bos = getattr(tokenizer, "bos_token", None)
    add_special = not (bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def completion_token_ids(tokenizer: Any, completion: str) -> list[int]:
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token: the model could never learn where a program ends")
    return ids + [int(eos)]


@dataclass
class TokenizedSFT:
    rows: list[dict[str, list[int]]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def tokenize_records(records: Iterable[SFTRecord], tokenizer: Any, *, max_length: int = DEFAULT_MAX_LENGTH) -> TokenizedSFT:
    """Tokenize records into ``{"input_ids", "completion_mask"}`` rows; over-long ones are
    skipped and counted (``skipped_too_long``), empty completions too."""
    out = TokenizedSFT()
    for record in records:
        out.counts["records"] += 1
        if not record.completion.strip():
            out.counts["skipped_empty_completion"] += 1
            continue
        # a prompt the renderer cut is trained on its recorded ids: what the refiner will see
        p = list(record.prompt_token_ids) if record.prompt_token_ids else prompt_token_ids(tokenizer, record.prompt)
        c = completion_token_ids(tokenizer, record.completion)
        if len(p) + len(c) > max_length:
            out.counts["skipped_too_long"] += 1
            continue
        out.rows.append({"input_ids": p + c, "completion_mask": [0] * len(p) + [1] * len(c)})
        out.counts[f"stage.{record.stage}"] += 1
        out.prompt_tokens += len(p)
        out.completion_tokens += len(c)
    out.counts["examples"] = len(out.rows)
    return out


def to_dataset(tokenized: TokenizedSFT):
    from datasets import Dataset

    if not tokenized.rows:
        raise ValueError(f"no training examples left ({dict(tokenized.counts)})")
    return Dataset.from_list(tokenized.rows)
