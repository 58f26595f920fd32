"""Prompt rendering for both ProX stages: numbered lines, token-budget chunks, chat formats.

Pure functions of (text, tokenizer, options); only the ``tokenizers`` and ``jinja2`` packages are
needed (no torch, no transformers, no sentencepiece).

Presets
-------
``prox``   reproduces the inputs of the released ProX refining models byte for byte and id for id
           (Llama-2 chat format, the reference's double BOS on chunk prompts, the slow-tokenizer ids
           of the doc prompt cut at 2,000 ids). Checked on every record of the reference vectors.
``model``  the tokenizer's own ``chat_template`` (tokenizer_config.json or chat_template.jinja),
           rendered with jinja2 the way Hugging Face ``apply_chat_template`` does; ids are the
           rendered string encoded with ``add_special_tokens=False`` (what HF does with
           ``tokenize=True``).
``plain``  no chat template: the prompt is the user message alone (the document, or the
           ``[doc]`` block); ids use the tokenizer's default special tokens (BOS for Llama).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from tokenizers import Tokenizer, normalizers

# ProX apply_doc_refining.py / apply_chunk_refining.py: the system message of both stages.
PROX_SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
# ProX apply_chunk_refining.py: trunc_text(text, tokenizer, max_token=1500, ...).
CHUNK_TOKEN_BUDGET = 1500
# ProX apply_chunk_refining.py: trunc_text(..., max_digits=3) -> "[000]" (a minimum width).
LINE_NUMBER_DIGITS = 3
# ProX apply_doc_refining.py: apply_chat_template(..., truncation=True, max_length=2000).
DOC_PROMPT_MAX_IDS = 2000
# ProX apply_chunk_refining.py: the user message wraps the numbered chunk in these markers.
DOC_OPEN, DOC_CLOSE = "[doc]", "[/doc]"
# Doc prompts longer than this many characters per allowed id are encoded head first (speed
# only: Llama-2 averages ~4 characters per id on web text; the ids are exact either way).
DOC_HEAD_CHARS_PER_ID = 8

PRESETS = ("prox", "model", "plain")
STAGES = ("doc", "chunk")

_SPIECE_UNDERLINE = "\u2581"


@dataclass
class Chunk:
    """A run of whole lines of one document, numbered across the whole document."""

    first_line: int  # 0-based index of the first line (lines = text.split("\n"))
    last_line: int  # 0-based, inclusive
    text: str  # the numbered lines, joined with "\n" (the reference `trunc_text` element)
    budget_tokens: int  # sum of the per-line token counts (what the budget was checked against)


@dataclass
class RenderedPrompt:
    """A prompt string and the ids the model receives (None when rendered without ids)."""

    text: str
    token_ids: list[int] | None
    truncated: bool = False  # token_ids were cut to the doc-prompt maximum


class RenderError(ValueError):
    """A tokenizer directory or template that cannot be used (raised at construction)."""


# ---------------------------------------------------------------------------------------------
# Pure helpers


def number_line(index: int, line: str, digits: int = LINE_NUMBER_DIGITS) -> str:
    """``[007]line``: the reference's zero-padded, minimum-width line prefix."""
    return f"[{index:0{digits}d}]{line}"


def numbered_lines(text: str, digits: int = LINE_NUMBER_DIGITS) -> list[str]:
    """Every line of ``text`` (split on "\\n" only, as the reference does), numbered from 0."""
    return [number_line(i, line, digits) for i, line in enumerate(text.split("\n"))]


