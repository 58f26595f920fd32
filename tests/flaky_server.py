"""A deliberately unreliable OpenAI-compatible ``/v1/completions`` server, run as its own process.

    python tests/flaky_server.py PORT PLAN.json LOG.jsonl

Listens on 127.0.0.1:PORT only, prints ``READY`` when it accepts connections. Answers are
deterministic: `answer_for(prompt, max_tokens)` picks a valid ProX program from a hash of the
prompt (token ids or text), so a test can predict every document's outcome.

PLAN.json: ``{"doc_max_tokens": 16, "hang_s": 2.5, "hold_s": 30, "faults": {KEY: [KIND, ...]}}``.
KEY is `prompt_key(prompt)`; the n-th request for a key gets the n-th KIND of its list, ``ok``
once the list is used up; a KIND prefixed ``always:`` repeats forever. Kinds:

- ``ok``: 200 with the answer (after ``delay_s``);
- ``500`` / ``503``: that status with an error body;
- ``timeout``: no answer for ``hang_s`` (longer than the client's timeout), then the answer;
- ``hold``: no answer for ``hold_s`` (a test kills the server meanwhile; the request is in flight);
- ``badjson``: 200 with a body cut in the middle of the JSON;
- ``nochoices``: 200 with valid JSON that is not a completion (``{"object": "error", ...}``);
- ``reset``: the connection is closed without an answer.

LOG.jsonl gets one line per request, written before it is answered:
``{"t", "pid", "key", "attempt", "kind", "max_tokens"}``. Attempts are counted from the log, so
a restarted server (same LOG) goes on where the killed one stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def prompt_key(prompt: Any) -> str:
    """The key of a completion request's prompt (a list of token ids or a string)."""
    return hashlib.sha1(json.dumps(prompt, separators=(",", ":")).encode("utf-8")).hexdigest()[:16]


def answer_for(prompt: Any, max_tokens: int, doc_max_tokens: int) -> str:
    """The program the server writes: doc requests (``max_tokens == doc_max_tokens``) keep three
    documents in four; chunk requests remove the chunk's first line or skip the chunk."""
    h = int(prompt_key(prompt), 16)
    if max_tokens == doc_max_tokens:
        return "drop_doc()" if h % 4 == 0 else "keep_doc()"
    return "remove_lines(line_start=0, line_end=0)" if h % 2 else "skip_chunk()"


class FlakyState:
    def __init__(self, plan: dict[str, Any], log_path: Path) -> None:
        self.plan = plan
        self.log_path = log_path
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        if log_path.exists():  # a restart: count what the previous process saw
            for line in log_path.read_text().splitlines():
                try:
                    key = json.loads(line)["key"]
                except (ValueError, KeyError):
                    continue  # a line cut by the kill
                self.attempts[key] = self.attempts.get(key, 0) + 1
        self.log = open(log_path, "a", encoding="utf-8")

    def next_kind(self, key: str, max_tokens: int) -> tuple[int, str]:
        with self.lock:
            attempt = self.attempts.get(key, 0)
            self.attempts[key] = attempt + 1
            kinds = self.plan.get("faults", {}).get(key, [])
            if kinds and kinds[-1].startswith("always:") and attempt >= len(kinds) - 1:
                kind = kinds[-1].split(":", 1)[1]
            else:
                kind = kinds[attempt] if attempt < len(kinds) else "ok"
            self.log.write(json.dumps({"t": time.time(), "pid": os.getpid(), "key": key, "attempt": attempt + 1,
                                       "kind": kind, "max_tokens": max_tokens}) + "\n")
            self.log.flush()
            return attempt + 1, kind


def make_handler(state: FlakyState):
    plan = state.plan

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_POST(self) -> None:  # noqa: N802
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.rstrip("/") != "/v1/completions":
                self._send(404, b'{"error": "only /v1/completions"}')
                return
            prompt, max_tokens = payload["prompt"], int(payload.get("max_tokens") or 16)
            key = prompt_key(prompt)
            _, kind = state.next_kind(key, max_tokens)
            text = answer_for(prompt, max_tokens, int(plan.get("doc_max_tokens", 16)))
            good = json.dumps({"object": "text_completion", "model": payload.get("model", "flaky"),
                               "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": len(prompt), "completion_tokens": 3}}).encode()
            try:
                if kind == "ok":
                    time.sleep(float(plan.get("delay_s", 0.0)))
                    self._send(200, good)
                elif kind in ("500", "503"):
                    self._send(int(kind), json.dumps({"error": {"message": f"injected {kind}"}}).encode())
                elif kind in ("timeout", "hold"):
                    time.sleep(float(plan.get("hang_s" if kind == "timeout" else "hold_s", 2.5)))
                    self._send(200, good)
                elif kind == "badjson":
                    self._send(200, good[: len(good) // 2])
                elif kind == "nochoices":
                    self._send(200, b'{"object": "error", "message": "model overloaded, try again"}')
                elif kind == "reset":
                    self.close_connection = True
                    self.connection.close()
                else:
                    self._send(500, json.dumps({"error": {"message": f"unknown fault kind {kind!r}"}}).encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout) before the answer

    return Handler


def serve(port: int, plan_path: Path, log_path: Path) -> None:
    plan = json.loads(plan_path.read_text())
    state = FlakyState(plan, log_path)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    print("READY", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    serve(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
