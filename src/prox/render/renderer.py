"""`PromptRenderer`: the doc-stage and chunk-stage prompts (strings and token ids) for one tokenizer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer

from prox.program import STAGES
from prox.render.chunking import CHUNK_TOKEN_BUDGET, LINE_NUMBER_DIGITS, Chunk, chunks_of, numbered_lines, wrap_chunk
from prox.render.presets import PRESETS, PROX_SYSTEM_PROMPT, ChatTemplate, RenderError, llama2_chat, token_content
from prox.render.tokens import LlamaLayout, SlowLlama, load_tokenizer_dir

# ProX apply_doc_refining.py: apply_chat_template(..., truncation=True, max_length=2000).
DOC_PROMPT_MAX_IDS = 2000


@dataclass
class RenderedPrompt:
    """A prompt string and the ids the model receives (None when rendered without ids)."""

    text: str
    token_ids: list[int] | None
    truncated: bool = False  # token_ids were cut to the doc-prompt maximum


class PromptRenderer:
    """Renders doc-stage and chunk-stage prompts (strings and token ids) for one tokenizer.

    ``tokenizer`` is a directory with tokenizer.json (and optionally tokenizer_config.json,
    special_tokens_map.json, chat_template.jinja), a tokenizer.json path, or a loaded
    ``tokenizers.Tokenizer`` (then pass ``config`` for the model preset).
    """

    def __init__(
        self,
        tokenizer: str | Path | Tokenizer,
        preset: str = "prox",
        *,
        system_prompt: str | None = PROX_SYSTEM_PROMPT,
        chunk_budget: int = CHUNK_TOKEN_BUDGET,
        doc_max_ids: int | None = DOC_PROMPT_MAX_IDS,
        line_digits: int = LINE_NUMBER_DIGITS,
        chat_template: str | None = None,
        config: dict | None = None,
        with_ids: bool = True,
        fast_path: bool = True,
    ) -> None:
        if preset not in PRESETS:
            raise RenderError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if chunk_budget < 1:
            raise RenderError(f"chunk_budget must be >= 1, got {chunk_budget}")
        if doc_max_ids is not None and doc_max_ids < 1:
            raise RenderError(f"doc_max_ids must be >= 1 or None, got {doc_max_ids}")
        if isinstance(tokenizer, Tokenizer):
            self.tokenizer, self.config = tokenizer, dict(config or {})
        else:
            self.tokenizer, self.config = load_tokenizer_dir(tokenizer)
            self.config.update(config or {})
        self.preset = preset
        self.system_prompt = system_prompt
        self.chunk_budget = chunk_budget
        self.doc_max_ids = doc_max_ids
        self.line_digits = line_digits
        self.with_ids = with_ids
        self.bos_token = token_content(self.config.get("bos_token")) or "<s>"
        self._template = None
        if preset == "model":
            self._template = ChatTemplate(chat_template or self.config.get("chat_template"), self.config)
        # prox doc ids: the slow Llama tokenizer's ids; other tokenizers: add_special_tokens=False.
        self._slow = SlowLlama.detect(self.tokenizer) if preset == "prox" else None
        # Exact piecewise encoding for Llama-2 tokenizers (prox preset); None = whole prompts.
        self._layout = LlamaLayout.detect(self.tokenizer, self._slow) if fast_path else None
        self._chunk_frame: tuple[list[int], list[int]] | None = None

    # -- chat formatting ------------------------------------------------------------------------

    def format_chat(self, user: str) -> str:
        """The prompt string for one user message, in this renderer's preset."""
        if self.preset == "prox":
            return llama2_chat(user, self.system_prompt, self.bos_token)
        if self.preset == "plain":
            return user
        return self._template.render(user, self.system_prompt)

    # -- token ids ------------------------------------------------------------------------------

    def _doc_ids(self, prompts: list[str]) -> list[list[int]]:
        if self._layout is not None:
            return self._layout.doc_ids(prompts, self.doc_max_ids)
        if self._slow is not None:
            return self._slow.encode_batch(prompts)
        add_special = self.preset == "plain"
        return [e.ids for e in self.tokenizer.encode_batch(prompts, add_special_tokens=add_special)]

    def _chunk_ids(self, prompts: list[str]) -> list[list[int]]:
        # prox: vLLM 0.4.0 encodes the rendered string with the default add_special_tokens=True,
        # so the model sees two BOS (the template's "<s>" text and the tokenizer's own).
        add_special = self.preset in ("prox", "plain")
        return [e.ids for e in self.tokenizer.encode_batch(prompts, add_special_tokens=add_special)]

    def _frame_ids(self) -> tuple[list[int], list[int]] | None:
        """prox chunk prompts are ``head + "\\n" + numbered lines + "\\n" + tail``: the ids of
        head (BOS included) and tail, or None when the rendered frame has another shape."""
        if self._chunk_frame is None:
            marker = "\x00prox-chunk\x00"
            head, sep, tail = self.format_chat(wrap_chunk(marker)).partition(f"\n{marker}\n")
            if not sep or self._layout.has_added_token(head[len(self.bos_token):] + tail) \
                    or not head.startswith(self.bos_token) or "\n" in tail:
                self._chunk_frame = ([], [])  # not composable: encode whole prompts
            else:
                self._chunk_frame = (self._chunk_ids([head])[0], self._layout.base.encode(tail).ids)
        return self._chunk_frame if self._chunk_frame[0] else None

    def _compose_chunk_ids(self, text: str, line_ids: list[list[int]], chunks: list[Chunk]) -> list[list[int]] | None:
        """Chunk prompt ids from the lines' own ids (no second tokenization), or None."""
        frame = self._frame_ids() if self._layout is not None and self.preset == "prox" else None
        if frame is None or self._layout.has_added_token(text):
            return None
        context = [self._layout.in_context(ids) for ids in line_ids]
        if any(c is None for c in context):
            return None
        head, tail = frame
        out = []
        for c in chunks:
            ids = list(head)
            for k in range(c.first_line, c.last_line + 1):
                ids.append(self._layout.newline)
                ids.extend(context[k])
            ids.append(self._layout.newline)
            ids.extend(tail)
            out.append(ids)
        return out

    # -- public API -----------------------------------------------------------------------------

    def doc_prompt(self, text: str) -> RenderedPrompt:
        return self.doc_prompts([text])[0]

    def doc_prompts(self, texts: Sequence[str]) -> list[RenderedPrompt]:
        """Doc-stage prompts: the raw document as the user message, ids cut to ``doc_max_ids``."""
        strings = [self.format_chat(t) for t in texts]
        if not self.with_ids:
            return [RenderedPrompt(s, None) for s in strings]
        out = []
        for s, ids in zip(strings, self._doc_ids(strings)):
            cut = self.doc_max_ids is not None and len(ids) > self.doc_max_ids
            out.append(RenderedPrompt(s, ids[: self.doc_max_ids] if cut else ids, truncated=cut))
        return out

    def line_token_counts(self, text: str) -> list[int]:
        return self.line_token_counts_batch([text])[0]

    def line_token_counts_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Per numbered line, its token count with the tokenizer's default special tokens
        (the reference counts ``len(fast_tokenizer.encode("[007]line"))``, BOS included).
        "" has no lines (the reference skips empty documents)."""
        return [[len(ids) for ids in doc] for doc in self._line_ids_batch(texts)]

    def _line_ids_batch(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Per document, per numbered line, its stand-alone ids (one tokenizer batch)."""
        lines_per_doc = [numbered_lines(t, self.line_digits) if t else [] for t in texts]
        flat = [line for lines in lines_per_doc for line in lines]
        ids = [e.ids for e in self.tokenizer.encode_batch(flat)] if flat else []
        out, pos = [], 0
        for lines in lines_per_doc:
            out.append(ids[pos : pos + len(lines)])
            pos += len(lines)
        return out

    def chunks(self, text: str) -> list[Chunk]:
        return self.chunks_batch([text])[0]

    def chunks_batch(self, texts: Sequence[str]) -> list[list[Chunk]]:
        return self._chunks_from_line_ids(texts, self._line_ids_batch(texts))

    def _chunks_from_line_ids(self, texts: Sequence[str], line_ids: list[list[list[int]]]) -> list[list[Chunk]]:
        return [chunks_of(text, [len(x) for x in ids], self.chunk_budget, self.line_digits)
                for text, ids in zip(texts, line_ids)]

    def chunk_prompts(self, text: str) -> list[RenderedPrompt]:
        return self.chunk_prompts_batch([text])[0]

    def chunk_prompts_batch(self, texts: Sequence[str]) -> list[list[RenderedPrompt]]:
        """Chunk-stage prompts of many documents (one tokenizer batch for all of them)."""
        return [p for _, p in self.render_chunks_batch(texts)]

    def render_chunks_batch(self, texts: Sequence[str]) -> list[tuple[list[Chunk], list[RenderedPrompt]]]:
        """Chunks and their prompts, per document."""
        line_ids = self._line_ids_batch(texts)
        chunk_lists = self._chunks_from_line_ids(texts, line_ids)
        strings = [[self.format_chat(wrap_chunk(c.text)) for c in cl] for cl in chunk_lists]
        ids: list[list[list[int]] | None] = [None] * len(texts)
        if self.with_ids:
            for d, (text, cl) in enumerate(zip(texts, chunk_lists)):
                ids[d] = self._compose_chunk_ids(text, line_ids[d], cl)
            rest = [s for d, ss in enumerate(strings) if ids[d] is None for s in ss]
            encoded = iter(self._chunk_ids(rest) if rest else [])
            for d, ss in enumerate(strings):
                if ids[d] is None:
                    ids[d] = [next(encoded) for _ in ss]
        return [
            (cl, [RenderedPrompt(s, i) for s, i in zip(ss, ids[d] or [None] * len(ss))])
            for d, (cl, ss) in enumerate(zip(chunk_lists, strings))
        ]

    def render(self, texts: Sequence[str], stage: str) -> list[list[RenderedPrompt]]:
        """Per document, its prompts for ``stage`` ("doc": exactly one; "chunk": one per chunk)."""
        if stage == "doc":
            return [[p] for p in self.doc_prompts(texts)]
        if stage == "chunk":
            return self.chunk_prompts_batch(texts)
        raise RenderError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
