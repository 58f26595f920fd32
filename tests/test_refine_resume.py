"""Kill `prox refine` with SIGKILL mid-run, rerun the same command: nothing lost, nothing doubled,
and programs already generated are not generated again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from test_refine_e2e import FAKE, dev_rows, read_outcome
from fakes import text_hash

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _cache_ids(outdir: Path, stage: str) -> set[str]:
    ids = set()
    for path in (outdir / ".prox" / "cache").glob(f"{stage}-*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                pass  # a line cut by the kill
    return ids


def test_sigkill_then_rerun_completes_exactly_once(tmp_path):
    rows = dev_rows(48)
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, calls = tmp_path / "out", tmp_path / "calls.txt"
    cmd = [sys.executable, "-c", "from prox.cli import main; main()", "refine", str(src), "-o", str(out),
           "--refiner", FAKE, "--tasks", "2", "--batch-size", "4", "--no-progress",
           "-O", f"calls_file={calls}", "-O", "delay=0.03", "-O", "min_doc_words=120"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)])}

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 60
    # wait until task 0 is finished and task 1 has cached some (not all) doc programs
    while time.time() < deadline:
        task1 = out / ".prox" / "cache" / "doc-00001.jsonl"
        if task1.exists() and len(task1.read_bytes().splitlines()) >= 8:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    assert not (out / "stats.json").exists()
    assert (out / ".prox" / "logs" / "completions" / "00000").exists()
    assert not (out / ".prox" / "logs" / "completions" / "00001").exists()
    doc_cached, chunk_cached = _cache_ids(out, "doc"), _cache_ids(out, "chunk")
    calls_before = len(calls.read_text().splitlines())

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr

    records = [r for o in ("kept", "dropped", "failed") for r in read_outcome(out, o)]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 48  # no duplicate, no missing
    assert set(ids) == {r["id"] for r in rows}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["complete"] and stats["balanced"] and stats["documents"]["docs_in"] == 48

    # what the rerun generated: nothing that was already in the cache when the run was killed
    by_hash = {text_hash(r["text"]): r["id"] for r in rows}
    regenerated = Counter()
    for line in calls.read_text().splitlines()[calls_before:]:
        stage, digest = line.split("\t")
        doc_id = by_hash[digest]
        assert doc_id not in (doc_cached if stage == "doc" else chunk_cached), f"{stage} program of {doc_id} regenerated"
        regenerated[stage] += 1
    # task 0 was finished: the rerun only worked on task 1's 24 documents, reusing its cache
    assert 0 < regenerated["doc"] <= 24 - len([i for i in doc_cached if i in {r["id"] for r in rows[1::2]}])
    task1 = stats["tasks"]["per_task"][1]
    assert task1["doc_programs_cached"] == len(doc_cached & {r["id"] for r in rows[1::2]})
