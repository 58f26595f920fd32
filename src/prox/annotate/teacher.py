"""The teacher: any OpenAI-compatible chat endpoint, through `prox.generate.openai_backend`.

The client brings concurrency, retries with backoff, the on-disk response cache (a rerun
asks nothing twice) and token accounting. This adapter adds per-request failure
isolation: when a batch fails, its requests are retried one by one (answers already
received come from the cache), and a request that still fails becomes ``None``, so only
its document is marked failed.
"""
from __future__ import annotations

from typing import Any, Sequence

DEFAULT_TEMPERATURE = 0.0  # greedy, as ProX decodes


class OpenAITeacher:
    def __init__(self, client: Any, *, temperature: float = DEFAULT_TEMPERATURE, extra_params: dict[str, Any] | None = None) -> None:
        self.client = client
        self.params = {"temperature": temperature, **(extra_params or {})}
        self.failed_requests = 0
        self.batch_fallbacks = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        model: str,
        *,
        cache_dir: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 300.0,
        temperature: float = DEFAULT_TEMPERATURE,
        seed: int | None = 0,
    ) -> "OpenAITeacher":
        from prox.generate.openai_backend import OpenAIClient

        client = OpenAIClient(url, model=model, concurrency=concurrency, max_retries=max_retries,
                              timeout_s=timeout_s, cache_dir=cache_dir, seed=seed)
        extra = {"seed": seed} if seed is not None else None
        return cls(client, temperature=temperature, extra_params=extra)

    def ask(self, requests: Sequence[list[dict[str, str]]], *, max_tokens: int) -> list[str | None]:
        from prox.generate.openai_backend import OpenAIError

        params = {**self.params, "max_tokens": max_tokens}
        if not requests:
            return []
        try:
            return list(self.client.chat(list(requests), **params))
        except OpenAIError:
            self.batch_fallbacks += 1
        out: list[str | None] = []
        for request in requests:
            try:
                out.append(self.client.chat([request], **params)[0])
            except OpenAIError:
                self.failed_requests += 1
                out.append(None)
        return out

    def stats(self) -> dict[str, Any]:
        usage = self.client.usage.as_dict() if hasattr(self.client, "usage") else {}
        return {
            **usage,
            "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
            "failed_requests": self.failed_requests,
            "batch_fallbacks": self.batch_fallbacks,
            "model": getattr(self.client, "model", None),
            "base_url": getattr(self.client, "base_url", None),
        }
