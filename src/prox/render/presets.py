"""The chat formats a prompt is wrapped in: the presets ``prox``, ``model`` and ``plain``.

``prox``   the Llama-2 chat format of the released ProX refining models (`llama2_chat`).
``model``  the tokenizer's own ``chat_template``, rendered with jinja2 the way Hugging Face
           ``apply_chat_template`` does (`ChatTemplate`).
``plain``  no chat template: the prompt is the user message alone.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

PRESETS = ("prox", "model", "plain")
# ProX apply_doc_refining.py / apply_chunk_refining.py: the system message of both stages.
PROX_SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
# tokenizer_config.json fields a chat template may use
TEMPLATE_TOKENS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class RenderError(ValueError):
    """A tokenizer directory, preset or template that cannot be used (raised at construction)."""


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


def token_content(value: Any) -> str | None:
    """A special token of tokenizer_config.json: a string, or ``{"content": ...}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class ChatTemplate:
    """A tokenizer's ``chat_template`` (jinja2, sandboxed), rendered like ``apply_chat_template``."""

    def __init__(self, template: Any, config: dict) -> None:
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
        self._template = env.from_string(template)
        self._kwargs = self._token_kwargs(config)

    @staticmethod
    def _token_kwargs(config: dict) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for key in TEMPLATE_TOKENS:
            value = token_content(config.get(key))
            if value is not None:
                kwargs[key] = value
        extra = config.get("additional_special_tokens")
        if isinstance(extra, list):
            kwargs["additional_special_tokens"] = [t for t in map(token_content, extra) if t is not None]
        return kwargs

    def render(self, user: str, system: str | None) -> str:
        return self._template.render(messages=chat_messages(user, system), add_generation_prompt=True, **self._kwargs)
