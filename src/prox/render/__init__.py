"""Prompt rendering for both ProX stages: numbered lines, token-budget chunks, chat formats.

Pure functions of (text, tokenizer, options); only the ``tokenizers`` and ``jinja2`` packages are
needed (no torch, no transformers, no sentencepiece).

- `chunking`: numbered lines and the greedy line-granular chunker (pure functions).
- `presets`: the chat formats (``prox`` / ``model`` / ``plain``).
- `tokens`: tokenizer loading, the slow Llama tokenizer of the ProX doc prompts, and the exact
  piecewise encoding that keeps long prompts fast.
- `renderer`: `PromptRenderer`, which puts them together.

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
from prox.render.chunking import (
    CHUNK_TOKEN_BUDGET,
    LINE_NUMBER_DIGITS,
    Chunk,
    greedy_chunks,
    number_line,
    numbered_lines,
    wrap_chunk,
)
from prox.render.presets import PRESETS, PROX_SYSTEM_PROMPT, RenderError, chat_messages, llama2_chat
from prox.render.renderer import DOC_PROMPT_MAX_IDS, PromptRenderer, RenderedPrompt
from prox.render.tokens import load_tokenizer_dir

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
