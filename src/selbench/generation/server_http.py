"""The HTTP guard rails of `selbench serve`: limits, authentication, OpenAI-shaped errors, cancellation.

Every route goes through the same steps, in this order, so that one request can neither stall the server
nor get an answer it should not:

1. `check_auth`: with an API key configured, `Authorization: Bearer <key>` or 401 (`invalid_api_key`).
2. `read_json_body`: at most `ServeOptions.max_body_bytes` (413 from the Content-Length header, or while
   reading a chunked body), a JSON object (400 for malformed or too deeply nested JSON, where FastAPI's
   own validation would answer 422 in its own shape).
3. `check_model`: the `model` field names the served model (404 `model_not_found`, as OpenAI answers);
   a request without one gets the served model, as vLLM does.
4. `fit_context`: a prompt longer than the model's context is a 400 (`context_length_exceeded`), and
   `max_tokens`/`min_tokens` are capped at the room the context leaves, so no request generates past
   the model's positions or for ever. A prompt that fills the context exactly is accepted only when no
   new token is asked for (`max_new=0`, e.g. prompt-logprob requests).
5. `run_cancellable`: the model runs in a worker thread with a `threading.Event` that the generation
   loop checks after every token; it is set when the client disconnects or the server shuts down
   (`ServeOptions.shutdown`, set on SIGTERM/SIGINT by `run_server`).

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, so OpenAI clients raise
their typed errors (`BadRequestError`, `AuthenticationError`, `NotFoundError`) with our message.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a full 8k-token prompt is ~40 KB of text; tools and escaping fit


@dataclass(frozen=True)
class ServeOptions:
    """Limits and access control of one served model.

    Args:
        context: the model's context in tokens (prompt + new tokens); None = read from the model config
            (`model_context_length`).
        max_body_bytes: largest request body accepted; larger ones get 413.
        api_key: when set, every request must carry `Authorization: Bearer <api_key>` (401 otherwise).
            Read from the environment by the CLI (`--api-key-env`), never logged.
        poll_s: how often a running request checks whether its client is still connected.
        shutdown: set when the server stops; running generations end at their next token.
    """

    context: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    api_key: str | None = field(default=None, repr=False)
    poll_s: float = 0.1
    shutdown: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.context is not None and (not isinstance(self.context, int) or self.context < 1):
            raise ValueError(f"ServeOptions.context={self.context!r}: must be an integer >= 1")
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise ValueError(f"ServeOptions.max_body_bytes={self.max_body_bytes!r}: must be an integer >= 1")
        if self.api_key is not None and not self.api_key:
            raise ValueError("ServeOptions.api_key: must be a non-empty string or None")
        if not self.poll_s > 0:
            raise ValueError(f"ServeOptions.poll_s={self.poll_s!r}: must be > 0")


class ApiError(Exception):
    """A request refused with an HTTP status and OpenAI's error body."""

    def __init__(
        self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


class Cancelled(Exception):
    """The generation stopped because its client left or the server is shutting down."""


def bind_warning(host: str, api_key: str | None) -> str | None:
    """The warning to log when `host` exposes the model beyond this machine without an API key.

    >>> bind_warning("127.0.0.1", None) is None
    True
    >>> bind_warning("0.0.0.0", "k") is None
    True
    >>> bind_warning("::1", None) is None
    True
    >>> "--api-key-env" in bind_warning("0.0.0.0", None)
    True
    """
    if api_key or _is_loopback(host):
        return None
    return (
        f"serving on {host}, reachable beyond this machine, without an API key: anyone who can reach the "
        "port can use the model; pass --api-key-env NAME or bind 127.0.0.1"
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def model_context_length(model: Any, tokenizer: Any = None) -> int:
    """The context (positions) of a 🤗 causal LM: `max_position_embeddings` or its older names, else the
    tokenizer's `model_max_length` when that is a real number. Raises ValueError when neither says."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10**7:  # transformers' "unset" is 1e30
        return value
    raise ValueError("the model config states no context length; pass one (`selbench serve --max-context N`)")


def check_auth(headers: Any, api_key: str | None) -> None:
    """401 unless the request carries `Authorization: Bearer <api_key>` (no check without a key)."""
    if api_key is None:
        return
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(401, "missing or incorrect API key (send Authorization: Bearer <key>)",
                       type_="authentication_error", code="invalid_api_key")


async def read_json_body(request: Any, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 past `max_bytes`, 400 for anything but a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > max_bytes):
        raise ApiError(413, f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes",
                       code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body exceeds the limit of {max_bytes} bytes", code="request_too_large")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def check_model(body: dict[str, Any], served: str) -> None:
    """404 when the request names a model other than the served one (absent = the served one)."""
    name = body.get("model")
    if name is None or name == served:
        return
    if not isinstance(name, str):
        raise ApiError(400, f"field 'model': {name!r} must be a string", param="model")
    raise ApiError(404, f"the model {name!r} does not exist here; this server serves {served!r}",
                   param="model", code="model_not_found")


def fit_context(n_prompt: int, fields: dict[str, Any], context: int, *, param: str = "messages") -> dict[str, Any]:
    """`fields` with `max_tokens` and `min_tokens` capped at the room `context` leaves after the prompt.

    Raises ApiError (400, `context_length_exceeded`) when the prompt does not fit, or fills the context
    while new tokens are asked for.

    >>> fit_context(10, {"max_tokens": 10**9, "min_tokens": 10**9}, 64)
    {'max_tokens': 54, 'min_tokens': 54}
    >>> fit_context(64, {"max_tokens": 0, "min_tokens": 0}, 64)
    {'max_tokens': 0, 'min_tokens': 0}
    """
    wanted = fields["max_tokens"]
    if n_prompt > context or (n_prompt == context and wanted > 0):
        raise ApiError(
            400,
            f"field '{param}': this model's context is {context} tokens; the prompt has {n_prompt} tokens"
            + (" and leaves no room for new tokens" if n_prompt == context else ""),
            param=param, code="context_length_exceeded",
        )
    room = context - n_prompt
    capped = min(wanted, room)
    return {**fields, "max_tokens": capped, "min_tokens": min(fields.get("min_tokens", 0), capped)}


async def run_cancellable(request: Any, work: Callable[[threading.Event], T], options: ServeOptions) -> T:
    """`work(cancel)` in a worker thread; `cancel` is set when the client disconnects or the server stops.

    The event loop stays free meanwhile (other routes answer, the disconnect is noticed). `work` must check
    `cancel` often (the generation loop does after every token) and raise `Cancelled` when it is set.
    """
    cancel = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(work, cancel))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=options.poll_s)
            if done:
                return task.result()
            if options.shutdown.is_set() or await request.is_disconnected():
                cancel.set()
    except asyncio.CancelledError:
        cancel.set()
        raise


def text_offsets(tokens: list[str], start: int = 0) -> list[int]:
    """Character offset of each token in the text they spell from `start` (OpenAI's `text_offset`).

    >>> text_offsets(["ab", "c", "de"], start=3)
    [3, 5, 6]
    """
    offsets, pos = [], start
    for token in tokens:
        offsets.append(pos)
        pos += len(token)
    return offsets


def text_completion(model_name: str, choices: list[dict[str, Any]], n_prompt: int, n_completion: int) -> dict[str, Any]:
    """The `/v1/completions` response envelope around `choices`, with its token usage."""
    import time
    import uuid

    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_completion, "total_tokens": n_prompt + n_completion},
    }
