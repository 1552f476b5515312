"""`LLMClient`: the one chat-completions client for every judge and rater, behind any OpenAI-compatible
endpoint (OpenAI, vLLM, llama.cpp's server, `selbench serve`).

* **Key.** Read from the environment (`OPENAI_API_KEY`, or the variable `LLMConfig.api_key_env` names, i.e.
  `--judge-api-key-env`) when the first request is sent, and handed to the openai client, which sends it
  only as the `Authorization: Bearer` header. It is never part of a cache key or entry, a log line, a
  manifest or a report. Loopback endpoints need none.
* **Cache.** Answers are stored per request inside the step store (`selbench.llm.cache`), keyed by endpoint,
  model, messages and sampling parameters: a re-run, a resumed run or another step asking the same question
  sends nothing.
* **Concurrency.** Requests run on a thread pool of `max_workers`; the first request that fails for good
  cancels the ones not started and wakes the ones waiting to retry.
* **Retries.** 408, 409, 429 and 5xx answers, timeouts and dropped connections are retried up to
  `max_retries` times, waiting what the server's `Retry-After` (or `retry-after-ms`) header says when it
  sends one, else `backoff_s` doubling up to 60 s (the openai client's own retries are off, so the count is
  ours). A refused connection or an unknown host is not retried: nothing listens there, so the run stops at
  once with an `EndpointUnreachable` (exit 2) naming the URL. 401/403 name the key's variable, 404 the model
  or URL (exit 2). A request refused as invalid (400/413/422: too long for the model, filtered) is one
  example's problem, not the run's: `judge_many` gives it None and counts it (`stats.rejected`).
* **Parsing.** A caller-supplied parser turns each response into a value; a parser failure yields None and
  is counted (`stats.parse_failures`), never swallowed silently.
* **Accounting.** Prompt and completion tokens from `usage` of answered requests (cache hits cost nothing)
  go to a `selbench.cost.CostMeter` through `charge()`, so dollars come from the price sheet.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from selbench.errors import InputError, SelbenchError
from selbench.llm.cache import RequestCache
from selbench.llm.cache import request_key as _request_key
from selbench.store import StepStore

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
OPENAI_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx
REJECTED_STATUS = frozenset({400, 413, 422})  # this request is invalid (too long, filtered): others may pass
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 600.0  # a server asking for longer than this is treated as asking for this


class ResponseParseError(ValueError):
    """A response could not be parsed into the value the caller wants (a verdict, a rating)."""


class EndpointUnreachable(InputError):
    """Nothing answers at the endpoint (connection refused, unknown host): a usage error, exit 2."""


class RequestRejected(InputError):
    """The endpoint refused one request as invalid (HTTP 400/413/422: too long, filtered...). In `judge_many`
    that request's result is None and counted (`stats.rejected`): one bad example does not stop a run."""


class LLMRequestError(SelbenchError):
    """A request still failed after every retry (exit 1); answers already received stay cached."""


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call the model. Validation errors name the judge's command-line flag.

    Args:
        model: model name the endpoint serves (e.g. "gpt-4o", or the name `selbench serve` reports).
        base_url: OpenAI-compatible base URL ending in /v1; None = api.openai.com.
        api_key_env: environment variable holding the API key (its name only; the key is read at request time).
        max_workers: concurrent requests.
        max_retries: retries after the first attempt on transient errors.
        backoff_s: first retry delay without a Retry-After header; doubles each retry (capped at 60 s).
        timeout_s: per-request timeout.
        cache_endpoint: what the request cache records in place of the base URL: a judge that selbench serves
            itself on a free 127.0.0.1 port passes its weights' identity, so a re-run on another port finds
            its answers (and other weights served under the same name never do).
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_workers: int = 4
    max_retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 120.0
    cache_endpoint: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InputError("must be a non-empty model name", field="judge")
        if self.base_url is not None:
            url = urlparse(self.base_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise InputError(f"{self.base_url!r} must be an http(s) URL such as http://127.0.0.1:8000/v1",
                                 field="judge-base-url")
        if not isinstance(self.api_key_env, str) or not self.api_key_env.strip():
            raise InputError("must name an environment variable", field="judge-api-key-env")
        if isinstance(self.max_workers, bool) or not isinstance(self.max_workers, int) or self.max_workers < 1:
            raise InputError(f"{self.max_workers!r} must be an integer >= 1", field="judge-workers")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InputError(f"{self.max_retries!r} must be an integer >= 0", field="judge-max-retries")
        if not self.backoff_s >= 0 or not self.timeout_s > 0:
            raise InputError(f"backoff_s={self.backoff_s!r} / timeout_s={self.timeout_s!r} must be >= 0 / > 0",
                             field="judge-timeout")

    @property
    def endpoint(self) -> str:
        return (self.base_url or OPENAI_URL).rstrip("/")

    @property
    def cache_identity(self) -> str:
        """The endpoint as the request cache knows it (`cache_endpoint`, else the base URL)."""
        return self.cache_endpoint or self.endpoint

    @property
    def is_loopback(self) -> bool:
        return urlparse(self.endpoint).hostname in LOOPBACK_HOSTS

    def read_api_key(self) -> str:
        """The key from `api_key_env` ("EMPTY" for a loopback endpoint without one); InputError when a remote
        endpoint has none. Read at request time and handed to the HTTP client only: never store the result."""
        api_key = os.environ.get(self.api_key_env)
        if api_key:
            return api_key
        if not self.is_loopback:
            raise InputError(f"no API key: set ${self.api_key_env} for {self.endpoint}", field="judge-api-key-env")
        return "EMPTY"  # loopback servers (selbench serve, vLLM) ignore it


@dataclass
class LLMStats:
    """Counts over one client's lifetime (reported in step stats; never holds the key).

    Args:
        requests: chat requests asked of the client (cache hits included).
        cached: answered from the request cache.
        http_requests: HTTP requests sent (retries included).
        retries: retried attempts.
        parse_failures: answers the caller's parser rejected.
        rejected: requests the endpoint refused as invalid (HTTP 400/413/422), skipped by `judge_many`.
        prompt_tokens / completion_tokens: `usage` of the answers received over HTTP.
        backoff_seconds: time spent waiting before retries (Retry-After or backoff).
    """

    requests: int = 0
    cached: int = 0
    http_requests: int = 0
    retries: int = 0
    parse_failures: int = 0
    rejected: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    backoff_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "lock"}


