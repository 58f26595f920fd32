"""Shared test fixtures: the one place that finds ``../shared`` (fixtures and benchmarks)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
BENCHMARKS = SHARED / "benchmarks"


def benchmark_rows(name: str) -> list[dict]:
    """Rows of ``../shared/benchmarks/NAME``; skips the test when the file is absent."""
    path = BENCHMARKS / name
    if not path.is_file():
        pytest.skip(f"shared benchmark missing: {path}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def math_rows() -> list[dict]:
    """The public math pages with line and formula labels (lines-math-public)."""
    return benchmark_rows("lines-math-public.jsonl.gz")


@pytest.fixture(scope="session")
def benchmark_docs() -> list[dict]:
    """The public doc labels (docs-public): DCLM human labels, math Q&A, pure-noise pages."""
    return benchmark_rows("docs-public.jsonl.gz")
