"""`prox compare`: the paper's comparison (Raw vs rule filters vs ProX) with a proxy pre-training run."""
from prox.compare.data import Doc, clean_text, load_corpus, split_eval
from prox.compare.proxy import ProxyConfig, train_and_eval
from prox.compare.refine import refine_docs, refine_file, write_corpus
from prox.compare.run import DEFAULT_REFINERS, markdown_table, run_compare

__all__ = ["DEFAULT_REFINERS", "Doc", "ProxyConfig", "clean_text", "load_corpus", "markdown_table",
           "refine_docs", "refine_file", "run_compare", "split_eval", "train_and_eval", "write_corpus"]
