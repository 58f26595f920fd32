"""Local generation with Hugging Face transformers: batched greedy decoding, CPU or GPU.

- Loads a model directory or a GGUF file (``model.gguf`` → ``from_pretrained(dir, gguf_file=...)``).
- Feeds the renderer's token ids when it has them (token-exact ProX prompts), else
  tokenizes the prompt text.
- Batches prompts sorted by length, pads on the left, decodes greedily (ProX: temperature 0).
- ``constrained=True`` masks the logits with a grammar matcher (llguidance) so the output
  is a program of `prox.generate.constrained`; a budget cut keeps the complete lines only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from prox.generate.base import BackendBase, Timer, check_max_new_tokens, prompt_ids, prompt_text

DEFAULT_BATCH_SIZE = 8


def load_model(
    path: str | Path,
    *,
    device: str | None = None,
    dtype: str | None = None,
    tokenizer: str | Path | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local model directory or a ``.gguf`` file. No hub access."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist (prox never downloads models)")
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    if path.is_file():
        if path.suffix != ".gguf":
            raise ValueError(f"model file {str(path)!r} is not a .gguf file; pass a model directory or a GGUF file")
        model_dir, kwargs["gguf_file"] = str(path.parent), path.name
    else:
        model_dir = str(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    import transformers

    # transformers >= 4.56 calls it `dtype`; older releases `torch_dtype`.
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kwargs["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = torch_dtype
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs).to(device)
    model.eval()
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    else:
        tok = AutoTokenizer.from_pretrained(model_dir, **{k: v for k, v in kwargs.items() if k not in ("dtype", "torch_dtype")})
    return model, tok


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """A Hugging Face tokenizer from a local directory. No hub access."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=trust_remote_code)


