"""The ``device`` option of the encoder and cascade refiners: ``cpu`` (default), ``cuda``,
``cuda:N`` or ``auto`` (``cuda`` when ``torch.cuda.is_available()``, else ``cpu``).

`check_device` only checks the spelling (no torch import: option parsing runs before anything
is loaded); `resolve_device` turns ``auto`` into a concrete device and fails clearly when CUDA is
asked for but not there.
"""
from __future__ import annotations

import re

DEVICES = ("cpu", "cuda", "cuda:N", "auto")
_DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?")
# Lines per base-encoder forward pass and pages per sequence-model pass on a GPU (the CPU keeps
# prox.encoder.embed.BATCH and EncoderModel's 16: larger CPU batches only add padding).
GPU_LINE_BATCH = 1024
GPU_PAGE_BATCH = 64


def check_device(device: str) -> str:
    """``device`` when it is one of cpu, cuda, cuda:N, auto; ValueError otherwise."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device.strip()):
        raise ValueError(f"option device: expected one of {', '.join(DEVICES)}, got {device!r}")
    return device.strip()


def resolve_device(device: str = "cpu") -> str:
    """The concrete torch device of a checked ``device`` (``auto`` -> ``cuda`` or ``cpu``).

    Raises RuntimeError for ``cuda`` / ``cuda:N`` when torch has no such CUDA device.
    """
    device = check_device(device)
    if device == "cpu":
        return device
    import torch

    available = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise RuntimeError(f"option device={device!r}: torch sees no CUDA device (torch {torch.__version__}); "
                           "use device=cpu or device=auto")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"option device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")
