"""The ``device`` option of the encoder and cascade refiners (`prox.encoder.device`): checked in
option parsing, ``auto`` resolves to cpu without CUDA, ``device="cpu"`` is the default bit for bit.
The CUDA test runs only where torch sees a GPU (tiny models built in the tests, no downloads)."""
from __future__ import annotations

import copy
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")

from prox.encoder.device import check_device, resolve_device  # noqa: E402
from prox.encoder.embed import BATCH, LineEncoder  # noqa: E402
from prox.encoder.train import build_pages  # noqa: E402
from prox.refiners import check_refiner_options, get_refiner  # noqa: E402
from tiny_encoder import WORDS, tiny_page  # noqa: E402

CUDA = torch.cuda.is_available()
MISSING_MODEL = "/nonexistent/encoder.npz"  # loading it would fail: an error about it means a model load started


def _lines() -> list[str]:
    return [" ".join(WORDS * 3), "the river", "", "the river", "Share on Facebook"] + [f"{w} {w}" for w in WORDS[:9]]


def _texts() -> list[str]:
    rng = random.Random(5)
    return [tiny_page(rng, rng.randint(2, 40))[0] for _ in range(6)] + ["", "Reply"]


def test_device_spellings():
    for ok in ("cpu", "cuda", "cuda:0", "cuda:3", "auto", " cpu "):
        assert check_device(ok) == ok.strip()
    for bad in ("gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "mps", "", None, 0):
        with pytest.raises(ValueError, match="option device: expected one of cpu, cuda, cuda:N, auto"):
            check_device(bad)


@pytest.mark.parametrize("spec", ["encoder", "cascade"])
def test_invalid_device_fails_in_option_parsing_before_any_load(spec):
    check_refiner_options(spec, device="cpu")
    check_refiner_options(spec, device="auto")
    check_refiner_options(spec, device="cuda:1")  # spelling only: whether it exists is known at build time
    with pytest.raises(ValueError, match="option device"):
        check_refiner_options(spec, device="gpu")
    with pytest.raises(ValueError, match="option device"):  # not the missing model file: nothing was loaded
        get_refiner(f"{spec}:{MISSING_MODEL}", device="tpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("spec", ["encoder", "cascade"])
def test_auto_is_cpu_and_cuda_fails_clearly_without_a_gpu(spec, tiny_trained, tiny_encoder):
    assert resolve_device("auto") == "cpu"
    _, path, _, _ = tiny_trained
    r = get_refiner(f"{spec}:{path}", encoder=tiny_encoder, device="auto")
    assert (r if spec == "encoder" else r.encoder).device == "cpu"
    for device in ("cuda", "cuda:0"):
        with pytest.raises(RuntimeError, match="torch sees no CUDA device"):  # before the model file is read
            get_refiner(f"{spec}:{MISSING_MODEL}", device=device)
    with pytest.raises(RuntimeError, match="torch sees no CUDA device"):
        LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, device="cuda")


def test_auto_resolves_to_what_torch_sees():
    assert resolve_device("auto") == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_explicit_cpu_is_the_default_bit_for_bit(tiny_trained, tiny_encoder):
    model, path, cfg, rows = tiny_trained
    lines = _lines()
    default = LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, max_tokens=8)
    cpu = LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, max_tokens=8, device="cpu")
    assert default.batch == cpu.batch == BATCH and cpu.device == "cpu" and cpu.dtype == "float32"
    assert np.array_equal(default.encode(lines), cpu.encode(lines))
    pages = [(p.emb, p.feat) for p in build_pages(rows[:4], tiny_encoder, cfg)]
    assert all(np.array_equal(a, b) for a, b in zip(model.line_probs(pages), model.line_probs(pages, device="cpu")))
    texts = _texts()
    for spec, extra in (("encoder", {}), ("cascade", {"margin": "inf", "encoder_lines": "all"})):
        a = get_refiner(f"{spec}:{path}", encoder=tiny_encoder, **extra)
        b = get_refiner(f"{spec}:{path}", encoder=tiny_encoder, device="cpu", **extra)
        assert a.chunk_programs(texts) == b.chunk_programs(texts) and a.doc_programs(texts) == b.doc_programs(texts)
    enc_a = get_refiner(f"encoder:{path}", encoder=tiny_encoder)
    enc_b = get_refiner(f"encoder:{path}", encoder=tiny_encoder, device="cpu")
    assert all(np.array_equal(x.probs, y.probs) for x, y in zip(enc_a.analyze(texts), enc_b.analyze(texts)))


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_runs_fp16_and_matches_cpu(tiny_trained, tiny_encoder):
    model, path, cfg, rows = tiny_trained
    lines = _lines()
    gpu = LineEncoder(model=copy.deepcopy(tiny_encoder.model), tokenizer=tiny_encoder.tokenizer, max_tokens=8,
                      device="cuda")
    assert gpu.dtype == "float16" and gpu.batch > BATCH and next(gpu.model.parameters()).is_cuda
    v = gpu.encode(lines)
    assert isinstance(v, np.ndarray) and v.dtype == np.float32
    ref = LineEncoder(model=tiny_encoder.model, tokenizer=tiny_encoder.tokenizer, max_tokens=8).encode(lines)
    assert np.allclose(v, ref, atol=2e-2)  # fp16 forward pass
    pages = [(p.emb, p.feat) for p in build_pages(rows[:4], tiny_encoder, cfg)]
    on_gpu, on_cpu = model.line_probs(pages, device="cuda"), model.line_probs(pages)
    assert all(a.dtype == np.float64 and np.allclose(a, b, atol=1e-4) for a, b in zip(on_gpu, on_cpu))
    assert not next(model.module.parameters()).is_cuda  # the CPU module is left where it was
    r = get_refiner(f"encoder:{path}", encoder=gpu, device="cuda")
    texts = _texts()
    probs = [d.probs for d in r.analyze(texts)]
    cpu_probs = [d.probs for d in get_refiner(f"encoder:{path}", encoder=tiny_encoder).analyze(texts)]
    assert all(np.allclose(a, b, atol=5e-2) for a, b in zip(probs, cpu_probs))