class TransformersGenerator(BackendBase):
    """Batched greedy generation with a loaded transformers causal LM.

    Args:
        model: a loaded ``PreTrainedModel`` or a path (model directory or ``.gguf`` file).
        tokenizer: the model's tokenizer (object or directory); defaults to the model's own.
        stage: "doc" or "chunk"; needed only with ``constrained=True``.
        constrained: mask logits with the program grammar of `stage` (needs ``llguidance``).
        batch_size: prompts per forward batch.
        grammar_bounds: ``max_ops`` / ``max_chars`` / ``max_digits`` for the grammar.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        stage: str | None = None,
        constrained: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        dtype: str | None = None,
        grammar_bounds: dict[str, int] | None = None,
    ) -> None:
        if isinstance(model, (str, Path)):
            model, loaded_tok = load_model(model, device=device, dtype=dtype,
                                           tokenizer=tokenizer if isinstance(tokenizer, (str, Path)) else None)
            tokenizer = loaded_tok if tokenizer is None or isinstance(tokenizer, (str, Path)) else tokenizer
        elif isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(tokenizer)
        if tokenizer is None:
            raise ValueError("a tokenizer is needed with a loaded model")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        super().__init__(stage=stage, constrained=constrained, grammar_bounds=grammar_bounds)
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_ids = self._eos_ids()
        self.pad_id = self._pad_id()
        self._lltokenizer = None
        self._grammar = None
        self._executor = None
        if constrained:
            self._setup_grammar()

    # -- token bookkeeping -------------------------------------------------------------
    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (gen_eos, getattr(self.model.config, "eos_token_id", None), self.tokenizer.eos_token_id):
            for i in value if isinstance(value, (list, tuple)) else [value]:
                if i is not None and i not in ids:
                    ids.append(int(i))
        return ids

    def _pad_id(self) -> int:
        # Pad token fallback: the tokenizer's pad, else EOS, else 0 (padding is masked anyway).
        if self.tokenizer.pad_token_id is not None:
            return int(self.tokenizer.pad_token_id)
        return self.eos_ids[0] if self.eos_ids else 0

    def _prompt_ids(self, prompt: Any) -> list[int]:
        ids = prompt_ids(prompt)
        if ids is not None:
            return list(ids)
        text = prompt_text(prompt)
        # A rendered chat prompt already holds its BOS text; do not add a second one.
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special)["input_ids"]

    # -- grammar -----------------------------------------------------------------------
    def _setup_grammar(self) -> None:
        try:
            import llguidance
            import llguidance.hf
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("constrained decoding with transformers needs llguidance: pip install 'prox[lm]'") from exc
        n_vocab = int(self.model.get_output_embeddings().weight.shape[0])
        self._lltokenizer = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=n_vocab, eos_token=self.eos_ids[0] if self.eos_ids else None)
        self._grammar = llguidance.LLMatcher.grammar_from_regex(self.program_regex())
        error = llguidance.LLMatcher.validate_grammar(self._grammar, self._lltokenizer)
        if error:
            raise ValueError(f"program grammar rejected by llguidance: {error}")

    def _logits_processor(self, batch: int, prompt_len: int) -> Any:
        import llguidance
        import llguidance.numpy as llnp
        import numpy as np
        import torch
        from transformers import LogitsProcessor

        if self._executor is None:
            self._executor = llguidance.LLExecutor()
        executor = self._executor
        matchers = [llguidance.LLMatcher(self._lltokenizer, self._grammar) for _ in range(batch)]
        done = [False] * batch  # the row emitted EOS; it now only receives padding
        eos_ids = self.eos_ids
        width = (self._lltokenizer.vocab_size + 31) // 32
        bitmask = np.full((batch, width), -1, dtype=np.int32)  # one bit per token, 1 = allowed
        eos_bits = np.zeros(width, dtype=np.uint32)
        for token in eos_ids:
            eos_bits[token // 32] |= np.uint32(1 << (token % 32))
        eos_only = eos_bits.view(np.int32)

        class GrammarMask(LogitsProcessor):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                if input_ids.shape[1] > prompt_len:
                    for row, token in enumerate(input_ids[:, -1].tolist()):
                        if done[row]:
                            continue
                        if token in eos_ids:
                            done[row] = True
                        elif not matchers[row].is_stopped():
                            matchers[row].consume_token(token)
                active = []
                for row, matcher in enumerate(matchers):
                    if done[row]:
                        bitmask[row] = -1
                    elif matcher.is_stopped() or matcher.is_error():
                        bitmask[row] = eos_only  # the program is complete (or the matcher gave up): end it
                    else:
                        active.append((matcher, row))
                if active:
                    llnp.fill_next_token_bitmask_par(executor, active, bitmask)
                vocab = scores.shape[-1]
                words = torch.from_numpy(bitmask).to(scores.device)
                shifts = torch.arange(32, device=scores.device, dtype=torch.int32)
                allowed = ((words.unsqueeze(-1) >> shifts) & 1).reshape(batch, -1).bool()
                if allowed.shape[1] < vocab:
                    allowed = torch.nn.functional.pad(allowed, (0, vocab - allowed.shape[1]))
                return scores.masked_fill(~allowed[:, :vocab], float("-inf"))

        return GrammarMask()

    # -- generation --------------------------------------------------------------------
    def generate(self, prompts: Sequence[Any], *, max_new_tokens: int) -> list[str]:
        """One greedy completion per prompt (special tokens removed), in prompt order."""
        check_max_new_tokens(max_new_tokens)
        encoded = [self._prompt_ids(p) for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"prompt {i} is empty after tokenization")
        outputs: list[str] = [""] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        with Timer(self.stats):
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                texts = self._generate_batch([encoded[i] for i in rows], max_new_tokens)
                for i, text in zip(rows, texts):
                    outputs[i] = text
        self.stats.prompts += len(encoded)
        return outputs

    def _generate_batch(self, batch: list[list[int]], max_new_tokens: int) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        width = max(len(ids) for ids in batch)
        device = self.model.device
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in batch], device=device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
        kwargs: dict[str, Any] = {}
        if self.constrained:
            kwargs["logits_processor"] = LogitsProcessorList([self._logits_processor(len(batch), width)])
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                num_beams=1,
                pad_token_id=self.pad_id,
                eos_token_id=self.eos_ids or None,
                **kwargs,
            )
        texts = []
        for ids, row in zip(batch, out[:, width:].tolist()):
            self.stats.prompt_tokens += len(ids)
            stop = next((k for k, tok in enumerate(row) if tok in self.eos_ids), None)
            generated = row if stop is None else row[:stop]
            self.stats.completion_tokens += len(generated) + (0 if stop is None else 1)
            truncated = stop is None and len(row) >= max_new_tokens
            self.stats.truncated += int(truncated)
            texts.append(self.tokenizer.decode(generated, skip_special_tokens=True))
        return self.complete(texts)
