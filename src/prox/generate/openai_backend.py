"""Generation through any OpenAI-compatible HTTP endpoint (vLLM serve, SGLang, llama.cpp server, ...).

Two pieces:

- `OpenAIClient`: a reusable async client (httpx) with bounded concurrency, retries with
  exponential backoff and jitter on 429 / 5xx / timeouts / connection errors, an on-disk
  response cache (sqlite, keyed by sha256 of endpoint kind + payload, the payload
  holding the model), and usage accounting. ``chat(...)`` and ``complete(...)`` are the
  blocking entry points; ``achat``/``acomplete`` the async ones. `prox annotate` reuses it.
- `OpenAIGenerator`: the `Generator` for refiners: rendered prompts → completion texts,
  through ``/v1/completions`` (the rendered prompt, as token ids when the renderer has
  them, else as text) or ``/v1/chat/completions`` (messages; the server applies its own
  chat template), optionally grammar-constrained.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import httpx

from prox.generate import constrained as grammar
from prox.generate.base import BackendBase, Timer, check_max_new_tokens, prompt_ids, prompt_text

DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_S = 300.0
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})  # transient by HTTP semantics
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}
# How to ask a server for grammar-constrained output, by server family.
CONSTRAINT_STYLES = ("gbnf", "structured_outputs", "guided_regex", "regex")


class OpenAIError(RuntimeError):
    """A request failed for good (non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Usage:
    """Token and request accounting of one `OpenAIClient`, cumulative."""

    requests: int = 0            # HTTP requests sent (retries included)
    responses: int = 0           # successful responses received over HTTP
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0       # as reported by the server (cached answers not counted)
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url if url.endswith("/v1") else url + "/v1"


class ResponseCache:
    """A sqlite file of ``key -> response JSON``; safe across threads of one process."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.suffix != ".sqlite":
            path = path / "openai-cache.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
            self._db.commit()

    @staticmethod
    def key(kind: str, payload: dict[str, Any]) -> str:
        blob = json.dumps({"kind": kind, "payload": payload}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, json.dumps(response, ensure_ascii=False)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OpenAIClient:
    """Async client for OpenAI-compatible ``/v1/completions`` and ``/v1/chat/completions``.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000`` or ``.../v1``.
        model: the ``model`` field of every request (servers with one model ignore it).
        api_key: bearer token; defaults to ``$OPENAI_API_KEY`` (unset → no header).
        concurrency: requests in flight at most.
        max_retries: retries of one request on 429 / 5xx / timeouts / connection errors.
        backoff_s, backoff_max_s: delay before retry k is ``min(max, backoff * 2**k)``
            times a jitter factor in [0.5, 1.5) (or the server's ``Retry-After``, if longer).
        cache_dir: directory (or ``.sqlite`` file) of the response cache; None disables it.
        params: default request fields (e.g. ``{"temperature": 0}``), overridden per call.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        cache_dir: str | Path | None = None,
        params: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {max_retries}")
        self.base_url = _base_url(base_url)
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout_s = timeout_s
        self.params = dict(params or {})
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.usage = Usage()
        self._random = random.Random(seed)
        self._usage_lock = threading.Lock()

    # -- public blocking API -----------------------------------------------------------
    def chat(self, messages_batch: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[str]:
        """One assistant reply per conversation, in order."""
        return _run(self.achat(messages_batch, **params))

    def complete(self, prompts: Sequence[str | Sequence[int]], **params: Any) -> list[str]:
        """One completion per prompt (text, or a list of token ids), in order."""
        return _run(self.acomplete(prompts, **params))

    def responses(self, kind: str, payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Full response JSON objects for raw payloads (``kind``: "chat" or "completions")."""
        return _run(self._batch(kind, list(payloads)))

    # -- async API -----------------------------------------------------------------------
    async def achat(self, messages_batch: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[str]:
        return [_text("chat", r) for r in await self.achat_responses(messages_batch, **params)]

    async def acomplete(self, prompts: Sequence[str | Sequence[int]], **params: Any) -> list[str]:
        return [_text("completions", r) for r in await self.acomplete_responses(prompts, **params)]

    async def achat_responses(self, messages_batch: Sequence[Sequence[dict[str, Any]]], **params: Any) -> list[dict[str, Any]]:
        """Like `achat`, but the whole response objects (usage, finish_reason, ...)."""
        payloads = [self._payload(params, messages=list(m)) for m in messages_batch]
        return await self._batch("chat", payloads)

    async def acomplete_responses(self, prompts: Sequence[str | Sequence[int]], **params: Any) -> list[dict[str, Any]]:
        """Like `acomplete`, but the whole response objects (usage, finish_reason, ...)."""
        payloads = [self._payload(params, prompt=p if isinstance(p, str) else [int(t) for t in p]) for p in prompts]
        return await self._batch("completions", payloads)

    # -- internals -----------------------------------------------------------------------
    def _payload(self, params: dict[str, Any], **body: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if self.model is not None:
            payload["model"] = self.model
        payload.update(self.params)
        payload.update(params)
        payload.update(body)
        payload.pop("stream", None)  # whole responses only
        return payload

    async def _batch(self, kind: str, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if kind not in ENDPOINTS:
            raise ValueError(f"kind must be one of {sorted(ENDPOINTS)}, not {kind!r}")
        results: list[dict[str, Any] | None] = [None] * len(payloads)
        todo: list[tuple[int, str]] = []
        for i, payload in enumerate(payloads):
            key = ResponseCache.key(kind, payload)
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                results[i] = cached
                self._count(cache_hits=1)
            else:
                todo.append((i, key))
        if todo:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            semaphore = asyncio.Semaphore(self.concurrency)
            async with httpx.AsyncClient(base_url=self.base_url, headers=headers, limits=limits,
                                         timeout=httpx.Timeout(self.timeout_s)) as http:

                async def one(i: int, key: str) -> None:
                    async with semaphore:
                        response = await self._post(http, ENDPOINTS[kind], payloads[i])
                    if self.cache is not None:
                        self.cache.put(key, response)
                    results[i] = response

                # Let every request finish (successes reach the cache), then report the first failure.
                outcomes = await asyncio.gather(*(one(i, key) for i, key in todo), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return results  # type: ignore[return-value]

    async def _post(self, http: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            self._count(requests=1)
            retry_after: float | None = None
            try:
                response = await http.post(path, json=payload)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem, status = f"{type(exc).__name__}: {exc}", None
            else:
                status = response.status_code
                if status == 200:
                    try:
                        body = response.json()
                    except ValueError:
                        body, problem = None, f"invalid JSON in response: {response.text[:200]!r}"
                    else:
                        # a 200 that is no completion (an error object under load): retried, never cached
                        if not isinstance(body, dict) or not body.get("choices"):
                            body, problem = None, f"response without choices: {response.text[:200]!r}"
                    if body is not None:
                        usage = body.get("usage") or {}
                        self._count(responses=1, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                                    completion_tokens=int(usage.get("completion_tokens") or 0))
                        return body
                else:
                    problem = f"HTTP {status}: {response.text[:500]}"
                    if status not in RETRY_STATUS:
                        self._count(failures=1)
                        raise OpenAIError(f"{path} failed with {problem}", status=status)
                    retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt >= self.max_retries:
                self._count(failures=1)
                raise OpenAIError(f"{path} failed after {attempt + 1} attempts; last: {problem}", status=status)
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** attempt) * (0.5 + self._random.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.backoff_max_s))
            attempt += 1
            self._count(retries=1)
            await asyncio.sleep(delay)

    def _count(self, **deltas: int) -> None:
        with self._usage_lock:
            for name, value in deltas.items():
                setattr(self.usage, name, getattr(self.usage, name) + value)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _text(kind: str, response: dict[str, Any]) -> str:
    choices = response.get("choices") or []
    if not choices:
        raise OpenAIError(f"response without choices: {json.dumps(response)[:300]}")
    if kind == "chat":
        return (choices[0].get("message") or {}).get("content") or ""
    return choices[0].get("text") or ""


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, also when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def constraint_fields(stage: str, style: str, **bounds: int) -> dict[str, Any]:
    """Request fields that constrain a server's output to the program grammar of `stage`."""
    if style == "gbnf":  # llama.cpp server
        return {"grammar": grammar.program_gbnf(stage, **bounds)}
    regex = grammar.program_regex(stage, **bounds)
    if style == "structured_outputs":  # vLLM >= 0.11 (guided_* fields removed in 0.12)
        return {"structured_outputs": {"regex": regex}}
    if style == "guided_regex":  # vLLM < 0.12
        return {"guided_regex": regex}
    if style == "regex":  # SGLang
        return {"regex": regex}
    raise ValueError(f"constraint style must be one of {CONSTRAINT_STYLES}, not {style!r}")


class OpenAIGenerator(BackendBase):
    """`Generator` over an `OpenAIClient`.

    Args:
        client: the client (or pass ``base_url=...`` and client options).
        api: "completions" (the rendered prompt) or "chat" (the prompt text as the user
            message, the server applies its own chat template; render with preset "plain").
        prompt_format: for "completions": "ids" (token ids; token-exact), "text", or
            "auto" (ids when the renderer gives them).
        stage, constrained, constraint_style: grammar-constrained output (see
            `constraint_fields`); a budget cut keeps complete program lines only.
        system_prompt: an optional system message for the "chat" api.
        params: extra request fields (e.g. ``{"stop": [...]}``).
    """

    def __init__(
        self,
        client: OpenAIClient | None = None,
        *,
        api: str = "completions",
        prompt_format: str = "auto",
        stage: str | None = None,
        constrained: bool = False,
        constraint_style: str = "gbnf",
        system_prompt: str | None = None,
        params: dict[str, Any] | None = None,
        grammar_bounds: dict[str, int] | None = None,
        **client_options: Any,
    ) -> None:
        if client is None:
            if "base_url" not in client_options:
                raise ValueError("the openai backend needs base_url= (e.g. http://127.0.0.1:8000/v1)")
            client = OpenAIClient(client_options.pop("base_url"), **client_options)
        elif client_options:
            raise TypeError(f"client options {sorted(client_options)} given together with a client")
        if api not in ENDPOINTS:
            raise ValueError(f"api must be 'completions' or 'chat', not {api!r}")
        if prompt_format not in ("auto", "ids", "text"):
            raise ValueError(f"prompt_format must be 'auto', 'ids' or 'text', not {prompt_format!r}")
        super().__init__(stage=stage, constrained=constrained, grammar_bounds=grammar_bounds)
        self.client = client
        self.api = api
        self.prompt_format = prompt_format
        self.constraint = constraint_fields(stage, constraint_style, **self.grammar_bounds) if constrained else {}
        self.system_prompt = system_prompt
        self.params = dict(params or {})

    def generate(self, prompts: Sequence[Any], *, max_new_tokens: int) -> list[str]:
        check_max_new_tokens(max_new_tokens)
        params = {"max_tokens": max_new_tokens, "temperature": 0, **self.params, **self.constraint}
        before = self.client.usage.as_dict()
        with Timer(self.stats):
            if self.api == "chat":
                system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
                batch = [system + [{"role": "user", "content": prompt_text(p)}] for p in prompts]
                responses = _run(self.client.achat_responses(batch, **params))
            else:
                responses = _run(self.client.acomplete_responses([self._completion_prompt(p) for p in prompts], **params))
        texts = [_text(self.api, r) for r in responses]
        self.stats.truncated += sum(((r.get("choices") or [{}])[0].get("finish_reason") == "length") for r in responses)
        after = self.client.usage.as_dict()
        self.stats.prompts += len(texts)
        for name in ("prompt_tokens", "completion_tokens", "cache_hits", "requests", "retries"):
            setattr(self.stats, name, getattr(self.stats, name) + after[name] - before[name])
        return self.complete(texts)

    def _completion_prompt(self, prompt: Any) -> str | list[int]:
        ids = prompt_ids(prompt)
        if self.prompt_format == "ids":
            if ids is None:
                raise ValueError("prompt_format='ids' but the renderer gave no token ids")
            return list(ids)
        if self.prompt_format == "auto" and ids is not None:
            return list(ids)
        return prompt_text(prompt)
