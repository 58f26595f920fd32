"""The LM refiner: a `PromptRenderer` plus a `Generator` per stage.

``doc_programs`` renders one doc prompt per document and generates; ``chunk_programs``
renders every chunk prompt of every document, generates them in one batch and regroups
them per document. Either stage may be absent (no ``doc_model`` / ``chunk_model``); asking
an absent stage raises `StageNotConfigured`.

Factories (the registry's ``transformers``, ``vllm``, ``openai``) take ``(arg, **options)``:

    transformers[:MODEL]  model=, doc_model=, chunk_model= (dirs or .gguf files),
                          tokenizer=, preset=, device=, dtype=, batch_size=, constrained=
    vllm[:MODEL]          same model options, plus any vllm.LLM option
                          (tensor_parallel_size=, gpu_memory_utilization=, max_model_len=, ...)
    openai[:URL]          base_url=, model= / doc_model= / chunk_model= (served names),
                          tokenizer= (needed for chunking), api= (completions | chat),
                          constraint_style= (gbnf | structured_outputs | guided_regex | regex),
                          concurrency=, max_retries=, cache_dir=, api_key=
Common: doc_max_new_tokens=, chunk_max_new_tokens=, chunk_budget=, system_prompt=,
grammar_max_ops= / grammar_max_chars= / grammar_max_digits=.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from prox.generate.base import GenerationStats, Generator
from prox.program import STAGES
from prox.refiners.options import given, option_names, parse_options

# ProX apply_chunk_refining.py: SamplingParams(temperature=0, max_tokens=256).
CHUNK_MAX_NEW_TOKENS = 256
# ProX apply_doc_refining.py uses max_tokens=2000, but a doc program is `keep_doc()` or
# `drop_doc()` (< 10 tokens); 64 bounds the cost of a model that rambles.
DOC_MAX_NEW_TOKENS = 64


class StageNotConfigured(RuntimeError):
    """This refiner has no model for the requested stage."""


class LMRefiner:
    """Renders prompts and generates programs for the stages it has a generator for."""

    def __init__(
        self,
        *,
        doc_generator: Generator | None = None,
        chunk_generator: Generator | None = None,
        doc_renderer: Any = None,
        chunk_renderer: Any = None,
        doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS,
        chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS,
        name: str = "lm",
    ) -> None:
        if doc_generator is None and chunk_generator is None:
            raise ValueError("an LM refiner needs a doc model, a chunk model, or both")
        if doc_generator is not None and doc_renderer is None:
            raise ValueError("doc_generator given without doc_renderer")
        if chunk_generator is not None and chunk_renderer is None:
            raise ValueError("chunk_generator given without chunk_renderer")
        self.doc_generator, self.chunk_generator = doc_generator, chunk_generator
        self.doc_renderer, self.chunk_renderer = doc_renderer, chunk_renderer
        self.doc_max_new_tokens, self.chunk_max_new_tokens = doc_max_new_tokens, chunk_max_new_tokens
        self.name = name

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s for s, g in (("doc", self.doc_generator), ("chunk", self.chunk_generator)) if g is not None)

    def doc_programs(self, texts: Sequence[str]) -> list[str]:
        if self.doc_generator is None:
            raise StageNotConfigured(f"refiner {self.name!r} has no doc model (pass doc_model=... or model=...)")
        if not texts:
            return []
        prompts = self.doc_renderer.doc_prompts(list(texts))
        return self.doc_generator.generate(prompts, max_new_tokens=self.doc_max_new_tokens)

    def chunk_programs(self, texts: Sequence[str]) -> list[list[str]]:
        if self.chunk_generator is None:
            raise StageNotConfigured(f"refiner {self.name!r} has no chunk model (pass chunk_model=... or model=...)")
        per_doc = self.chunk_renderer.chunk_prompts_batch(list(texts)) if texts else []
        flat = [p for prompts in per_doc for p in prompts]
        outputs = self.chunk_generator.generate(flat, max_new_tokens=self.chunk_max_new_tokens) if flat else []
        grouped, pos = [], 0
        for prompts in per_doc:
            grouped.append(list(outputs[pos:pos + len(prompts)]))
            pos += len(prompts)
        return grouped

    def stats(self) -> dict[str, dict[str, Any]]:
        """Token accounting per stage (see `GenerationStats`)."""
        out = {}
        for stage, generator in (("doc", self.doc_generator), ("chunk", self.chunk_generator)):
            stats = getattr(generator, "stats", None)
            if isinstance(stats, GenerationStats):
                out[stage] = stats.as_dict()
        return out


# -- option handling ---------------------------------------------------------------------

_RENDER_OPTIONS = ("preset", "system_prompt", "chunk_budget", "doc_max_ids", "line_digits", "chat_template")


@dataclass(frozen=True)
class LMOptions:
    """Options every LM refiner has (`prox refine -O KEY=VALUE`, or keyword arguments)."""

    model: Any = None  # both stages (a path, a GGUF file, a served name, or a loaded model)
    doc_model: Any = None
    chunk_model: Any = None
    tokenizer: Any = None  # tokenizer directory for rendering and chunking (default: the model's)
    doc_tokenizer: Any = None
    chunk_tokenizer: Any = None
    constrained: bool = False  # grammar-constrained decoding: every output parses
    batch_size: int | None = None  # prompts per generate call
    doc_max_new_tokens: int = DOC_MAX_NEW_TOKENS
    chunk_max_new_tokens: int = CHUNK_MAX_NEW_TOKENS
    grammar_max_ops: int | None = None
    grammar_max_chars: int | None = None
    grammar_max_digits: int | None = None
    # prompt rendering (`prox.render.PromptRenderer`)
    preset: str | None = None
    system_prompt: str | None = None
    chunk_budget: int | None = None
    doc_max_ids: int | None = None
    line_digits: int | None = None
    chat_template: str | None = None


@dataclass(frozen=True)
class TransformersOptions(LMOptions):
    device: Any = None
    dtype: Any = None
    trust_remote_code: bool = False
    hf_tokenizer: Any = None  # with a loaded model object: its transformers tokenizer


@dataclass(frozen=True)
class VLLMOptions(LMOptions):
    """Plus the `vllm.LLM` options prox passes through (any other via ``llm_options``)."""

    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    enforce_eager: bool | None = None
    max_num_seqs: int | None = None
    seed: int | None = None
    quantization: str | None = None
    trust_remote_code: bool | None = None
    download_dir: str | None = None
    swap_space: float | None = None
    enable_prefix_caching: bool | None = None
    llm_options: Any = None  # dict of further vllm.LLM keyword arguments


@dataclass(frozen=True)
class OpenAIOptions(LMOptions):
    base_url: str | None = None
    api: str = "completions"  # completions | chat
    prompt_format: str = "auto"
    constraint_style: str = "gbnf"  # gbnf | structured_outputs | guided_regex | regex
    concurrency: int | None = None
    max_retries: int | None = None
    backoff_s: float | None = None
    timeout_s: float | None = None
    cache_dir: str | None = None
    api_key: str | None = None
    params: Any = None  # dict of extra request parameters


def _stage_models(arg: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """``{"doc": ..., "chunk": ...}``: each stage's model, falling back to ``model`` / the spec arg."""
    shared = options.get("model") or arg
    models = {stage: options.get(f"{stage}_model") or shared for stage in STAGES}
    if not any(models.values()):
        raise ValueError("no model given: pass model=PATH (both stages), doc_model= and/or chunk_model=")
    return models