def greedy_chunks(counts: Sequence[int], budget: int) -> list[tuple[int, int, int]]:
    """Greedy line-granular chunking: ``(first_line, last_line, budget_tokens)`` per chunk.

    A line joins the current chunk while the running total stays within ``budget``; otherwise
    the current chunk is closed and the line starts the next one. A line that alone exceeds the
    budget becomes a chunk of its own (the reference sends it over budget rather than cut it).
    """
    out: list[tuple[int, int, int]] = []
    start, total = -1, 0
    for i, count in enumerate(counts):
        if start >= 0 and total + count <= budget:
            total += count
            continue
        if start < 0 and count <= budget:
            start, total = i, count
            continue
        if start >= 0:
            out.append((start, i - 1, total))
        if count > budget:
            out.append((i, i, count))
            start, total = -1, 0
        else:
            start, total = i, count
    if start >= 0:
        out.append((start, len(counts) - 1, total))
    return out


def wrap_chunk(chunk_text: str) -> str:
    """The chunk-stage user message: ``[doc]\\n<numbered lines>\\n[/doc]``."""
    return f"{DOC_OPEN}\n{chunk_text}\n{DOC_CLOSE}"


def llama2_chat(user: str, system: str | None = PROX_SYSTEM_PROMPT, bos: str = "<s>") -> str:
    """One system + user turn in the Llama-2 chat format, with the generation prompt.

    Same output as the Llama-2 default template of transformers 4.39 (which ProX used, since
    its tokenizer_config.json has no chat_template): the system block is glued to the first user
    message and the whole content is ``str.strip()``-ed (any Unicode whitespace).
    """
    content = user if system is None else f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
    return f"{bos}[INST] {content.strip()} [/INST]"


def chat_messages(user: str, system: str | None) -> list[dict[str, str]]:
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages.append({"role": "user", "content": user})
    return messages


# ---------------------------------------------------------------------------------------------
# Tokenizer directory loading


