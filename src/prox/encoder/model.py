"""The sequence model over a page's line vectors, and its ``.npz`` persistence (no pickle).

One page = its non-blank lines in order (blank lines are never predicted; the main-content
extractor puts one between paragraphs). Each line is the concatenation of its base-encoder
vector (`prox.encoder.embed`) and the builtin's dense line features
(`prox.builtin.features.LINE_FEATURES`, standardised). Two projections and a bidirectional
GRU read the whole page, so a line's score sees where the body starts and ends and where
comment / spec / related blocks begin; a linear head gives P(noise) per line.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from prox.builtin.model import read_npz, write_npz

FORMAT_VERSION = 1
SHIPPED_MODEL = "encoder.npz"


def shipped_model_path() -> Path:
    return Path(str(resources.files("prox.encoder").joinpath("model", SHIPPED_MODEL)))


@dataclass(frozen=True)
class SeqConfig:
    emb_dim: int = 384  # width of the base encoder's line vectors (all-MiniLM-L6-v2)
    feat_dim: int = 124  # len(prox.builtin.features.LINE_FEATURES)
    proj: int = 64  # each input group is projected to this width before the GRU
    hidden: int = 64  # GRU units per direction
    layers: int = 2  # stacked BiGRU layers
    dropout: float = 0.2


def build_module(cfg: SeqConfig):
    """The torch module (imported lazily: torch is only needed by this refiner)."""
    import torch
    from torch import nn

    class PageTagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Linear(cfg.emb_dim, cfg.proj)
            self.feat = nn.Linear(cfg.feat_dim, cfg.proj)
            self.norm = nn.LayerNorm(2 * cfg.proj)
            self.drop = nn.Dropout(cfg.dropout)
            self.gru = nn.GRU(2 * cfg.proj, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                              bidirectional=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
            self.head = nn.Linear(2 * cfg.hidden + 2 * cfg.proj, 1)

        def forward(self, emb, feat, lengths):
            """``emb``: B x T x emb_dim, ``feat``: B x T x feat_dim, ``lengths``: B (CPU int64) -> logits B x T."""
            x = self.drop(torch.relu(self.norm(torch.cat([self.emb(emb), self.feat(feat)], dim=-1))))
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h, _ = self.gru(packed)
            h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
            return self.head(torch.cat([self.drop(h), x], dim=-1)).squeeze(-1)

    return PageTagger()


@dataclass
class EncoderModel:
    """A trained sequence model with its feature scaling and decision threshold."""

    cfg: SeqConfig
    state: dict[str, np.ndarray]  # the torch state dict as float32 arrays
    feat_mean: np.ndarray
    feat_scale: np.ndarray
    line_threshold: float  # a line is noise when P(noise) >= line_threshold
    meta: dict[str, Any] = field(default_factory=dict)
    # word-F1 rescue of pages the threshold would empty (`prox.builtin.predict.noisy_mask`); None: off
    rescue_margin: float | None = None
    _module: Any = field(default=None, init=False, repr=False, compare=False)
    _device_modules: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def module(self):
        if self._module is None:
            import torch

            m = build_module(self.cfg)
            m.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in self.state.items()})
            self._module = m.eval()
        return self._module

    def module_on(self, device: str = "cpu"):
        """`module` on ``device`` (a resolved torch device); the CPU one stays `module`.

        The GRU stays float32 on a GPU too: it is tiny (< 1 M parameters) next to the base
        encoder (little to gain from fp16), and float32 keeps the arithmetic it was trained in.
        """
        if device == "cpu":
            return self.module
        if device not in self._device_modules:
            import copy

            self._device_modules[device] = copy.deepcopy(self.module).to(device).eval()
        return self._device_modules[device]

    def line_probs(self, pages: list[tuple[np.ndarray, np.ndarray]], *, batch_pages: int | None = None,
                   device: str = "cpu") -> list[np.ndarray]:
        """P(noise) of every line of each page, from (line vectors, builtin features) per page.

        ``device``: cpu (default), cuda, cuda:N or auto (`prox.encoder.device`); the inputs go
        to the device, the probabilities come back as float64 numpy. ``batch_pages`` defaults to
        16 on the CPU and `prox.encoder.device.GPU_PAGE_BATCH` on a GPU.
        """
        import torch

        from prox.encoder.device import GPU_PAGE_BATCH, resolve_device

        device = resolve_device(device)
        module = self.module_on(device)
        batch_pages = batch_pages or (16 if device == "cpu" else GPU_PAGE_BATCH)
        out: list[np.ndarray] = [np.zeros(0)] * len(pages)
        order = sorted(range(len(pages)), key=lambda i: len(pages[i][0]))
        with torch.inference_mode():
            for s in range(0, len(order), batch_pages):
                idx = [i for i in order[s:s + batch_pages] if len(pages[i][0])]
                for i in order[s:s + batch_pages]:
                    if not len(pages[i][0]):
                        out[i] = np.zeros(0)
                if not idx:
                    continue
                emb, feat, lengths = pad_batch([pages[i] for i in idx], self.feat_mean, self.feat_scale)
                if device != "cpu":  # lengths stay on the CPU (pack_padded_sequence wants them there)
                    emb, feat = emb.to(device, non_blocking=True), feat.to(device, non_blocking=True)
                p = torch.sigmoid(module(emb, feat, lengths)).cpu().numpy().astype(np.float64)
                for r, i in enumerate(idx):
                    out[i] = p[r, :len(pages[i][0])]
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path / SHIPPED_MODEL
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta, format_version=FORMAT_VERSION, config=asdict(self.cfg),
                    line_threshold=self.line_threshold, rescue_margin=self.rescue_margin,
                    state_keys=sorted(self.state))
        arrays = {f"state.{k}": np.asarray(v, dtype=np.float32) for k, v in self.state.items()}
        arrays.update(feat_mean=self.feat_mean.astype(np.float32), feat_scale=self.feat_scale.astype(np.float32))
        write_npz(path, arrays, meta)  # byte-reproducible, like the builtin model file
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EncoderModel":
        path = Path(path) if path is not None else shipped_model_path()
        if path.is_dir():
            path = path / SHIPPED_MODEL
        z, meta = read_npz(path, "encoder", FORMAT_VERSION)
        state = {k: z[f"state.{k}"] for k in meta["state_keys"]}
        mean, scale = z["feat_mean"].astype(np.float64), z["feat_scale"].astype(np.float64)
        margin = meta.get("rescue_margin")
        return cls(SeqConfig(**meta["config"]), state, mean, scale, float(meta["line_threshold"]), meta,
                   rescue_margin=None if margin is None else float(margin))


def pad_batch(pages, feat_mean: np.ndarray, feat_scale: np.ndarray):
    """Padded torch tensors (emb, standardised feat, lengths) of a list of (emb, feat) pages."""
    import torch

    lengths = [len(e) for e, _ in pages]
    T = max(lengths)
    E = np.zeros((len(pages), T, pages[0][0].shape[1]), dtype=np.float32)
    X = np.zeros((len(pages), T, pages[0][1].shape[1]), dtype=np.float32)
    for r, (e, f) in enumerate(pages):
        E[r, :len(e)] = e
        X[r, :len(f)] = (f - feat_mean) / feat_scale
    return torch.from_numpy(E), torch.from_numpy(X), torch.tensor(lengths, dtype=torch.int64)
