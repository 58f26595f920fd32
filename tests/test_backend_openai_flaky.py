"""`prox refine --refiner openai` against a real, unreliable local server process (`tests/flaky_server.py`).

The server (127.0.0.1 only) answers some requests with 500/503, hangs past the client's timeout,
sends cut JSON, valid JSON that is not a completion, or closes the connection; one request is held
while the test SIGKILLs the server and starts it again on the same port. Checked: transient faults are
retried with growing delays and the documents come out as if nothing happened; a prompt that always
fails costs a bounded number of requests and leaves its document in failed/ with the error; a rerun
with the same response cache sends no request for anything answered before, only for what failed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SHARED
from flaky_server import answer_for, prompt_key
from test_refine_e2e import dev_rows, read_outcome

TESTS = Path(__file__).resolve().parent
LLAMA2 = SHARED / "fixtures" / "llama2-tokenizer"
DOC_NEW, CHUNK_NEW = 16, 32
MAX_RETRIES, BACKOFF_S, TIMEOUT_S = 4, 0.15, 0.8  # a call: at most 5 requests, >= 1.1 s of delays in all
N_DOCS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FlakyProcess:
    """The flaky server as a child process; `kill` is SIGKILL, `start` again reuses port and log."""

    def __init__(self, port: int, plan: Path, log: Path) -> None:
        self.port, self.plan, self.log = port, plan, log
        self.proc: subprocess.Popen | None = None
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FlakyProcess":
        self.proc = subprocess.Popen([sys.executable, str(TESTS / "flaky_server.py"), str(self.port), str(self.plan),
                                      str(self.log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().strip()
        assert line == "READY", (line, self.proc.stderr.read().decode()[-2000:])
        self.pids.append(self.proc.pid)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def refine(url: str, src: Path, out: Path, cache: Path) -> None:
    from typer.testing import CliRunner

    from prox.cli import app

    result = CliRunner().invoke(app, [
        "refine", str(src), "-o", str(out), "--refiner", "openai", "--base-url", url, "--tokenizer", str(LLAMA2),
        "--batch-size", "4", "--no-progress", "-O", f"cache_dir={cache}", "-O", "concurrency=4",
        "-O", f"max_retries={MAX_RETRIES}", "-O", f"backoff_s={BACKOFF_S}", "-O", f"timeout_s={TIMEOUT_S}",
        "-O", f"doc_max_new_tokens={DOC_NEW}", "-O", f"chunk_max_new_tokens={CHUNK_NEW}",
    ])
    assert result.exit_code == 0, result.output + repr(result.exception)


def outcomes(out: Path) -> dict[str, tuple[str, dict]]:
    return {r["id"]: (o, r) for o in ("kept", "dropped", "failed") for r in read_outcome(out, o)}


def test_flaky_server_killed_and_restarted_mid_run(tmp_path):
    from prox.render import PromptRenderer

    if not LLAMA2.is_dir():
        pytest.skip(f"shared tokenizer fixture not found at {LLAMA2}")
    rows = [r for r in dev_rows(200) if 300 < len(r["text"]) < 4000][:N_DOCS]
    assert len(rows) == N_DOCS
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))

    # what the refiner will send (the prox preset's token ids) and what the server will answer
    renderer = PromptRenderer(str(LLAMA2), preset="prox")
    doc_key = {r["id"]: prompt_key(renderer.doc_prompt(r["text"]).token_ids) for r in rows}
    chunk_keys = {r["id"]: [prompt_key(p.token_ids) for p in renderer.chunk_prompts(r["text"])] for r in rows}
    doc_answer = {r["id"]: answer_for(renderer.doc_prompt(r["text"]).token_ids, DOC_NEW, DOC_NEW) for r in rows}
    chunk_answers = {r["id"]: [answer_for(p.token_ids, CHUNK_NEW, DOC_NEW) for p in renderer.chunk_prompts(r["text"])]
                     for r in rows}
    ids = [r["id"] for r in rows]
    kept_later = [i for i in ids[7:] if doc_answer[i] == "keep_doc()"]
    assert len(kept_later) >= 2
    always_doc, held, chunk_bad, chunk_flaky = ids[5], ids[6], kept_later[0], kept_later[1]
    faults = {
        doc_key[ids[0]]: ["500", "503"],
        doc_key[ids[1]]: ["timeout"],
        doc_key[ids[2]]: ["badjson"],
        doc_key[ids[3]]: ["reset"],
        doc_key[ids[4]]: ["nochoices"],
        doc_key[always_doc]: ["always:500"],
        doc_key[held]: ["hold"],
        chunk_keys[chunk_bad][0]: ["always:badjson"],
        chunk_keys[chunk_flaky][0]: ["503", "timeout"],
    }
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"doc_max_tokens": DOC_NEW, "hang_s": TIMEOUT_S + 0.7, "hold_s": 30, "faults": faults}))
    server = FlakyProcess(free_port(), plan, tmp_path / "requests.jsonl")
    cache = tmp_path / "http-cache"

    # 1. the flaky run; a watcher kills the server while it holds a request, and starts it again
    killed = threading.Event()

    def watcher() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(r["kind"] == "hold" for r in server.requests()):
                server.kill()
                killed.set()
                server.start()
                return
            time.sleep(0.01)

    server.start()
    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        refine(server.url, src, tmp_path / "out1", cache)
        thread.join(timeout=60)
    finally:
        server.kill()
    flaky_s = time.monotonic() - started
    assert killed.is_set() and len(server.pids) == 2

    seen = outcomes(tmp_path / "out1")
    assert sorted(seen) == sorted(ids)
    stats = json.loads((tmp_path / "out1" / "stats.json").read_text())
    assert stats["balanced"] and stats["complete"] and stats["documents"]["docs_in"] == N_DOCS
    failed = {i: r["error"] for i, (o, r) in seen.items() if o == "failed"}
    assert sorted(failed) == sorted([always_doc, chunk_bad])
    assert failed[always_doc].startswith("refiner_error: doc stage: OpenAIError:")
    assert f"after {MAX_RETRIES + 1} attempts" in failed[always_doc] and "HTTP 500" in failed[always_doc]
    assert failed[chunk_bad].startswith("refiner_error: chunk stage: OpenAIError:")
    assert "invalid JSON in response" in failed[chunk_bad]
    for i in ids:  # every other document: exactly the server's programs, as with a healthy server
        if i in failed:
            continue
        outcome, record = seen[i]
        assert record["metadata"]["doc_program"] == doc_answer[i]
        if doc_answer[i] == "drop_doc()":
            assert outcome == "dropped" and record["reason"] == "doc_program"
        else:
            assert record["metadata"]["chunk_programs"] == chunk_answers[i]

    log = server.requests()
    by_key: dict[str, list[dict]] = {}
    for entry in log:
        by_key.setdefault(entry["key"], []).append(entry)
    # transient faults: retried until answered, each retry later than the last by at least the backoff floor
    for key, kinds in ((doc_key[ids[0]], ["500", "503", "ok"]), (doc_key[ids[2]], ["badjson", "ok"]),
                       (doc_key[ids[3]], ["reset", "ok"]), (doc_key[ids[4]], ["nochoices", "ok"]),
                       (chunk_keys[chunk_flaky][0], ["503", "timeout", "ok"])):
        assert [e["kind"] for e in by_key[key]] == kinds
        gaps = [b["t"] - a["t"] for a, b in zip(by_key[key], by_key[key][1:])]
        assert all(gap >= 0.5 * BACKOFF_S * 2 ** k for k, gap in enumerate(gaps)), gaps
    timed_out = by_key[doc_key[ids[1]]]
    assert [e["kind"] for e in timed_out] == ["timeout", "ok"] and timed_out[1]["t"] - timed_out[0]["t"] >= TIMEOUT_S
    # the request in flight when the server was killed was sent again to the restarted server
    held_log = by_key[doc_key[held]]
    assert held_log[0]["kind"] == "hold" and held_log[0]["pid"] == server.pids[0]
    assert held_log[-1]["kind"] == "ok" and held_log[-1]["pid"] == server.pids[1]
    # a prompt that always fails: (1 + max_retries) requests for the batch, as many again for the
    # document alone (the pipeline's per-document retry); then it is given up
    assert len(by_key[doc_key[always_doc]]) == 2 * (MAX_RETRIES + 1)
    assert len(by_key[chunk_keys[chunk_bad][0]]) == 2 * (MAX_RETRIES + 1)
    answered = {e["key"] for e in log if e["kind"] == "ok"}

    # 2. the same command into a new folder, same response cache, the server healthy now
    plan.write_text(json.dumps({"doc_max_tokens": DOC_NEW, "faults": {}}))
    healthy = FlakyProcess(server.port, plan, tmp_path / "requests-rerun.jsonl").start()
    try:
        refine(healthy.url, src, tmp_path / "out2", cache)
    finally:
        healthy.kill()
    rerun_keys = [e["key"] for e in healthy.requests()]
    assert not set(rerun_keys) & answered  # nothing answered before is asked again
    expected = {doc_key[always_doc], chunk_keys[chunk_bad][0]}
    if doc_answer[always_doc] == "keep_doc()":
        expected |= set(chunk_keys[always_doc])  # it reaches the chunk stage for the first time
    assert sorted(rerun_keys) == sorted(expected)  # each once: the server is healthy
    seen2 = outcomes(tmp_path / "out2")
    assert sorted(seen2) == sorted(ids) and not [i for i, (o, _) in seen2.items() if o == "failed"]
    for i in ids:
        if i not in failed:  # same records as in the flaky run
            assert seen2[i][0] == seen[i][0]
            assert seen2[i][1]["text"] == seen[i][1]["text"] and seen2[i][1]["metadata"] == seen[i][1]["metadata"]
    print(f"flaky run {flaky_s:.1f} s, {len(log)} requests; rerun {len(rerun_keys)} requests")