def _token_content(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else {}


def load_tokenizer_dir(path: str | Path) -> tuple[Tokenizer, dict]:
    """``tokenizer.json`` plus the config (tokenizer_config.json over special_tokens_map.json)."""
    root = Path(path)
    tok_file = root / "tokenizer.json" if root.is_dir() else root
    if not tok_file.is_file():
        raise RenderError(f"no tokenizer.json in {root} (a Hugging Face fast-tokenizer file is needed)")
    tokenizer = Tokenizer.from_file(str(tok_file))
    config: dict = {}
    if root.is_dir():
        config.update(_read_json(root / "special_tokens_map.json"))
        config.update(_read_json(root / "tokenizer_config.json"))
        template_file = root / "chat_template.jinja"
        if "chat_template" not in config and template_file.is_file():
            config["chat_template"] = template_file.read_text(encoding="utf-8")
    return tokenizer, config


def _slow_llama_tokenizer(tokenizer: Tokenizer) -> Tokenizer | None:
    """A copy of a Llama fast tokenizer that encodes like the slow ``LlamaTokenizer(legacy=False)``.

    The fast tokenizer.json prepends "▁" to every text segment, including segments after a
    special token; the slow one (which ProX used for doc prompts) prepends it only once, to the
    start of the whole text. Returns None when the tokenizer is not of that Llama form.
    """
    spec = json.loads(tokenizer.to_str()).get("normalizer") or {}
    parts = spec.get("normalizers", []) if spec.get("type") == "Sequence" else []
    types = [(p.get("type"), p.get("prepend") or p.get("content")) for p in parts]
    if types != [("Prepend", _SPIECE_UNDERLINE), ("Replace", _SPIECE_UNDERLINE)]:
        return None
    if parts[1].get("pattern") != {"String": " "}:
        return None
    slow = Tokenizer.from_str(tokenizer.to_str())
    slow.normalizer = normalizers.Replace(" ", _SPIECE_UNDERLINE)
    slow.post_processor = None
    return slow


class _LlamaLayout:
    """Checked facts about a Llama-2 style tokenizer that let long prompts be encoded piecewise
    with exactly the ids of one whole-string encode:

    - no BPE merge and no vocabulary entry involves "\\n" (it is always the byte token
      <0x0A>), so every "\\n" splits the text into pieces that BPE encodes independently;
    - no merge involves an ASCII digit, so the "[" of a numbered line "[007]..." can only merge
      with a "▁" in front of it: the line's ids in context follow from its ids alone.

    ``detect`` returns None unless every fact holds; the renderer then encodes whole prompts.
    """

    def __init__(self, base: Tokenizer, lead: list[int], newline: int, bracket: int,
                 space_bracket: int, space: int, special: set[int], added: list[str]) -> None:
        self.base, self.lead, self.newline = base, lead, newline
        self.bracket, self.space_bracket, self.space = bracket, space_bracket, space
        self.special, self.added = special, added

    @classmethod
    def detect(cls, tokenizer: Tokenizer, base: Tokenizer | None) -> "_LlamaLayout | None":
        if base is None:
            return None
        spec = json.loads(tokenizer.to_str())
        model = spec.get("model") or {}
        if spec.get("pre_tokenizer") is not None or model.get("type") != "BPE" or not model.get("byte_fallback"):
            return None
        if any("\n" in tok for tok in model.get("vocab", {})):
            return None
        for merge in model.get("merges", []):
            parts = merge.split(" ") if isinstance(merge, str) else merge
            if any("\n" in part or part == "<0x0A>" or any(c in "0123456789" for c in part) for part in parts):
                return None
        added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
        if any("\n" in a for a in added):
            return None
        ids = {t: tokenizer.token_to_id(t) for t in ("<0x0A>", "[", _SPIECE_UNDERLINE + "[", "0", _SPIECE_UNDERLINE)}
        if None in ids.values():
            return None
        nl, br, sbr, zero = ids["<0x0A>"], ids["["], ids[_SPIECE_UNDERLINE + "["], ids["0"]
        fast = tokenizer.encode("[0").ids
        if (base.encode("\n").ids != [nl] or base.encode("[0").ids != [br, zero]
                or base.encode(_SPIECE_UNDERLINE + "[0").ids != [sbr, zero] or fast[-2:] != [sbr, zero]):
            return None
        special = {i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}
        return cls(base, fast[:-2], nl, br, sbr, ids[_SPIECE_UNDERLINE], special, added)

    def has_added_token(self, text: str) -> bool:
        return any(a in text for a in self.added)

    def in_context(self, line_ids: list[int]) -> list[int] | None:
        """Ids of a numbered line after a "\\n", from its stand-alone ids (lead + "▁[" ...)."""
        n = len(self.lead)
        if line_ids[:n] != self.lead or len(line_ids) <= n or line_ids[n] != self.space_bracket:
            return None
        return [self.bracket, *line_ids[n + 1 :]]

    def doc_ids(self, prompts: Sequence[str], max_ids: int | None) -> list[list[int]]:
        """Slow-tokenizer ids of each prompt. A long prompt is cut at a "\\n" into a head of
        about ``DOC_HEAD_CHARS_PER_ID * max_ids`` characters and the rest; the rest is encoded
        only when the head alone has no more than ``max_ids`` ids (the result is cut later)."""
        heads, rests = [], []
        for p in prompts:
            cut = p.rfind("\n", 0, DOC_HEAD_CHARS_PER_ID * max_ids) if max_ids and len(p) > DOC_HEAD_CHARS_PER_ID * max_ids else -1
            heads.append(p[:cut] if cut > 0 else p)
            rests.append(p[cut + 1 :] if cut > 0 else None)
        out = []
        encs = self.base.encode_batch([_SPIECE_UNDERLINE + h if h else h for h in heads], add_special_tokens=False)
        for enc in encs:
            ids = enc.ids
            # one "▁" before the whole text, dropped when a special token follows it
            if len(ids) > 1 and ids[0] == self.space and ids[1] in self.special:
                ids = ids[1:]
            out.append(ids)
        todo = [d for d, rest in enumerate(rests) if rest is not None and len(out[d]) <= max_ids]
        if todo:
            for d, enc in zip(todo, self.base.encode_batch([rests[d] for d in todo], add_special_tokens=False)):
                out[d] = [*out[d], self.newline, *enc.ids]
        return out


# ---------------------------------------------------------------------------------------------
# The renderer


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
        self.bos_token = _token_content(self.config.get("bos_token")) or "<s>"
        self._template = None
        if preset == "model":
            self._template = self._compile_template(chat_template or self.config.get("chat_template"))
        # prox doc ids: the slow Llama tokenizer's ids; other tokenizers: add_special_tokens=False.
        self._doc_tokenizer = _slow_llama_tokenizer(self.tokenizer) if preset == "prox" else None
        self._space_id = self.tokenizer.token_to_id(_SPIECE_UNDERLINE)
        self._special_ids = {
            i for i, tok in self.tokenizer.get_added_tokens_decoder().items() if tok.special
        }
        # Exact piecewise encoding for Llama-2 tokenizers (prox preset); None = whole prompts.
        self._layout = _LlamaLayout.detect(self.tokenizer, self._doc_tokenizer) if fast_path else None
        self._chunk_frame: tuple[list[int], list[int]] | None = None

    # -- chat formatting ------------------------------------------------------------------------

    def _compile_template(self, template: Any):
        if isinstance(template, list):  # HF allows a list of named templates
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        if not isinstance(template, str) or not template.strip():
            raise RenderError(
                "preset 'model' needs a chat_template (tokenizer_config.json, chat_template.jinja "
                "or chat_template=...); use preset 'prox' for Llama-2 or 'plain' for none"
            )
        from jinja2.exceptions import TemplateError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                              separators=separators, sort_keys=sort_keys)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return env.from_string(template)

    def _template_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
            value = _token_content(self.config.get(key))
            if value is not None:
                kwargs[key] = value
        extra = self.config.get("additional_special_tokens")
        if isinstance(extra, list):
            kwargs["additional_special_tokens"] = [t for t in map(_token_content, extra) if t is not None]
        return kwargs

    def format_chat(self, user: str) -> str:
        """The prompt string for one user message, in this renderer's preset."""
        if self.preset == "prox":
            return llama2_chat(user, self.system_prompt, self.bos_token)
        if self.preset == "plain":
            return user
        return self._template.render(
            messages=chat_messages(user, self.system_prompt),
            add_generation_prompt=True,
            **self._template_kwargs(),
        )

    # -- token ids ------------------------------------------------------------------------------

    def _doc_ids(self, prompts: list[str]) -> list[list[int]]:
        if self._layout is not None:
            return self._layout.doc_ids(prompts, self.doc_max_ids)
        if self._doc_tokenizer is not None:
            # Slow LlamaTokenizer(legacy=False): one "▁" before the whole text, dropped again
            # when the text starts with a special token.
            encs = self._doc_tokenizer.encode_batch([_SPIECE_UNDERLINE + p if p else p for p in prompts],
                                                    add_special_tokens=False)
            out = []
            for enc in encs:
                ids = enc.ids
                if len(ids) > 1 and ids[0] == self._space_id and ids[1] in self._special_ids:
                    ids = ids[1:]
                out.append(ids)
            return out
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
        out = []
        for text, ids in zip(texts, line_ids):
            lines = numbered_lines(text, self.line_digits) if text else []
            out.append([
                Chunk(a, b, "\n".join(lines[a : b + 1]), n)
                for a, b, n in greedy_chunks([len(x) for x in ids], self.chunk_budget)
            ])
        return out

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


__all__ = [
    "CHUNK_TOKEN_BUDGET",
    "Chunk",
    "DOC_PROMPT_MAX_IDS",
    "LINE_NUMBER_DIGITS",
    "PRESETS",
    "PROX_SYSTEM_PROMPT",
    "PromptRenderer",
    "RenderError",
    "RenderedPrompt",
    "chat_messages",
    "greedy_chunks",
    "llama2_chat",
    "load_tokenizer_dir",
    "number_line",
    "numbered_lines",
    "wrap_chunk",
]
