"""An OpenAI-compatible HTTP server over one local 🤗 causal LM (`selbench serve`).

Routes (the subset of the OpenAI API that judges and evaluators use):
`GET /v1/models`, `POST /v1/chat/completions` (messages through the model's chat template) and
`POST /v1/completions` (raw prompt text; with `echo: true, max_tokens: 0` the prompt's own token
log-probabilities, as vLLM serves them: `generation/prompt_logprobs.py`), with `max_tokens`, `temperature` (0 = greedy; default 1.0 as
in the OpenAI API), `top_p`, `stop`, `seed`, vLLM's `min_tokens`, and log-probabilities in OpenAI's response shapes:
chat `choices[0].logprobs.content[i] = {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`
(request `logprobs: true, top_logprobs: k`); completions `choices[0].logprobs = {tokens,
token_logprobs, top_logprobs: [{token: logprob}], text_offset}` (request `logprobs: k`).
Log-probabilities are the model's log-softmax before temperature / top-p, as OpenAI reports them.

Tool calls (`tools`, `tool_choice`): the tools are given to the chat template and the completion is read
as tool-calling models write calls, the first JSON object in it (`{"name", "arguments"}`, or the arguments
alone when `tool_choice` forces a function); it is returned as `message.tool_calls`, else as plain content.
Unlike OpenAI and vLLM there is no schema-constrained decoding: a small model may answer off-format, which
the client then counts as unparsed.

One model, one lock: concurrent requests queue (each generation runs in a worker thread), so a client
with N workers sees N requests in flight but the model serves them one at a time. No request can stall
the others (`selbench.generation.server_http`): prompts longer than the model's context are refused and
`max_tokens`/`min_tokens` capped at the room left, bodies are size-limited, a generation stops at the
next token when its client disconnects or the server gets SIGTERM, a model name other than the served
one is a 404, and an optional API key guards every route. Errors come in OpenAI's error shape.
`app.state.counts` counts requests per route (tests use it to prove that cached judge calls skip HTTP)
and the generations cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

# FastAPI reads route annotations at runtime (this module postpones them), so Request is a module name;
# only `selbench serve` and tests import this module.
from starlette.requests import Request

from selbench.generation.local_model import LocalModel
from selbench.generation.prompt_logprobs import prompt_logprobs_response, wants_prompt_logprobs
from selbench.generation.server_http import (
    ApiError,
    Cancelled,
    ServeOptions,
    check_auth,
    check_model,
    fit_context,
    model_context_length,
    read_json_body,
    run_cancellable,
    text_completion,
    text_offsets,
)
from selbench.generation.tool_calls import tool_call as _tool_call
from selbench.generation.tool_calls import tool_request as _tool_request

__all__ = ["BackgroundServer", "LocalModel", "ServeOptions", "create_app", "run_server"]

log = logging.getLogger(__name__)

MAX_TOP_LOGPROBS = 20


def _request_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the decoding fields shared by both routes; raise ValueError naming the field."""
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = 16 if max_tokens is None else max_tokens
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"field 'max_tokens': {max_tokens!r} must be an integer >= 1")
    temperature = body.get("temperature")
    temperature = 1.0 if temperature is None else temperature
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"field 'temperature': {temperature!r} must be a number >= 0")
    top_p = body.get("top_p")
    top_p = 1.0 if top_p is None else top_p
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"field 'top_p': {top_p!r} must be in (0, 1]")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else list(stop)
    if any(not isinstance(s, str) or not s for s in stop):
        raise ValueError(f"field 'stop': {stop!r} must be a string or a list of non-empty strings")
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"field 'seed': {seed!r} must be an integer")
    min_tokens = body.get("min_tokens", 0)  # vLLM's extension field
    if not isinstance(min_tokens, int) or not 0 <= min_tokens <= max_tokens:
        raise ValueError(f"field 'min_tokens': {min_tokens!r} must be an integer in [0, max_tokens]")
    if body.get("n", 1) != 1:
        raise ValueError(f"field 'n': {body.get('n')!r} is not supported (only 1)")
    return {
        "max_tokens": max_tokens,
        "temperature": float(temperature),
        "top_p": float(top_p),
        "stop": stop,
        "seed": seed,
        "min_tokens": min_tokens,
    }


