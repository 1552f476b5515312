"""Span losses from prompt log-probabilities served by OpenAI-compatible `/v1/completions` servers.

The scale-out backend of the IFD scorer: many `vllm serve MODEL` (or `selbench serve MODEL`) processes can
score one pool. Each request sends already tokenized sequences as the prompt (a list of token-id lists, so
the server's tokenizer cannot split the text differently from ours) with `echo: true`, `max_tokens: 0` and
`logprobs: 1`; the server answers with the log-probability of every prompt token given the ones before it
(`choices[i].logprobs.token_logprobs`, `None` for the first token), as vLLM serves prompt log-probabilities.
A span's loss is the mean of the negated log-probabilities of its tokens.

Requests are spread round-robin over the servers, `concurrency` in flight per server, retried on connection
errors and 5xx answers. The servers must serve the model the scorer's `model` names: its tokenizer makes the
token ids here and its content hash keys the cache.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import numpy as np

from selbench.errors import InputError

log = logging.getLogger(__name__)

REQUEST_TOKENS = 16384  # prompt tokens per request (several sequences each)
REQUEST_SEQUENCES = 32
RETRIES = 3


def parse_base_urls(text: str) -> list[str]:
    """Comma-separated base URLs (each an http(s) API root such as http://127.0.0.1:8000/v1).

    >>> parse_base_urls("http://a:1/v1, http://b:2/v1/")
    ['http://a:1/v1', 'http://b:2/v1']
    """
    urls = [u.strip().rstrip("/") for u in str(text).split(",") if u.strip()]
    if not urls:
        raise InputError("no server URL given", field="base_url")
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError("must be an http(s) URL such as http://127.0.0.1:8000/v1", path=url, field="base_url")
    return urls


def request_groups(lengths: Sequence[int], max_tokens: int = REQUEST_TOKENS,
                   max_sequences: int = REQUEST_SEQUENCES) -> list[list[int]]:
    """Consecutive groups of sequence indices holding at most `max_tokens` tokens (or one longer sequence).

    >>> request_groups([5, 5, 5, 20, 1], max_tokens=12)
    [[0, 1], [2], [3], [4]]
    """
    groups: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, length in enumerate(lengths):
        if current and (total + length > max_tokens or len(current) >= max_sequences):
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += int(length)
    if current:
        groups.append(current)
    return groups


class PromptLogprobClient:
    """Mean span losses of token sequences, from servers' prompt log-probabilities.

    Args:
        base_url: one API root or several, comma-separated.
        served_model: the model name to request; None = the only model the first server lists.
        concurrency: requests in flight per server.
        api_key_env: environment variable with the API key (sent as the bearer token when set).
        timeout: seconds per request.
    """

    def __init__(self, base_url: str, served_model: str | None = None, *, concurrency: int = 4,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 600.0) -> None:
        import httpx

        self.urls = parse_base_urls(base_url)
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.concurrency = concurrency
        self.http = httpx.Client(headers=headers, timeout=timeout,
                                 limits=httpx.Limits(max_connections=concurrency * len(self.urls)))
        self.served_model = served_model or self._only_model()

    def _only_model(self) -> str:
        answer = self._request("GET", self.urls[0], "/models", None)
        names = [m.get("id") for m in answer.get("data", []) if isinstance(m, dict)]
        if len(names) != 1:
            raise InputError(f"the server lists {len(names)} models ({', '.join(map(str, names)) or 'none'}); "
                             "name one with served_model", path=self.urls[0], field="served_model")
        return str(names[0])

    def _request(self, method: str, url: str, route: str, body: dict[str, Any] | None) -> dict[str, Any]:
        import httpx

        for attempt in range(RETRIES + 1):
            try:
                response = self.http.request(method, url + route, json=body)
            except httpx.TransportError as exc:
                if attempt == RETRIES:
                    raise InputError(f"no answer from the server ({type(exc).__name__})", path=url,
                                     field="base_url") from None
            else:
                if response.status_code < 500 or attempt == RETRIES:
                    break
            time.sleep(min(2.0**attempt, 10.0))
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise InputError(f"{method} {route} answered HTTP {response.status_code}: {message}", path=url,
                             field="base_url")
        return response.json()

    def _token_logprobs(self, url: str, sequences: list[list[int]]) -> list[list[float | None]]:
        body = {"model": self.served_model, "prompt": sequences, "max_tokens": 0, "echo": True, "logprobs": 1,
                "temperature": 0.0}
        answer = self._request("POST", url, "/completions", body)
        choices = sorted(answer.get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != len(sequences):
            raise InputError(f"answered {len(choices)} choices for {len(sequences)} prompts", path=url,
                             field="choices")
        out = []
        for choice, ids in zip(choices, sequences, strict=True):
            values = ((choice.get("logprobs") or {}).get("token_logprobs")) or []
            if len(values) != len(ids):
                raise InputError(f"returned {len(values)} prompt log-probabilities for {len(ids)} prompt tokens "
                                 "(does it support echo with max_tokens 0 and token-id prompts?)", path=url,
                                 field="logprobs")
            out.append(values)
        return out

    def span_losses(self, sequences: Sequence[Sequence[int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Mean negated log-probability of each sequence's span tokens (NaN for an empty span)."""
        losses = np.full(len(sequences), np.nan)
        wanted = [i for i, (start, end) in enumerate(spans) if end > start]
        groups = [[wanted[k] for k in group]
                  for group in request_groups([len(sequences[i]) for i in wanted])]

        def run(job: tuple[int, list[int]]) -> None:
            number, group = job
            url = self.urls[number % len(self.urls)]
            values = self._token_logprobs(url, [list(map(int, sequences[i])) for i in group])
            for i, logprobs in zip(group, values, strict=True):
                start, end = spans[i]
                span = np.asarray(logprobs[start:end], dtype=np.float64)
                losses[i] = -span.mean()

        with ThreadPoolExecutor(max_workers=self.concurrency * len(self.urls)) as pool:
            for _ in pool.map(run, enumerate(groups)):
                pass
        return losses
