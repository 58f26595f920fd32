"""Accounting for `prox refine`: per-task stats and the merged ``stats.json``.

Two sources, each owned by the step that counts: the outcome writer's `TaskStats` (documents
by outcome and reason, text sizes; ``.prox/tasks/NNNNN.json``), and the counters the reader
and the stages keep with datatrove's own ``stat_update`` (`STEP_COUNTERS`: programs generated
and cached, lines removed, ...), which datatrove's executor saves per task
(``.prox/logs/stats/NNNNN.json``). `build_run_stats` merges both at the end of a run.

Words are whitespace-separated tokens (``len(text.split())``), not model tokens: cheap,
tokenizer-free and the same for every refiner. Characters are Python characters; MB are
UTF-8 bytes of the input text / 1e6.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datatrove.utils.stats import MetricStats

from prox.executor.options import count_words
from prox.pipeline.layout import RunLayout

# counted by the outcome writer (TaskStats.record)
DOC_COUNTS = (
    "docs_in", "kept", "dropped", "failed",
    "chars_in", "chars_out", "words_in", "words_out", "lines_in", "lines_out", "bytes_in",
)
# counted by the reader and the stages with datatrove's stat_update, summed over the steps of a task
STEP_COUNTERS = (
    "lines_removed", "normalizations", "program_errors", "programs_ignored",
    "doc_programs_generated", "doc_programs_cached", "chunk_programs_generated", "chunk_programs_cached",
    "refiner_batches", "refiner_batch_failures",
    "lone_surrogates_replaced", "docs_lone_surrogates_replaced",
)
_SUMMED = DOC_COUNTS + STEP_COUNTERS


@dataclass
class TaskStats:
    """The outcome writer's accounting of one task."""

    rank: int = 0
    counts: Counter = field(default_factory=Counter)
    dropped_reasons: Counter = field(default_factory=Counter)
    failed_reasons: Counter = field(default_factory=Counter)
    refiner_name: str | None = None  # the refiner the stages gave this task's documents to
    started: float = field(default_factory=time.time)
    wall_s: float = 0.0

    def record(self, outcome: str, text_in: str, text_out: str, reason: str | None = None) -> None:
        """Count one routed document (text_out is the refined text for kept, else "")."""
        c = self.counts
        c["docs_in"] += 1
        c[outcome] += 1
        c["chars_in"] += len(text_in)
        c["bytes_in"] += len(text_in.encode("utf-8", "surrogatepass"))
        c["words_in"] += count_words(text_in)
        c["lines_in"] += text_in.count("\n") + 1 if text_in else 0
        if outcome == "kept":
            c["chars_out"] += len(text_out)
            c["words_out"] += count_words(text_out)
            c["lines_out"] += text_out.count("\n") + 1 if text_out else 0
        elif outcome == "dropped":
            self.dropped_reasons[reason or "unknown"] += 1
        else:
            # "kind: detail" -> count by kind so the table stays short
            self.failed_reasons[(reason or "unknown").split(":", 1)[0]] += 1

    def to_dict(self) -> dict[str, Any]:
        counts = {name: int(self.counts.get(name, 0)) for name in DOC_COUNTS}
        return {
            "rank": self.rank,
            **counts,
            "balanced": counts["docs_in"] == counts["kept"] + counts["dropped"] + counts["failed"],
            "dropped_reasons": dict(self.dropped_reasons),
            "failed_reasons": dict(self.failed_reasons),
            "wall_s": round(self.wall_s or (time.time() - self.started), 3),
            "refiner_name": self.refiner_name,
        }


