"""Teacher annotation and gold-label SFT data for the two ProX stages (`prox annotate`).

Pieces, each usable alone: `templates` (editable teacher prompts), `scores` (rubric score
parsing and the paper's keep/drop rule), `programs` (program extraction from teacher
answers, merging, validation), `gold` (targets from human labels), `records` (SFT records,
output folder, resume) and `run` (the driver).
"""
from __future__ import annotations

from prox.annotate.programs import ChunkAnnotation, annotate_chunk, extract_operations, find_calls, merge_operations
from prox.annotate.records import OutputFolder, SFTRecord, load_sft_records
from prox.annotate.scores import DocVerdict, doc_verdict, keep_label, parse_score
from prox.annotate.templates import TeacherTemplates

__all__ = [
    "ChunkAnnotation",
    "DocVerdict",
    "OutputFolder",
    "SFTRecord",
    "TeacherTemplates",
    "annotate_chunk",
    "doc_verdict",
    "extract_operations",
    "find_calls",
    "keep_label",
    "load_sft_records",
    "merge_operations",
    "parse_score",
]
