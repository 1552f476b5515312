"""A client for LLM judges behind any OpenAI-compatible endpoint (OpenAI, vLLM, `selbench serve`).

* The API key comes only from the environment (`OPENAI_API_KEY` or `JudgeConfig.api_key_env`); it is
  never logged, never part of a cache key, never written anywhere. Loopback endpoints need no key.
* Responses are cached on disk under `$SELBENCH_CACHE/judge/`, one JSON file per request keyed by the
  sha256 of (base_url, model, messages, decoding params), written atomically: re-judging is free and
  an interrupted run resumes where it stopped.
* Requests run on a bounded thread pool; connection errors, timeouts, 429 and 5xx are retried with
  exponential backoff (the openai client's own retries are off so the count is ours). An endpoint that
  has never answered and refuses the connection (or whose host does not resolve) fails at once with an
  `InputError` naming the URL: there is nothing to wait for.
* A caller-supplied parser turns each response into a value; a parser failure yields None and is
  counted (`stats["parse_failures"]`), never swallowed silently.
* Prompt/completion tokens from `usage` (uncached requests only) are charged through
  `selbench.cost.CostMeter.add_api_tokens`, so dollars come from the price sheet.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from selbench.errors import InputError
from selbench.hashing import sha256_json
from selbench.store import cache_root, write_json_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 1
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class JudgeParseError(ValueError):
    """A judge's response could not be parsed into a verdict."""


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to call the judge.

    Args:
        model: model name the endpoint knows (e.g. "gpt-4-1106-preview", or what `selbench serve` reports).
        base_url: OpenAI-compatible base URL ending in /v1; None = api.openai.com.
        api_key_env: environment variable holding the API key.
        max_workers: concurrent requests.
        max_retries: retries after the first attempt on transient errors.
        backoff_s: first retry delay; doubles each retry (capped at 60 s).
        timeout_s: per-request timeout.
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_workers: int = 4
    max_retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("JudgeConfig.model: must be a non-empty model name")
        if self.base_url is not None and urlparse(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"JudgeConfig.base_url={self.base_url!r}: must be an http(s) URL")
        if not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise ValueError(f"JudgeConfig.max_workers={self.max_workers!r}: must be an integer >= 1")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"JudgeConfig.max_retries={self.max_retries!r}: must be an integer >= 0")
        if self.backoff_s < 0 or self.timeout_s <= 0:
            raise ValueError(
                f"JudgeConfig.backoff_s={self.backoff_s!r} / timeout_s={self.timeout_s!r}: must be >= 0 / > 0"
            )

    @property
    def endpoint(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")

    @property
    def is_loopback(self) -> bool:
        return urlparse(self.endpoint).hostname in LOOPBACK_HOSTS


@dataclass
class JudgeStats:
    """Counts for one client's lifetime (reported in step stats)."""

    requests: int = 0
    cached: int = 0
    http_requests: int = 0
    retries: int = 0
    errors: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "lock"}