def request_key(config: LLMConfig, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """Cache key of one chat request to `config`'s endpoint and model (never the API key)."""
    return _request_key(config.cache_identity, config.model, messages, params)


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds a 429/503 answer asks to wait: `retry-after-ms`, `Retry-After` in seconds or as an HTTP date.

    >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after-ms": "1500"})
    (2.0, 1.5)
    >>> retry_after_seconds({}) is None
    True
    """
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, min(float(value) * scale, MAX_RETRY_AFTER_S))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_AFTER_S))
    return None


def _refused(exc: BaseException) -> str | None:
    """Why a connection error means nothing listens there (refused, unknown host), or None if it may pass."""
    import httpx

    seen: BaseException = exc
    for _ in range(8):  # walk the cause chain (openai wraps httpx, which wraps the socket error)
        seen = seen.__cause__ or seen.__context__
        if seen is None:
            return None
        if isinstance(seen, (ConnectionRefusedError, httpx.ConnectError)):
            return str(seen) or type(seen).__name__
    return None


class LLMClient:
    """Cached, concurrent, retrying chat-completions client for one model at one endpoint.

    Args:
        config: endpoint and limits.
        cache_dir: the request cache folder (default: the step store's, see `selbench.llm.cache`).
        store: the step store holding the default cache (default: `$SELBENCH_CACHE`).
    """

    def __init__(self, config: LLMConfig, cache_dir: str | Path | None = None, store: StepStore | None = None) -> None:
        self.config = config
        self.cache = RequestCache(cache_dir) if cache_dir is not None else RequestCache.default(
            config.cache_identity, config.model, store)
        self.stats = LLMStats()
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._abort = threading.Event()

    @property
    def cache_dir(self) -> Path:
        return self.cache.folder

    def openai_client(self) -> Any:
        """The underlying `openai.OpenAI` (built on first use; the key is read from the environment here)."""
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.config.endpoint, api_key=self.config.read_api_key(), max_retries=0,
                    timeout=self.config.timeout_s,
                )
            return self._client

    def check(self) -> None:
        """Fail now (InputError) if a request could not even be sent: no key for a remote endpoint.

        Also builds the client here, in the calling thread: importing openai/httpx for the first time from
        several worker threads at once can see a half-initialised module.
        """
        self.config.read_api_key()
        import httpx  # noqa: F401

        self.openai_client()

    def list_models(self) -> list[str]:
        """`GET /models`: the model names the endpoint serves."""
        import openai

        try:
            return [m.id for m in self.openai_client().models.list()]
        except openai.APIConnectionError as exc:
            raise EndpointUnreachable(f"no OpenAI-compatible server answers there ({_refused(exc) or exc})",
                                      path=self.config.endpoint, field="judge-base-url") from None
        except openai.APIStatusError as exc:
            raise InputError(f"GET /models answered HTTP {exc.status_code}: not an OpenAI-compatible API root "
                             "(the base URL usually ends in /v1)", path=self.config.endpoint,
                             field="judge-base-url") from None

    # ------------------------------------------------------------------------------------ one request
    def _wait(self, seconds: float) -> None:
        self.stats.add(backoff_seconds=seconds)
        if self._abort.wait(seconds):
            raise LLMRequestError(f"{self.config.endpoint}: stopped: another request failed")

    def _call(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        import openai

        client = self.openai_client()
        delay = self.config.backoff_s
        endpoint = self.config.endpoint
        for attempt in range(self.config.max_retries + 1):
            if self._abort.is_set():
                raise LLMRequestError(f"{endpoint}: stopped: another request failed")
            self.stats.add(http_requests=1)
            wait: float | None = None
            try:
                response = client.chat.completions.create(model=self.config.model, messages=messages, **params)
                return response.model_dump(mode="json")
            except openai.APIConnectionError as exc:
                refused = _refused(exc)
                if refused is not None:
                    raise EndpointUnreachable(f"cannot connect ({refused}): is the server running?",
                                              path=endpoint, field="judge-base-url") from None
                reason = "timeout" if isinstance(exc, openai.APITimeoutError) else f"connection lost ({exc})"
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status in (401, 403):
                    raise InputError(f"HTTP {status}: the endpoint refused the key in ${self.config.api_key_env}",
                                     path=endpoint, field="judge-api-key-env") from None
                if status in REJECTED_STATUS:
                    raise RequestRejected(f"HTTP {status} for model {self.config.model!r}: {exc.message}"[:500],
                                          path=endpoint, field="judge") from None
                if status not in RETRY_STATUS and status < 500:
                    field_name = "judge" if status == 404 else "judge-base-url"
                    raise InputError(f"HTTP {status} for model {self.config.model!r}: {exc.message}"[:500],
                                     path=endpoint, field=field_name) from None
                reason = f"HTTP {status}"
                wait = retry_after_seconds(getattr(exc.response, "headers", None))
            if attempt == self.config.max_retries:
                raise LLMRequestError(f"{endpoint}: {reason} after {attempt + 1} attempts (model "
                                      f"{self.config.model!r}); finished answers are cached, re-run to resume")
            seconds = min(delay, MAX_BACKOFF_S) if wait is None else wait
            self.stats.add(retries=1)
            log.warning("%s: %s, retry %d/%d in %.1fs", endpoint, reason, attempt + 1, self.config.max_retries,
                        seconds)
            self._wait(seconds)
            delay = min(delay * 2, MAX_BACKOFF_S)
        raise AssertionError("unreachable: the loop returns or raises")

    def complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """One chat completion as a JSON dict, from the cache when present."""
        key = request_key(self.config, messages, params)
        self.stats.add(requests=1)
        found = self.cache.get(key)
        if found is not None:
            self.stats.add(cached=1)
            return found
        response = self._call(messages, params)
        usage = response.get("usage") or {}
        self.stats.add(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
        self.cache.put(key, endpoint=self.config.cache_identity, model=self.config.model, params=params, response=response)
        return response

    # -------------------------------------------------------------------------------- many requests
    def judge_many(
        self,
        requests: Sequence[list[dict[str, Any]]],
        params: dict[str, Any],
        parser: Callable[[dict[str, Any]], Any],
        progress: bool = False,
        desc: str | None = None,
    ) -> list[Any]:
        """Send every message list with the same params; parse each response (None where parsing fails or
        the endpoint rejected the request).

        Results come back in the requests' order. The first error that survives its retries propagates
        after cancelling the requests not yet started (finished answers stay cached).
        """

        def one(messages: list[dict[str, Any]]) -> Any:
            try:
                response = self.complete(messages, params)
            except RequestRejected as exc:
                self.stats.add(rejected=1)
                log.warning("request rejected, counted and skipped: %s", exc.message)
                return None
            try:
                return parser(response)
            except (ResponseParseError, KeyError, IndexError, TypeError, ValueError) as exc:
                self.stats.add(parse_failures=1)
                log.debug("unparseable response: %s", exc)
                return None

        if not requests:
            return []
        self.check()
        self._abort.clear()
        results: list[Any] = [None] * len(requests)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc=desc or self.config.model, unit="req", leave=False, disable=None)
        with ThreadPoolExecutor(max_workers=self.config.max_workers) as pool:
            futures = {pool.submit(one, messages): i for i, messages in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                self._abort.set()
                for future in futures:
                    future.cancel()
                raise
            finally:
                if bar is not None:
                    bar.close()
        return results

    def charge(self, meter: Any) -> None:
        """Add this client's API tokens (answers received over HTTP only) to a `CostMeter`."""
        meter.add_api_tokens(self.config.model, self.stats.prompt_tokens, self.stats.completion_tokens)