def _grammar_bounds(options: dict[str, Any]) -> dict[str, int]:
    return {key: int(options[f"grammar_{key}"]) for key in ("max_ops", "max_chars", "max_digits")
            if options.get(f"grammar_{key}") is not None}


def renderer_tokenizer(path: Any) -> tuple[Any, dict[str, Any] | None]:
    """What `PromptRenderer` needs for a tokenizer: a directory as is; a GGUF file's own tokenizer
    (converted by transformers) or a loaded fast tokenizer, with its config (special tokens, chat template)."""
    if hasattr(path, "backend_tokenizer"):  # an already loaded transformers fast tokenizer
        tok = path
    else:
        path = Path(path)
        if not (path.is_file() and path.suffix == ".gguf"):
            if not path.exists():
                raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist (prox never downloads tokenizers)")
            return str(path), None
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
    config = {k: getattr(tok, k) for k in ("bos_token", "eos_token", "unk_token", "pad_token") if getattr(tok, k, None)}
    if getattr(tok, "chat_template", None):
        config["chat_template"] = tok.chat_template
    return tok.backend_tokenizer, config


# Written by `prox train lm` next to the weights (prox.sft.train.SUMMARY_FILE is this name).
TRAINED_RENDER_FILE = "prox_sft.json"


def trained_render_options(model: Any) -> dict[str, Any]:
    """How `prox train lm` rendered the training prompts of ``model`` (preset, chunk budget).

    A fine-tuned refiner must see prompts in the format it was trained on, so these are the
    defaults for that model's stage; options given explicitly still win. Empty when the model
    is not a directory with one recorded format.
    """
    if not isinstance(model, (str, Path)):
        return {}
    path = Path(model) / TRAINED_RENDER_FILE
    if not path.is_file():
        return {}
    try:
        render = json.loads(path.read_text(encoding="utf-8")).get("render") or []
    except (OSError, ValueError, AttributeError):
        return {}
    if len(render) != 1 or not isinstance(render[0], dict):
        return {}
    return {key: value for key, value in render[0].items() if key in _RENDER_OPTIONS and value is not None}