def request_key(config: JudgeConfig, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """Cache key of one chat request: endpoint, model, messages and decoding params (never the key)."""
    return sha256_json(
        {
            "version": CACHE_VERSION,
            "base_url": config.endpoint,
            "model": config.model,
            "messages": list(messages),
            "params": params,
        }
    )


def _connect_failure(exc: Exception) -> str | None:
    """Why a connection could not be opened (refused, unknown host...), or None for other errors (timeouts
    and connections dropped mid-answer are worth a retry)."""
    cause = exc.__cause__ or exc.__context__
    # httpx's (or, in newer openai clients, httpx2's) ConnectError: matched by name, whichever package it is.
    if cause is None or "ConnectError" not in {c.__name__ for c in type(cause).__mro__}:
        return None
    text = str(cause)
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "unknown host"
    return text or type(cause).__name__


class JudgeClient:
    """Cached, concurrent, retrying chat-completions client for one judge.

    Args:
        config: endpoint and limits.
        cache_dir: response cache folder (default `$SELBENCH_CACHE/judge`).
    """

    def __init__(self, config: JudgeConfig, cache_dir: str | Path | None = None) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "judge"
        self.stats = JudgeStats()
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._answered = False  # has the endpoint ever answered this client (any HTTP status)?

    def _openai(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import openai

                api_key = os.environ.get(self.config.api_key_env)
                if not api_key:
                    if not self.config.is_loopback:
                        raise InputError(
                            f"no API key: set ${self.config.api_key_env} for {self.config.endpoint}",
                            field="judge-base-url",
                        )
                    api_key = "EMPTY"  # loopback servers (selbench serve, vLLM) ignore it
                self._client = openai.OpenAI(
                    base_url=self.config.endpoint,
                    api_key=api_key,
                    max_retries=0,
                    timeout=self.config.timeout_s,
                )
            return self._client

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _call(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        import openai

        transient = (
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APITimeoutError,
        )
        client = self._openai()
        delay = self.config.backoff_s
        for attempt in range(self.config.max_retries + 1):
            self.stats.add(http_requests=1)
            try:
                response = client.chat.completions.create(
                    model=self.config.model, messages=messages, **params
                )
                self._answered = True
                return response.model_dump(mode="json")
            except transient as exc:
                if isinstance(exc, openai.APIStatusError):
                    self._answered = True  # the server is there (429 / 5xx)
                refused = _connect_failure(exc)
                if refused and not self._answered:
                    # Nothing listens there (or the name does not resolve): retrying for a minute would only
                    # delay the same answer. A server that answered before gets the retries (a restart).
                    raise InputError(f"no server answers there ({refused}); is it running?",
                                     path=self.config.endpoint) from None
                if attempt == self.config.max_retries:
                    if refused:
                        raise InputError(f"the server stopped answering ({refused}) after "
                                         f"{self.config.max_retries} retries", path=self.config.endpoint) from None
                    raise
                self.stats.add(retries=1)
                log.warning(
                    "judge request failed (%s), retry %d/%d in %.1fs",
                    type(exc).__name__,
                    attempt + 1,
                    self.config.max_retries,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable: the loop returns or raises")

    def complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """One chat completion as a JSON dict, from the cache when present."""
        key = request_key(self.config, messages, params)
        path = self._cache_path(key)
        self.stats.add(requests=1)
        if path.is_file():
            self.stats.add(cached=1)
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        response = self._call(messages, params)
        usage = response.get("usage") or {}
        self.stats.add(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        write_json_atomic(
            path,
            {
                "key": key,
                "model": self.config.model,
                "base_url": self.config.endpoint,
                "params": params,
                "response": response,
            },
        )
        return response

    def judge_many(
        self,
        requests: Sequence[list[dict[str, Any]]],
        params: dict[str, Any],
        parser: Callable[[dict[str, Any]], Any],
        progress: bool = False,
    ) -> list[Any]:
        """Send every message list with the same params; parse each response (None where parsing fails).

        Request-level errors that survive the retries propagate (finished responses stay cached).
        """

        def one(messages: list[dict[str, Any]]) -> Any:
            response = self.complete(messages, params)
            try:
                return parser(response)
            except (JudgeParseError, KeyError, IndexError, TypeError, ValueError) as exc:
                self.stats.add(parse_failures=1)
                log.debug("unparseable judge response: %s", exc)
                return None

        with ThreadPoolExecutor(max_workers=self.config.max_workers) as pool:
            iterator = pool.map(one, requests)
            if progress:
                from tqdm import tqdm

                iterator = tqdm(iterator, total=len(requests), desc=f"judge {self.config.model}", leave=False)
            return list(iterator)

    def charge(self, meter: Any) -> None:
        """Add this client's (uncached) API tokens to a `CostMeter`."""
        meter.add_api_tokens(self.config.model, self.stats.prompt_tokens, self.stats.completion_tokens)
