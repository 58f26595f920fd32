"""Shared test fixtures: the one place that finds ``../shared`` (fixtures and benchmarks)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
BENCHMARKS = SHARED / "benchmarks"
FIXTURES = SHARED / "fixtures"
LLAMA2_TOKENIZER = FIXTURES / "llama2-tokenizer"  # the Llama-2 tokenizer the released ProX models use
REFERENCE = FIXTURES / "reference"  # vectors recorded from the ProX reference implementation


def need(path: Path) -> Path:
    """``path`` when it exists; otherwise the test is skipped (the shared data is absent)."""
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    return path


def benchmark_rows(name: str) -> list[dict]:
    """Rows of ``../shared/benchmarks/NAME``; skips the test when the file is absent."""
    with gzip.open(need(BENCHMARKS / name), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def math_rows() -> list[dict]:
    """The public math pages with line and formula labels (lines-math-public)."""
    return benchmark_rows("lines-math-public.jsonl.gz")


@pytest.fixture(scope="session")
def benchmark_docs() -> list[dict]:
    """The public doc labels (docs-public): DCLM human labels, math Q&A, pure-noise pages."""
    return benchmark_rows("docs-public.jsonl.gz")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A LineEncoder over a tiny random BERT built here (`tests/tiny_encoder.py`); skips without torch."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_encoder import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tinybert"))


@pytest.fixture(scope="session")
def tiny_trained(tiny_encoder, tmp_path_factory):
    """(model, path, config, rows): a tiny encoder model trained on synthetic pages."""
    pytest.importorskip("sklearn")
    from tiny_encoder import train_tiny

    return train_tiny(tiny_encoder, tmp_path_factory.mktemp("enc"))
