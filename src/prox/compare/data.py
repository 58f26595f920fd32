"""Corpus and eval-set loading for `prox compare`: plain records, a deterministic page split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from prox.records import load_records

EVAL_PERCENT = 10  # prox default: share of pages (by hash of the page id) held out as the eval set


@dataclass
class Doc:
    id: str
    text: str
    meta: dict = field(default_factory=dict)


def corpus_rows(paths: Iterable[str | Path]) -> Iterator[dict]:
    """Rows of JSONL(.gz/.zst) or Parquet files (folders are walked). A bad JSON line raises with its place."""
    for p in paths:
        p = Path(p)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        if not files:
            raise FileNotFoundError(f"no input files under {p}")
        for f in files:
            if not f.exists():
                raise FileNotFoundError(f"input not found: {f}")
            yield from load_records(f)


def parse_where(where: list[str] | None) -> dict[str, str]:
    out = {}
    for w in where or []:
        key, sep, value = w.partition("=")
        if not sep:
            raise ValueError(f"--where expects FIELD=VALUE, got {w!r}")
        out[key.strip()] = value.strip()
    return out


def load_corpus(paths: Iterable[str | Path], *, text_field: str = "text", where: dict[str, str] | None = None,
              limit: int | None = None) -> list[Doc]:
    """Documents of the corpus; rows without a string text are skipped (counted by the caller via len)."""
    docs: list[Doc] = []
    for i, row in enumerate(corpus_rows(paths)):
        if where and any(str(row.get(k)) != v for k, v in where.items()):
            continue
        text = row.get(text_field)
        if not isinstance(text, str):
            continue
        docs.append(Doc(id=str(row.get("id", i)), text=text, meta=row))
        if limit is not None and len(docs) >= limit:
            break
    return docs


def page_key(doc: Doc) -> str:
    """Both views of one benchmark page share ``doc_id``; otherwise the record id."""
    return str(doc.meta.get("doc_id") or doc.id)


def is_held_out(key: str, percent: int = EVAL_PERCENT) -> bool:
    return int(hashlib.sha1(f"prox-compare-eval:{key}".encode()).hexdigest(), 16) % 100 < percent


def clean_text(doc: Doc) -> str:
    """The gold-clean text of a doc: its ``content_lines`` when the row has line labels, else its text."""
    lines = doc.meta.get("content_lines")
    if isinstance(lines, list):
        raw = doc.text.split("\n")
        return "\n".join(raw[i] for i in sorted(lines) if 0 <= i < len(raw))
    return doc.text


def split_eval(docs: list[Doc], percent: int = EVAL_PERCENT) -> tuple[list[Doc], list[str]]:
    """(training corpus, eval texts): held-out pages leave the corpus; their gold-clean text is the eval set."""
    train, eval_texts = [], []
    for d in docs:
        if is_held_out(page_key(d), percent):
            text = clean_text(d)
            if text.strip():
                eval_texts.append(text)
        else:
            train.append(d)
    return train, eval_texts
