"""Program-level metrics: line-wise F1 over noisy lines, document keep/drop F1 and word F1 of the
refined text against a gold main text."""
from __future__ import annotations

from prox.evaluate.metrics import DocScorer, LineScorer, WordScorer
from prox.evaluate.run import (doc_predictor, eval_docs, eval_lines, eval_words, line_predictor,
                               text_predictor)

__all__ = ["DocScorer", "LineScorer", "WordScorer", "doc_predictor", "eval_docs", "eval_lines", "eval_words",
           "line_predictor", "text_predictor"]