def _top_k(value: Any, field: str) -> int:
    if value is None or value is False:
        return 0
    if not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise ValueError(f"field '{field}': {value!r} must be an integer in [0, {MAX_TOP_LOGPROBS}]")
    return value


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def create_app(model: Any, tokenizer: Any, model_name: str, options: ServeOptions | None = None) -> Any:
    """The FastAPI app serving `model` as `model_name` (see the module docstring for the routes).

    `options` sets the limits and the API key (`ServeOptions`; default: the model's context, 4 MiB bodies,
    no key). `app.state.options.shutdown` stops running generations; `run_server` sets it on SIGTERM.
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    options = options or ServeOptions()
    context = options.context or model_context_length(model, tokenizer)
    local = LocalModel(model, tokenizer, model_name, shutdown=options.shutdown)
    app = FastAPI(title=f"selbench serve: {model_name}")
    app.state.counts = {"models": 0, "chat": 0, "completions": 0, "cancelled": 0}
    app.state.local = local
    app.state.options = options
    app.state.context = context

    def error(exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.body)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(ApiError(400, f"invalid request: {exc.errors()}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}"))

    async def guarded(request: Request) -> dict[str, Any]:
        """Auth, body limit, JSON object, served model: the checks every POST passes first."""
        check_auth(request.headers, options.api_key)
        body = await read_json_body(request, options.max_body_bytes)
        check_model(body, model_name)
        return body

    async def generate(request: Request, work: Any) -> Any:
        try:
            return await run_cancellable(request, work, options)
        except Cancelled:
            app.state.counts["cancelled"] += 1
            raise ApiError(503, "generation cancelled: the client left or the server is shutting down",
                           type_="server_error") from None

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        check_auth(request.headers, options.api_key)
        app.state.counts["models"] += 1
        return {"object": "list", "data": [_model_card(model_name, context)]}

    @app.get("/v1/models/{name:path}")
    async def retrieve_model(name: str, request: Request) -> dict[str, Any]:
        check_auth(request.headers, options.api_key)
        check_model({"model": name}, model_name)
        return _model_card(model_name, context)

    def chat_prompt(body: dict[str, Any]) -> tuple[dict[str, Any], list[int], int, Any, Any, bool]:
        try:
            fields = _request_fields(body)
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ValueError("field 'messages': must be a non-empty list of {role, content}")
            for i, msg in enumerate(messages):
                if not isinstance(msg, dict) or not isinstance(msg.get("content"), str) or "role" not in msg:
                    raise ValueError(f"field 'messages[{i}]': must be {{role, content: str}}")
            want_logprobs = bool(body.get("logprobs"))
            top_k = _top_k(body.get("top_logprobs"), "top_logprobs") if want_logprobs else 0
            tools, forced = _tool_request(body)
            prompt_ids = local.chat_prompt_ids(
                [{"role": m["role"], "content": m["content"]} for m in messages], tools
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return fit_context(len(prompt_ids), fields, context), prompt_ids, top_k, tools, forced, want_logprobs

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        app.state.counts["chat"] += 1
        body = await guarded(request)
        # Templating and tokenizing a body of up to max_body_bytes is work: off the event loop.
        fields, prompt_ids, top_k, tools, forced, want_logprobs = await asyncio.to_thread(chat_prompt, body)
        result = await generate(request, lambda cancel: local.complete(prompt_ids, fields, top_k, cancel))
        return _chat_response(model_name, result, tools, forced, want_logprobs)

    def text_prompts(body: dict[str, Any]) -> tuple[list[tuple[str, list[int], dict[str, Any]]], int]:
        try:
            fields = _request_fields(body)
            prompts = body.get("prompt")
            prompts = [prompts] if isinstance(prompts, str) else prompts
            if not isinstance(prompts, list) or not prompts or any(not isinstance(p, str) for p in prompts):
                raise ValueError("field 'prompt': must be a string or a non-empty list of strings")
            top_k = _top_k(body.get("logprobs"), "logprobs")
            if body.get("echo"):
                raise ValueError("field 'echo': not supported")
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        rows = []
        for index, prompt in enumerate(prompts):
            ids = local.text_prompt_ids(prompt)
            param = "prompt" if len(prompts) == 1 else f"prompt[{index}]"
            rows.append((prompt, ids, fit_context(len(ids), fields, context, param=param)))
        return rows, top_k

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        app.state.counts["completions"] += 1
        body = await guarded(request)
        if wants_prompt_logprobs(body):  # echo + max_tokens 0: score the prompt (generation/prompt_logprobs.py)

            def score(cancel: threading.Event) -> dict[str, Any]:
                try:
                    return prompt_logprobs_response(local, body, model_name, context=context)
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None

            return await generate(request, score)
        rows, top_k = await asyncio.to_thread(text_prompts, body)

        def work(cancel: threading.Event) -> list[dict[str, Any]]:
            return [local.complete(ids, fields, top_k, cancel) for _, ids, fields in rows]

        results = await generate(request, work)
        return _completions_response(model_name, [p for p, _, _ in rows], results, body.get("logprobs") is not None)

    @app.exception_handler(Exception)
    async def internal_error(
        request: Request, exc: Exception
    ) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("request to %s failed", request.url.path)
        return error(ApiError(500, f"{type(exc).__name__}: {exc}", type_="server_error"))

    return app


def _model_card(name: str, context: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "owned_by": "selbench", "max_model_len": context}


def _chat_response(
    model_name: str, result: dict[str, Any], tools: Any, forced: Any, want_logprobs: bool
) -> dict[str, Any]:
    call = _tool_call(result["text"], tools, forced) if tools else None
    logprobs = None
    if want_logprobs:
        logprobs = {
            "content": [
                {
                    "token": tok,
                    "logprob": lp,
                    "bytes": _bytes(tok),
                    "top_logprobs": [{"token": t, "logprob": v, "bytes": _bytes(t)} for t, v in top],
                }
                for tok, lp, top in zip(result["tokens"], result["token_logprobs"], result["top"], strict=True)
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result["text"]}
                if call is None
                else {"role": "assistant", "content": None, "tool_calls": [call]},
                "logprobs": logprobs,
                "finish_reason": result["finish_reason"] if call is None else "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": result["prompt_tokens"],
            "completion_tokens": result["completion_tokens"],
            "total_tokens": result["prompt_tokens"] + result["completion_tokens"],
        },
    }


def _completions_response(
    model_name: str, prompts: list[str], results: list[dict[str, Any]], want_logprobs: bool
) -> dict[str, Any]:
    choices = []
    for index, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
        logprobs = None
        if want_logprobs:
            logprobs = {
                "tokens": result["tokens"],
                "token_logprobs": result["token_logprobs"],
                "top_logprobs": [dict(top) for top in result["top"]],
                "text_offset": text_offsets(result["tokens"], start=len(prompt)),
            }
        choices.append(
            {"index": index, "text": result["text"], "logprobs": logprobs, "finish_reason": result["finish_reason"]}
        )
    return text_completion(model_name, choices, sum(r["prompt_tokens"] for r in results),
                           sum(r["completion_tokens"] for r in results))


def run_server(app: Any, host: str, port: int) -> None:
    """Serve `app` with uvicorn in this (main) thread until SIGTERM/SIGINT.

    On the signal the app's `options.shutdown` is set first, so a running generation ends at its next token
    (its client gets 503) and uvicorn's graceful shutdown does not wait for it.
    """
    import uvicorn

    shutdown = app.state.options.shutdown

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            shutdown.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
    _Server(config).run()


class BackgroundServer:
    """Run an app with uvicorn in a daemon thread on 127.0.0.1 (tests, in-process judges).

    Args:
        app: the ASGI app.
        host: interface to bind (default loopback only).
        port: 0 picks a free port; read `.port` / `.base_url` after `start()`.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        import socket

        import uvicorn

        if self.port == 0:
            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + timeout
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        options = getattr(getattr(self.app, "state", None), "options", None)
        if options is not None:  # end running generations, as run_server does on SIGTERM
            options.shutdown.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
