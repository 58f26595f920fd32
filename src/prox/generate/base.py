"""The one interface every LM backend implements: rendered prompts in, generated texts out.

A backend knows nothing about programs, chunks or documents. It turns a batch of
`RenderedPrompt` (text plus, when the renderer has them, the exact token ids) into one
completion text per prompt, greedily (ProX decodes with temperature 0). Optional
grammar constraints are given at construction as a `stage` ("doc" / "chunk"); see
`prox.generate.constrained`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from prox.generate import constrained as grammar
from prox.program import STAGES

if TYPE_CHECKING:  # the renderer is only a type here; backends accept any object with .text/.token_ids
    from prox.render import RenderedPrompt


@runtime_checkable
class Generator(Protocol):
    """Batched greedy generation. One output string per prompt, in prompt order."""

    def generate(self, prompts: Sequence["RenderedPrompt"], *, max_new_tokens: int) -> list[str]:
        ...


@dataclass
class GenerationStats:
    """Counted outcomes and token accounting of one backend, cumulative over calls."""

    prompts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cache_hits: int = 0           # answered from the on-disk cache (openai backend)
    requests: int = 0             # HTTP requests actually sent (openai backend)
    retries: int = 0              # retried requests (429 / 5xx / timeouts)
    truncated: int = 0            # stopped by max_new_tokens before end-of-sequence
    trimmed: int = 0              # constrained output cut back to its last complete program line
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens_per_second"] = round(self.tokens_per_second, 2)
        return out


class Timer:
    """`with Timer(stats): ...` adds the elapsed wall time to ``stats.seconds``."""

    def __init__(self, stats: GenerationStats) -> None:
        self.stats = stats

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stats.seconds += time.perf_counter() - self._start


def prompt_text(prompt: Any) -> str:
    """The prompt's text: a `RenderedPrompt` or a plain string."""
    return prompt if isinstance(prompt, str) else prompt.text


def prompt_ids(prompt: Any) -> list[int] | None:
    """The prompt's exact token ids when the renderer produced them, else None."""
    return None if isinstance(prompt, str) else getattr(prompt, "token_ids", None)


def check_stage(stage: str | None) -> str | None:
    if stage is not None and stage not in STAGES:
        raise ValueError(f"stage must be 'doc', 'chunk' or None, not {stage!r}")
    return stage


def check_max_new_tokens(max_new_tokens: int) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, not {max_new_tokens}")


class BackendBase:
    """What every backend shares around its engine: the grammar settings of constrained decoding,
    the `GenerationStats`, the argument checks and the trimming of cut-off constrained output.

    Args:
        stage: "doc" or "chunk"; needed only with ``constrained=True`` (it picks the grammar).
        constrained: constrain the output to the program grammar of `stage`.
        grammar_bounds: ``max_ops`` / ``max_chars`` / ``max_digits`` for the grammar.
    """

    def __init__(self, *, stage: str | None = None, constrained: bool = False,
                 grammar_bounds: dict[str, int] | None = None) -> None:
        self.stage = check_stage(stage)
        if constrained and stage is None:
            raise ValueError("constrained decoding needs the stage ('doc' or 'chunk') to pick the grammar")
        self.constrained = constrained
        self.grammar_bounds = dict(grammar_bounds or {})
        self.stats = GenerationStats()

    def program_regex(self) -> str:
        """The program grammar of this backend's stage as a regex (`prox.generate.constrained`)."""
        return grammar.program_regex(self.stage, **self.grammar_bounds)

    def complete(self, texts: list[str]) -> list[str]:
        """Constrained output cut by the token budget, back to its complete program lines
        (counted in ``stats.trimmed``); unconstrained output unchanged."""
        if not self.constrained:
            return texts
        kept = [grammar.complete_prefix(t, self.stage, **self.grammar_bounds) for t in texts]
        self.stats.trimmed += sum(k != t for k, t in zip(kept, texts))
        return kept