def read_step_counters(path: str) -> dict[str, int] | None:
    """`STEP_COUNTERS` summed over the steps of one task's datatrove stats file (None if absent)."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        steps = json.load(handle)
    totals = dict.fromkeys(STEP_COUNTERS, 0)
    for step in steps:
        for name, value in (step.get("stats") or {}).items():
            if name in totals:
                totals[name] += int(MetricStats.from_dict(value).total)
    return totals


def task_entry(task: dict[str, Any], counters: dict[str, int] | None) -> dict[str, Any]:
    """One task's entry of stats.json: the writer's stats with the steps' counters. A task file
    written before the counters moved to datatrove's stats (a run resumed across versions) holds
    them itself."""
    if counters is None or any(name in task for name in STEP_COUNTERS):
        counters = {name: int(task.get(name, 0)) for name in STEP_COUNTERS}
    entry = {"rank": task.get("rank"), **{name: int(task.get(name, 0)) for name in DOC_COUNTS}, **counters}
    entry.update({k: task.get(k) for k in ("balanced", "dropped_reasons", "failed_reasons", "wall_s", "refiner_name")})
    return entry


def write_json_atomic(path: str, data: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (e.g. in an input path): ASCII escapes read back exactly
        payload = json.dumps(data, indent=2, ensure_ascii=True).encode("ascii")
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def merge_task_stats(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {name: sum(int(t.get(name, 0)) for t in tasks) for name in _SUMMED}
    dropped: Counter = Counter()
    failed: Counter = Counter()
    for task in tasks:
        dropped.update(task.get("dropped_reasons", {}))
        failed.update(task.get("failed_reasons", {}))
    total["balanced"] = total["docs_in"] == total["kept"] + total["dropped"] + total["failed"]
    total["dropped_reasons"] = dict(dropped.most_common())
    total["failed_reasons"] = dict(failed.most_common())
    return total


def build_run_stats(layout: RunLayout, *, world_size: int, wall_s: float | None, run_info: dict[str, Any]) -> dict[str, Any]:
    """Merge the per-task files of a run folder into the run's ``stats.json`` payload."""
    tasks = []
    for rank in range(world_size):
        path = layout.task_file(rank)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                tasks.append(task_entry(json.load(handle), read_step_counters(layout.step_stats_file(rank))))
    total = merge_task_stats(tasks)
    task_seconds = sum(t.get("wall_s", 0.0) for t in tasks)
    mb = total["bytes_in"] / 1e6
    stats: dict[str, Any] = {
        "documents": {k: total[k] for k in ("docs_in", "kept", "dropped", "failed")},
        "balanced": total["balanced"],
        "dropped_reasons": total["dropped_reasons"],
        "failed_reasons": total["failed_reasons"],
        "text": {
            "chars_in": total["chars_in"], "chars_out": total["chars_out"],
            "words_in": total["words_in"], "words_out": total["words_out"],
            "lines_in": total["lines_in"], "lines_out": total["lines_out"],
            "bytes_in": total["bytes_in"],
            "chars_kept_ratio": round(total["chars_out"] / total["chars_in"], 4) if total["chars_in"] else None,
            "words_note": "words are whitespace-separated tokens (len(text.split())), not model tokens",
        },
        "programs": {
            "lines_removed": total["lines_removed"],
            "normalizations": total["normalizations"],
            "program_errors": total["program_errors"],
            "programs_ignored": total["programs_ignored"],
            "doc_programs_generated": total["doc_programs_generated"],
            "doc_programs_cached": total["doc_programs_cached"],
            "chunk_programs_generated": total["chunk_programs_generated"],
            "chunk_programs_cached": total["chunk_programs_cached"],
            "refiner_batches": total["refiner_batches"],
            "refiner_batch_failures": total["refiner_batch_failures"],
        },
        "throughput": {
            "wall_s": round(wall_s, 3) if wall_s is not None else None,
            "task_seconds": round(task_seconds, 3),
            "docs_per_s": round(total["docs_in"] / wall_s, 2) if wall_s else None,
            "mb_per_s": round(mb / wall_s, 4) if wall_s else None,
            "docs_per_task_s": round(total["docs_in"] / task_seconds, 2) if task_seconds else None,
            "note": "wall_s covers this invocation; tasks finished by an earlier (resumed) invocation are counted "
                    "in documents but not in wall_s. task_seconds sums the tasks' own wall times.",
        },
        "input_repairs": {
            "lone_surrogates_replaced": total["lone_surrogates_replaced"],
            "documents": total["docs_lone_surrogates_replaced"],
            "note": "lone UTF-16 surrogates (a JSON \\ud800-style escape without its pair; UTF-8 cannot encode "
                    "them) are replaced by U+FFFD when read, in the text, the id and the other fields",
        },
        "tasks": {"total": world_size, "reported": len(tasks), "per_task": tasks},
        **run_info,
    }
    return stats
