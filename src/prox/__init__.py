"""prox: refine pre-training corpora with ProX programs."""
__version__ = "0.1.0"
