"""prox: refine pre-training corpora with ProX programs."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["execute", "parse_program", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import prox` stays cheap (the CLI imports engines only on demand).
    if name == "execute":
        from prox.execute import execute

        return execute
    if name == "parse_program":
        from prox.parse import parse_program

        return parse_program
    raise AttributeError(name)
