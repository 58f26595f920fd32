"""Program-level metrics: line-wise F1 over noisy lines and document keep/drop F1."""
from __future__ import annotations

from prox.evaluate.metrics import DocScorer, LineScorer
from prox.evaluate.run import doc_predictor, eval_docs, eval_lines, line_predictor

__all__ = ["DocScorer", "LineScorer", "doc_predictor", "eval_docs", "eval_lines", "line_predictor"]
