"""Proxy pre-training: train one small Llama per refined corpus, same everything, score held-out loss.

Every variant gets the same architecture, the same token budget (a small corpus is repeated for
more epochs, a large one is cut), the same seed for initialisation and for batch order, and the
same eval set. The reported numbers are the mean next-token loss on the eval set (nats/token),
its perplexity, and bits per byte (tokenizer-independent).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

# prox defaults sized for a 2-core CPU; scale up with --train-tokens/--hidden/--layers on a GPU.
SEQ_LEN = 256
BATCH_SIZE = 16
TRAIN_TOKENS = 1_000_000  # 244 steps; the whole default compare of a 20 MB corpus takes ~7 min on 2 cores (docs)
HIDDEN = 128
LAYERS = 2
HEADS = 4
LR = 2e-3
WARMUP_FRACTION = 0.05
MAX_EVAL_TOKENS = 200_000


@dataclass
class ProxyConfig:
    seq_len: int = SEQ_LEN
    batch_size: int = BATCH_SIZE
    train_tokens: int = TRAIN_TOKENS
    hidden: int = HIDDEN
    layers: int = LAYERS
    heads: int = HEADS
    lr: float = LR
    seed: int = 0
    device: str = "auto"
    max_eval_tokens: int = MAX_EVAL_TOKENS

    @property
    def steps(self) -> int:
        return max(1, self.train_tokens // (self.seq_len * self.batch_size))


class ByteTokenizer:
    """UTF-8 bytes; id 256 ends a document. The fallback when no tokenizer path is given."""

    name = "bytes"
    eos_id = 256
    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class FileTokenizer:
    """A Hugging Face ``tokenizer.json`` (a file or a folder holding one, e.g. the Llama-2 tokenizer)."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        p = Path(path)
        f = p / "tokenizer.json" if p.is_dir() else p
        if not f.is_file():
            raise FileNotFoundError(f"no tokenizer.json at {path}")
        self._tok = Tokenizer.from_file(str(f))
        self.name = str(path)
        self.vocab_size = self._tok.get_vocab_size()
        eos = None
        for cand in ("</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>"):
            eos = self._tok.token_to_id(cand)
            if eos is not None:
                break
        self.eos_id = eos if eos is not None else self.vocab_size
        self.vocab_size = max(self.vocab_size, self.eos_id + 1)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]


def load_tokenizer(path: str | None):
    return ByteTokenizer() if not path or path == "bytes" else FileTokenizer(path)


def encode_stream(tokenizer, texts: Sequence[str]) -> list[int]:
    """All texts as one token stream, each followed by the end-of-document id."""
    out: list[int] = []
    batch = getattr(tokenizer, "encode_batch", None)
    encoded = batch(texts) if batch else [tokenizer.encode(t) for t in texts]
    for ids in encoded:
        out.extend(ids)
        out.append(tokenizer.eos_id)
    return out


class VocabMap:
    """Compact ids: only the token ids that occur in any variant's corpus or the eval set get an
    embedding row, so a 32k-vocabulary tokenizer trains fast on a CPU. Built once from the union,
    so every variant shares it."""

    def __init__(self, streams: Sequence[Sequence[int]]):
        used = sorted(set().union(*[set(s) for s in streams]))
        self.ids = {tok: i for i, tok in enumerate(used)}
        self.size = max(len(used), 1)

    def apply(self, stream: Sequence[int]) -> list[int]:
        return [self.ids[t] for t in stream]


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def build_model(vocab_size: int, cfg: ProxyConfig):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=cfg.hidden, intermediate_size=cfg.hidden * 4,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
        max_position_embeddings=cfg.seq_len, tie_word_embeddings=True, attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config)


def _blocks(stream: Sequence[int], seq_len: int):
    """Overlapping-by-one windows of seq_len+1 tokens: every token after the first is predicted once."""
    import torch

    t = torch.tensor(stream, dtype=torch.long)
    n = (len(t) - 1) // seq_len
    if n <= 0:
        return t.new_empty((0, seq_len + 1))
    return torch.stack([t[i * seq_len: i * seq_len + seq_len + 1] for i in range(n)])


@dataclass
class ProxyResult:
    train_tokens_available: int
    train_tokens_seen: int
    epochs: float
    steps: int
    eval_tokens: int
    eval_loss: float
    eval_ppl: float
    eval_bpb: float | None
    final_train_loss: float
    n_params: int
    device: str
    wall_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def train_and_eval(train_stream: Sequence[int], eval_stream: Sequence[int], vocab_size: int, cfg: ProxyConfig,
                   *, eval_bytes: int | None = None, log=None) -> ProxyResult:
    import torch
    import torch.nn.functional as F

    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    train_blocks = _blocks(train_stream, cfg.seq_len)
    eval_blocks = _blocks(eval_stream[: cfg.max_eval_tokens + 1], cfg.seq_len)
    if len(train_blocks) == 0:
        raise ValueError(f"training corpus has {len(train_stream)} tokens, fewer than one sequence of {cfg.seq_len + 1}")
    if len(eval_blocks) == 0:
        raise ValueError(f"eval set has {len(eval_stream)} tokens, fewer than one sequence of {cfg.seq_len + 1}")
    model = build_model(vocab_size, cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    steps = cfg.steps
    warmup = max(1, int(steps * WARMUP_FRACTION))

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    rng = random.Random(cfg.seed)  # batch order: same seed for every variant
    order: list[int] = []
    model.train()
    last = float("nan")
    for step in range(steps):
        idx = []
        while len(idx) < cfg.batch_size:
            if not order:
                order = list(range(len(train_blocks)))
                rng.shuffle(order)
            idx.append(order.pop())
        batch = train_blocks[idx].to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=batch[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        last = float(loss.item())
        if log and (step % max(1, steps // 5) == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps} loss {last:.3f}")
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(eval_blocks), cfg.batch_size):
            b = eval_blocks[i: i + cfg.batch_size].to(device)
            logits = model(input_ids=b[:, :-1]).logits
            total += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), b[:, 1:].reshape(-1),
                                           reduction="sum"))
            count += b[:, 1:].numel()
    eval_loss = total / count
    seen = steps * cfg.batch_size * cfg.seq_len
    bpb = None
    if eval_bytes:
        # eval_bytes covers the whole eval stream; scale to the predicted part of it.
        share = count / max(1, len(eval_stream) - 1)
        bpb = total / math.log(2) / (eval_bytes * share)
    return ProxyResult(
        train_tokens_available=len(train_stream), train_tokens_seen=seen,
        epochs=round(seen / max(1, len(train_blocks) * cfg.seq_len), 3), steps=steps, eval_tokens=count,
        eval_loss=round(eval_loss, 5), eval_ppl=round(math.exp(min(eval_loss, 50)), 3),
        eval_bpb=round(bpb, 5) if bpb is not None else None, final_train_loss=round(last, 5),
        n_params=n_params, device=device, wall_s=round(time.perf_counter() - t0, 2),
    )