def _make_renderer(tokenizer: Any, options: dict[str, Any], *, with_ids: bool = True) -> Any:
    from prox.render import PromptRenderer

    if isinstance(tokenizer, (str, Path)) or hasattr(tokenizer, "backend_tokenizer"):
        source, config = renderer_tokenizer(tokenizer)
    else:  # a tokenizers.Tokenizer
        source, config = tokenizer, None
    kwargs = {k: options[k] for k in _RENDER_OPTIONS if k in options}
    kwargs.setdefault("preset", "prox")
    if "chunk_budget" in kwargs:
        kwargs["chunk_budget"] = int(kwargs["chunk_budget"])
    return PromptRenderer(source, config=config, with_ids=with_ids, **kwargs)


def _build(
    arg: str | None,
    options: dict[str, Any],
    *,
    name: str,
    make_generator: Callable[[str, Any, dict[str, Any]], Generator],
    default_tokenizer: Callable[[Any], Any],
    with_ids: bool = True,
) -> LMRefiner:
    models = _stage_models(arg, options)
    generators: dict[str, Generator | None] = {}
    renderers: dict[str, Any] = {}
    cache: dict[Any, Any] = {}  # one generator per (model, stage); one renderer per tokenizer
    for stage in STAGES:
        model = models[stage]
        if not model:
            generators[stage] = None
            continue
        generators[stage] = make_generator(stage, model, options)
        tokenizer = options.get(f"{stage}_tokenizer") or options.get("tokenizer") or default_tokenizer(model)
        if tokenizer is None:
            raise ValueError(f"the {name} refiner needs tokenizer=DIR (for rendering and chunking)")
        render_options = {**trained_render_options(model), **options}
        key = ("renderer", str(tokenizer) if isinstance(tokenizer, (str, Path)) else id(tokenizer),
               json.dumps({k: render_options.get(k) for k in _RENDER_OPTIONS}, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = _make_renderer(tokenizer, render_options, with_ids=with_ids)
        renderers[stage] = cache[key]
    return LMRefiner(
        doc_generator=generators["doc"], chunk_generator=generators["chunk"],
        doc_renderer=renderers.get("doc"), chunk_renderer=renderers.get("chunk"),
        doc_max_new_tokens=int(options.get("doc_max_new_tokens", DOC_MAX_NEW_TOKENS)),
        chunk_max_new_tokens=int(options.get("chunk_max_new_tokens", CHUNK_MAX_NEW_TOKENS)),
        name=name,
    )


# -- factories -----------------------------------------------------------------------------

def make_transformers_refiner(arg: str | None = None, **options: Any) -> LMRefiner:
    """Local transformers models (directories or GGUF files), CPU or GPU; options `TransformersOptions`."""
    from prox.generate.transformers_backend import DEFAULT_BATCH_SIZE, TransformersGenerator, load_model

    options = given(parse_options(TransformersOptions, options, refiner="transformers"), options)

    loaded: dict[str, tuple[Any, Any]] = {}

    def make_generator(stage: str, model: Any, opts: dict[str, Any]) -> Generator:
        if isinstance(model, (str, Path)):
            if str(model) not in loaded:
                loaded[str(model)] = load_model(model, device=opts.get("device"), dtype=opts.get("dtype"),
                                                trust_remote_code=bool(opts.get("trust_remote_code", False)))
            model_obj, tokenizer = loaded[str(model)]
        else:  # an already loaded model object (tests, notebooks): tokenizer= must be the HF tokenizer
            model_obj, tokenizer = model, opts.get("hf_tokenizer")
        return TransformersGenerator(
            model_obj, tokenizer, stage=stage, constrained=bool(opts.get("constrained", False)),
            batch_size=int(opts.get("batch_size") or DEFAULT_BATCH_SIZE), grammar_bounds=_grammar_bounds(opts),
        )

    def default_tokenizer(model: Any) -> Any:
        if isinstance(model, (str, Path)) and str(model).endswith(".gguf"):
            return loaded[str(model)][1]  # reuse the tokenizer transformers converted from the GGUF
        return model if isinstance(model, (str, Path)) else None

    return _build(arg, options, name="transformers", make_generator=make_generator, default_tokenizer=default_tokenizer)


# the VLLMOptions that go to vllm.LLM as they are
_VLLM_OWN = tuple(n for n in option_names(VLLMOptions) if n not in option_names(LMOptions))


def make_vllm_refiner(arg: str | None = None, **options: Any) -> LMRefiner:
    """Offline vLLM engines on GPUs (one engine per distinct model, shared by both stages); options `VLLMOptions`."""
    from prox.generate.vllm_backend import VLLMGenerator, build_llm

    options = given(parse_options(VLLMOptions, options, refiner="vllm"), options)
    engines: dict[str, Any] = {}

    def make_generator(stage: str, model: Any, opts: dict[str, Any]) -> Generator:
        if str(model) not in engines:
            llm_options = {k: opts[k] for k in _VLLM_OWN if k in opts and k != "llm_options"}
            llm_options.update(opts.get("llm_options") or {})
            engines[str(model)] = build_llm(model, tokenizer=opts.get(f"{stage}_tokenizer") or opts.get("tokenizer"),
                                            **llm_options)
        return VLLMGenerator(llm=engines[str(model)], stage=stage, constrained=bool(opts.get("constrained", False)),
                             grammar_bounds=_grammar_bounds(opts))

    return _build(arg, options, name="vllm", make_generator=make_generator, default_tokenizer=lambda model: model)


def make_openai_refiner(arg: str | None = None, **options: Any) -> LMRefiner:
    """Any OpenAI-compatible endpoint. ``arg`` is the base URL (or pass ``base_url=``); options `OpenAIOptions`."""
    from prox.generate.openai_backend import OpenAIClient, OpenAIGenerator

    options = given(parse_options(OpenAIOptions, options, refiner="openai"), options)

    base_url = options.pop("base_url", None) or arg
    if not base_url:
        raise ValueError("the openai refiner needs base_url= (e.g. http://127.0.0.1:8000/v1)")
    api = options.get("api", "completions")
    client_options = {k: options[k] for k in ("concurrency", "max_retries", "backoff_s", "timeout_s", "cache_dir", "api_key")
                      if options.get(k) is not None}
    for key in ("concurrency", "max_retries"):
        if key in client_options:
            client_options[key] = int(client_options[key])
    clients: dict[str, OpenAIClient] = {}
    # The model names are served names here; the default (one served model) is the server's own.
    models = {stage: options.get(f"{stage}_model") or options.get("model") for stage in STAGES}
    if not any(models.values()):
        models = {stage: "default" for stage in STAGES}
    if api == "chat":
        options.setdefault("preset", "plain")  # the server applies the chat template
    system_prompt = options.get("system_prompt")
    if api == "chat" and system_prompt is None:
        from prox.render import PROX_SYSTEM_PROMPT

        system_prompt = PROX_SYSTEM_PROMPT

    def make_generator(stage: str, model: Any, opts: dict[str, Any]) -> Generator:
        if model not in clients:
            clients[model] = OpenAIClient(base_url, model=None if model == "default" else model, **client_options)
        return OpenAIGenerator(
            clients[model], api=api, prompt_format=opts.get("prompt_format", "auto"), stage=stage,
            constrained=bool(opts.get("constrained", False)), constraint_style=opts.get("constraint_style", "gbnf"),
            system_prompt=system_prompt if api == "chat" else None, params=opts.get("params"),
            grammar_bounds=_grammar_bounds(opts),
        )

    options = {**options, **{f"{s}_model": m for s, m in models.items() if m}}
    options.pop("model", None)
    return _build(None, options, name="openai", make_generator=make_generator,
                  default_tokenizer=lambda model: None, with_ids=api != "chat")


# -- stages a factory's refiner will have, known without loading a model -------------------
# (`prox.refiners.refiner_stages` reads a factory's ``stages`` attribute; `prox refine` checks
# the requested --stages against it before starting.)

def _local_stages(arg: str | None = None, **options: Any) -> tuple[str, ...]:
    models = _stage_models(arg, options)
    return tuple(stage for stage in STAGES if models[stage])


def _openai_stages(arg: str | None = None, **options: Any) -> tuple[str, ...]:
    named = tuple(stage for stage in STAGES if options.get(f"{stage}_model") or options.get("model"))
    return named or STAGES  # no model name: the server's one model serves both stages


make_transformers_refiner.stages = _local_stages  # type: ignore[attr-defined]
make_vllm_refiner.stages = _local_stages  # type: ignore[attr-defined]
make_openai_refiner.stages = _openai_stages  # type: ignore[attr-defined]
make_transformers_refiner.options = TransformersOptions  # type: ignore[attr-defined]
make_vllm_refiner.options = VLLMOptions  # type: ignore[attr-defined]
make_openai_refiner.options = OpenAIOptions  # type: ignore[attr-defined]
