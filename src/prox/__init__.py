"""prox: refine pre-training corpora with ProX programs."""
from __future__ import annotations

__version__ = "0.1.0"

# The core is pure and light (no model, no engine), so it is imported eagerly:
# `prox.execute(text, program)` and `prox.parse_program(text)` are the stable entry points.
from prox.executor import execute  # noqa: E402
from prox.parse import parse_program  # noqa: E402

__all__ = ["execute", "parse_program", "__version__"]
