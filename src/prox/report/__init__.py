"""`prox report`: a self-contained HTML report and a Hugging Face dataset card for a refine output."""
from prox.report.card import render_card, write_dataset_card
from prox.report.data import load_rows, summarize
from prox.report.html import SECTIONS, render_html, write_report

__all__ = ["SECTIONS", "load_rows", "render_card", "render_html", "summarize", "write_dataset_card", "write_report"]
