"""The OpenAI-compatible backend against a real llama.cpp server (SmolLM2-135M, 1 thread)
and against small local HTTP servers that fail on purpose."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import LLAMA2_TOKENIZER
from prox.generate.openai_backend import OpenAIClient, OpenAIError, OpenAIGenerator, constraint_fields
from prox.parse import parse_program
from servers import find_smollm2_gguf, llama_server  # noqa: F401  (pytest fixture)

MAX_TOKENS = 12  # short generations keep the suite fast on one CPU thread


# -- a scripted local HTTP server ----------------------------------------------------------

class ScriptedServer:
    """Answers POSTs from a script of (status, headers, body) items; the last one repeats."""

    def __init__(self, script, delay_s: float = 0.0):
        self.script = list(script)
        self.delay_s = delay_s
        self.hits = 0
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    step = outer.script[min(outer.hits, len(outer.script) - 1)]
                    outer.hits += 1
                    outer.bodies.append(body)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                time.sleep(outer.delay_s)
                status, headers, payload = step(body) if callable(step) else step
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with outer._lock:
                    outer.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, prompt_tokens: int = 3, completion_tokens: int = 2):
    return (200, {}, {"choices": [{"text": text, "index": 0}],
                      "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}})


def echo_prompt(body):
    return completion(f"echo:{body['prompt']}")


def fail(status: int, **headers):
    return (status, headers, {"error": {"message": f"status {status}"}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- retries, errors, concurrency, cache (scripted servers) -------------------------------

def test_retries_500_twice_then_succeeds():
    with ScriptedServer([fail(500), fail(503), completion("keep_doc()")]) as server:
        client = OpenAIClient(server.url, backoff_s=0.01, max_retries=3, seed=0)
        assert client.complete(["hello"], max_tokens=5) == ["keep_doc()"]
    assert server.hits == 3
    assert client.usage.retries == 2 and client.usage.requests == 3 and client.usage.responses == 1
    assert client.usage.prompt_tokens == 3 and client.usage.completion_tokens == 2


def test_200_without_choices_is_retried_and_not_cached(tmp_path):
    """Some servers answer 200 with an error object under load: retried like a 5xx; only the real
    completion reaches the cache (a cached error object would fail every later run)."""
    not_a_completion = (200, {}, {"object": "error", "message": "overloaded"})
    with ScriptedServer([not_a_completion, completion("keep_doc()")]) as server:
        client = OpenAIClient(server.url, backoff_s=0.001, max_retries=2, cache_dir=tmp_path / "cache")
        assert client.complete(["x"]) == ["keep_doc()"]
        assert server.hits == 2 and client.usage.retries == 1 and client.usage.responses == 1
    assert [r["choices"][0]["text"] for r in OpenAIClient(f"http://127.0.0.1:{free_port()}", max_retries=0,
            cache_dir=tmp_path / "cache").responses("completions", [{"prompt": "x"}])] == ["keep_doc()"]
    with ScriptedServer([not_a_completion]) as server:
        client = OpenAIClient(server.url, backoff_s=0.001, max_retries=1, cache_dir=tmp_path / "cache2")
        with pytest.raises(OpenAIError, match="after 2 attempts; last: response without choices"):
            client.complete(["x"])
        assert len(client.cache) == 0


def test_429_honours_retry_after():
    with ScriptedServer([fail(429, **{"Retry-After": "0.3"}), completion("ok")]) as server:
        client = OpenAIClient(server.url, backoff_s=0.001, seed=0)
        start = time.perf_counter()
        assert client.complete(["x"]) == ["ok"]
        assert time.perf_counter() - start >= 0.3
    assert server.hits == 2


def test_non_retryable_and_exhausted_errors_raise():
    with ScriptedServer([fail(400)]) as server:
        client = OpenAIClient(server.url, backoff_s=0.001)
        with pytest.raises(OpenAIError, match="HTTP 400") as info:
            client.complete(["x"])
        assert info.value.status == 400 and server.hits == 1  # never retried
    with ScriptedServer([fail(502)]) as server:
        client = OpenAIClient(server.url, backoff_s=0.001, max_retries=2)
        with pytest.raises(OpenAIError, match="after 3 attempts"):
            client.complete(["x"])
        assert server.hits == 3 and client.usage.failures == 1
    # connection refused is retried, then reported
    client = OpenAIClient(f"http://127.0.0.1:{free_port()}", backoff_s=0.001, max_retries=1)
    with pytest.raises(OpenAIError, match="ConnectError"):
        client.complete(["x"])
    assert client.usage.requests == 2


def test_concurrency_is_bounded_and_order_kept():
    with ScriptedServer([echo_prompt], delay_s=0.15) as server:
        client = OpenAIClient(server.url, concurrency=2)
        prompts = [f"p{i}" for i in range(6)]
        assert client.complete(prompts) == [f"echo:{p}" for p in prompts]
    assert server.max_in_flight == 2


def test_cache_answers_without_http(tmp_path):
    with ScriptedServer([echo_prompt]) as server:
        client = OpenAIClient(server.url, model="m", cache_dir=tmp_path / "cache")
        first = client.complete(["a", "b"], max_tokens=4)
        assert server.hits == 2
        assert client.complete(["a", "b"], max_tokens=4) == first
        assert server.hits == 2 and client.usage.cache_hits == 2
        client.complete(["a"], max_tokens=5)  # other params: another key
        assert server.hits == 3
    # the cache is on disk: a new client pointing at a dead port still answers
    offline = OpenAIClient(f"http://127.0.0.1:{free_port()}", model="m", cache_dir=tmp_path / "cache", max_retries=0)
    assert offline.complete(["b", "a"], max_tokens=4) == first[::-1]
    assert offline.usage.requests == 0
    other_model = OpenAIClient(f"http://127.0.0.1:{free_port()}", model="other", cache_dir=tmp_path / "cache", max_retries=0)
    with pytest.raises(OpenAIError):
        other_model.complete(["a"], max_tokens=4)


def test_one_failed_request_fails_the_batch_but_successes_are_cached(tmp_path):
    def script(body):
        return fail(400) if body["prompt"] == "bad" else echo_prompt(body)

    with ScriptedServer([script]) as server:
        client = OpenAIClient(server.url, cache_dir=tmp_path / "cache", backoff_s=0.001)
        with pytest.raises(OpenAIError, match="HTTP 400"):
            client.complete(["a", "bad", "b"])
        assert server.hits == 3
        assert client.complete(["a", "b"]) == ["echo:a", "echo:b"]  # both from the cache
        assert server.hits == 3 and client.usage.cache_hits == 2


def test_generator_sends_ids_or_text_and_constraints():
    from prox.render import RenderedPrompt

    with ScriptedServer([echo_prompt]) as server:
        client = OpenAIClient(server.url, model="prox-chunk")
        gen = OpenAIGenerator(client, stage="chunk", constrained=True, constraint_style="structured_outputs")
        gen.generate([RenderedPrompt("text", [1, 5, 7]), RenderedPrompt("plain text", None)], max_new_tokens=9)
        # the two requests are in flight together: the server may see them in either order
        first, second = sorted(server.bodies, key=lambda body: isinstance(body["prompt"], str))
        assert first["prompt"] == [1, 5, 7] and second["prompt"] == "plain text"
        assert first["max_tokens"] == 9 and first["temperature"] == 0 and first["model"] == "prox-chunk"
        assert first["structured_outputs"]["regex"].startswith(" ?(skip_chunk")
        text_gen = OpenAIGenerator(client, prompt_format="text")
        text_gen.generate([RenderedPrompt("as text", [1, 2])], max_new_tokens=3)
        assert server.bodies[-1]["prompt"] == "as text" and "grammar" not in server.bodies[-1]
    assert gen.stats.requests == 2 and gen.stats.truncated == 0 and gen.stats.prompts == 2
    cut = (200, {}, {"choices": [{"text": 'normalize(source_str="ab', "finish_reason": "length"}]})
    with ScriptedServer([cut]) as server:
        gen = OpenAIGenerator(base_url=server.url, stage="chunk", constrained=True)
        assert gen.generate(["x"], max_new_tokens=4) == [""]  # the unfinished call is dropped
        assert gen.stats.truncated == 1 and gen.stats.trimmed == 1
    assert set(constraint_fields("doc", "gbnf")) == {"grammar"}
    assert set(constraint_fields("doc", "guided_regex")) == {"guided_regex"}
    with pytest.raises(ValueError, match="constraint style"):
        constraint_fields("doc", "json")


# -- the real llama.cpp server -------------------------------------------------------------

def test_chat_and_completions_on_llama_cpp(llama_server, tmp_path):
    client = OpenAIClient(llama_server.base_url, cache_dir=tmp_path / "cache")
    texts = client.complete(["The capital of France is", "1, 2, 3, 4,"], max_tokens=MAX_TOKENS, temperature=0)
    assert len(texts) == 2 and all(isinstance(t, str) and t.strip() for t in texts)
    replies = client.chat([[{"role": "user", "content": "Say hello."}]], max_tokens=MAX_TOKENS, temperature=0)
    assert len(replies) == 1 and replies[0].strip()
    assert client.usage.requests == 3 and client.usage.completion_tokens > 0 and client.usage.prompt_tokens > 0
    # second identical call: answered from the cache, no HTTP request
    again = client.chat([[{"role": "user", "content": "Say hello."}]], max_tokens=MAX_TOKENS, temperature=0)
    assert again == replies and client.usage.requests == 3 and client.usage.cache_hits == 1


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_gbnf_constrained_programs_parse(llama_server, api):
    prompts = ["[000]Home | About | Contact\n[001]The fox jumps over the dog.\n[002]Copyright 2024\nProgram:\n",
               "Write a program that keeps or drops this document: Buy cheap pills now!"]
    for stage in ("doc", "chunk"):
        gen = OpenAIGenerator(base_url=llama_server.base_url, api=api, stage=stage, constrained=True,
                              grammar_bounds={"max_ops": 2, "max_chars": 16})
        for text in gen.generate(prompts, max_new_tokens=40 if stage == "chunk" else 8):
            program = parse_program(text, stage=stage)
            assert program.errors == [], (text, program.errors)
            assert program.operations or text == ""


DOCS = ["Home | About\nFoxes are small omnivorous mammals.\nCopyright 2024", "Buy now!\nClick here"]


def check_refiner(refiner) -> None:
    doc_programs = refiner.doc_programs(DOCS)
    assert len(doc_programs) == 2
    assert all(parse_program(p, stage="doc").errors == [] for p in doc_programs)
    chunk_programs = refiner.chunk_programs(DOCS)
    assert [len(c) for c in chunk_programs] == [1, 1]
    assert all(parse_program(p, stage="chunk").errors == [] for c in chunk_programs for p in c)
    stats = refiner.stats()
    assert stats["doc"]["requests"] == 2 and stats["chunk"]["completion_tokens"] > 0


def test_openai_refiner_chat_end_to_end(llama_server):
    """Chat api: the renderer (preset plain) only numbers and chunks; the server applies its template."""
    from prox.refiners import get_refiner

    if not LLAMA2_TOKENIZER.is_dir():
        pytest.skip(f"shared tokenizer fixture not found at {LLAMA2_TOKENIZER}")
    refiner = get_refiner(f"openai:{llama_server.base_url}", api="chat", tokenizer=str(LLAMA2_TOKENIZER),
                          constrained=True, doc_max_new_tokens=8, chunk_max_new_tokens=24,
                          grammar_max_ops=2, grammar_max_chars=16)
    assert refiner.chunk_renderer.preset == "plain"
    check_refiner(refiner)


@pytest.mark.slow
def test_openai_refiner_completions_with_gguf_tokenizer(llama_server):
    """Completions api with token ids rendered by the GGUF's own tokenizer and chat template
    (slow: transformers converts the GGUF tokenizer, ~15 s on one core)."""
    from prox.refiners import get_refiner

    refiner = get_refiner(f"openai:{llama_server.base_url}", tokenizer=str(find_smollm2_gguf()), preset="model",
                          constrained=True, doc_max_new_tokens=8, chunk_max_new_tokens=24,
                          grammar_max_ops=2, grammar_max_chars=16)
    check_refiner(refiner)


def test_prox_refine_cli_with_the_openai_refiner(llama_server, tmp_path):
    """`prox refine --refiner openai --base-url ... --constrained -O api=chat`: options reach the
    factory, every document ends in exactly one outcome, none fails."""
    import gzip

    from typer.testing import CliRunner

    from prox.cli import app

    if not LLAMA2_TOKENIZER.is_dir():
        pytest.skip(f"shared tokenizer fixture not found at {LLAMA2_TOKENIZER}")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(DOCS)))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "refine", str(src), "-o", str(out), "--refiner", "openai", "--base-url", llama_server.base_url,
        "--tokenizer", str(LLAMA2_TOKENIZER), "--constrained", "--no-progress",
        "-O", "api=chat", "-O", "doc_max_new_tokens=8", "-O", "chunk_max_new_tokens=24",
        "-O", "grammar_max_ops=2", "-O", "grammar_max_chars=16",
    ])
    assert result.exit_code == 0, result.output
    seen = {}
    for outcome in ("kept", "dropped", "failed"):
        for path in (out / outcome).glob("*.jsonl.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                seen.update({json.loads(line)["id"]: outcome for line in handle})
    assert sorted(seen) == ["d0", "d1"] and "failed" not in seen.values()
    task = json.loads((out / "stats.json").read_text())["tasks"]["per_task"][0]
    assert task["doc_programs_generated"] == 2 and task["program_errors"] == 0  # constrained: no errors
