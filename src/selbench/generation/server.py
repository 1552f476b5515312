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

One model, one lock: concurrent requests queue (FastAPI runs sync routes in a thread pool), so a
client with N workers sees N requests in flight but the model serves them one at a time.
`app.state.counts` counts requests per route (tests use it to prove that cached judge calls skip HTTP).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from selbench.generation.prompt_logprobs import prompt_logprobs_response, wants_prompt_logprobs

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


class LocalModel:
    """Greedy or sampled generation of one prompt with per-token log-probabilities, under a lock."""

    def __init__(self, model: Any, tokenizer: Any, name: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.lock = threading.Lock()

    def chat_prompt_ids(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
        extra = {"tools": tools} if tools else {}
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def text_prompt_ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def complete(self, prompt_ids: list[int], fields: dict[str, Any], top_k: int) -> dict[str, Any]:
        """Generate after `prompt_ids`. Returns text, finish_reason, per-token ids/logprobs/top lists."""
        import torch

        from selbench.generation.hf import HFBackend, stop_token_ids

        stops = stop_token_ids(self.model, self.tokenizer)  # the HF backend's stop set: EOS and chat end tokens
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        do_sample = fields["temperature"] > 0
        kwargs: dict[str, Any] = {"do_sample": do_sample, "max_new_tokens": fields["max_tokens"]}
        if fields.get("min_tokens"):  # stop tokens are suppressed until then, as the HF backend does
            kwargs["min_new_tokens"] = fields["min_tokens"]
        if do_sample:
            kwargs.update(temperature=fields["temperature"], top_p=fields["top_p"], top_k=0)
        with self.lock, torch.no_grad():
            if fields["seed"] is not None:
                torch.manual_seed(fields["seed"])
            input_ids = torch.tensor([prompt_ids], dtype=torch.long)
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                eos_token_id=stops or eos,
                pad_token_id=pad,
                return_dict_in_generate=True,
                output_logits=True,
                **kwargs,
            )
        new_ids = out.sequences[0, len(prompt_ids) :].tolist()
        logprobs = [torch.log_softmax(step[0].float(), dim=-1) for step in out.logits]
        kept = HFBackend._until_stop(new_ids, stops)
        finish = "stop" if len(kept) < len(new_ids) else "length"
        new_ids = kept
        tokens = [self.tokenizer.decode([t]) for t in new_ids]
        token_logprobs = [float(logprobs[i][t]) for i, t in enumerate(new_ids)]
        tops: list[list[tuple[str, float]]] = []
        for i in range(len(new_ids)):
            if top_k:
                values, ids = torch.topk(logprobs[i], top_k)
                tops.append(
                    [(self.tokenizer.decode([int(j)]), float(v)) for v, j in zip(values, ids, strict=True)]
                )
            else:
                tops.append([])
        # The message text is decoded as a whole without special tokens, as the HF backend does; the
        # per-token strings serve the logprobs.
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        joined = "".join(tokens)
        # Stop strings: cut the text and the token lists at the first token that completes a stop string.
        cut_tokens = len(tokens)
        for stop in fields["stop"]:
            idx = text.find(stop)
            if idx != -1:
                finish = "stop"
                text = text[:idx]
            idx = joined.find(stop)
            if idx != -1:
                length = 0
                for j, tok in enumerate(tokens):
                    length += len(tok)
                    if length > idx:
                        cut_tokens = min(cut_tokens, j + 1)
                        break
        return {
            "text": text,
            "finish_reason": finish,
            "tokens": tokens[:cut_tokens],
            "token_logprobs": token_logprobs[:cut_tokens],
            "top": tops[:cut_tokens],
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(new_ids),
        }


def _tool_request(body: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(tools for the chat template, the function a call must name or "" for any), or (None, None) when the
    request asks for no tool call. Raises ValueError naming the field."""
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto" if tools else "none")
    if not tools or choice == "none":
        return None, None
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance((t.get("function") or {}).get("name"), str) for t in tools
    ):
        raise ValueError("field 'tools': must be a list of {type: function, function: {name, parameters}}")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name not in {t["function"]["name"] for t in tools}:
            raise ValueError(f"field 'tool_choice': {name!r} is not one of the tools")
        return tools, name
    if choice not in ("auto", "required"):
        raise ValueError(f"field 'tool_choice': {choice!r} must be none, auto, required or a function")
    return tools, ""


def _tool_call(text: str, tools: list[dict[str, Any]], forced: str) -> dict[str, Any] | None:
    """The function call in a completion, read as tool-calling models write it: the first JSON object in
    the text, either `{"name": ..., "arguments": {...}}` or (with a forced function) the arguments alone.
    None when the text holds no such object (the caller then returns plain content)."""
    import json

    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        names = {t["function"]["name"] for t in tools}
        if isinstance(obj.get("name"), str) and obj["name"] in names:
            args = obj.get("arguments", obj.get("parameters", {}))
            name = obj["name"]
        elif forced:
            args, name = obj, forced
        else:
            continue
        if forced and name != forced:
            continue
        return {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
        }
    return None


def _top_k(value: Any, field: str) -> int:
    if value is None or value is False:
        return 0
    if not isinstance(value, int) or not 0 <= value <= MAX_TOP_LOGPROBS:
        raise ValueError(f"field '{field}': {value!r} must be an integer in [0, {MAX_TOP_LOGPROBS}]")
    return value


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def create_app(model: Any, tokenizer: Any, model_name: str) -> Any:
    """The FastAPI app serving `model` as `model_name` (see the module docstring for the routes)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    local = LocalModel(model, tokenizer, model_name)
    app = FastAPI(title=f"selbench serve: {model_name}")
    app.state.counts = {"models": 0, "chat": 0, "completions": 0}
    app.state.local = local

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(
            status_code=status, content={"error": {"message": message, "type": "invalid_request_error"}}
        )

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        app.state.counts["models"] += 1
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "selbench"}]}

    @app.post("/v1/chat/completions")
    def chat_completions(body: dict[str, Any]) -> Any:
        app.state.counts["chat"] += 1
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
            return error(400, str(exc))
        result = local.complete(prompt_ids, fields, top_k)
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
                    for tok, lp, top in zip(
                        result["tokens"], result["token_logprobs"], result["top"], strict=True
                    )
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

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> Any:
        app.state.counts["completions"] += 1
        if wants_prompt_logprobs(body):  # echo + max_tokens 0: score the prompt (generation/prompt_logprobs.py)
            try:
                return prompt_logprobs_response(local, body, model_name)
            except ValueError as exc:
                return error(400, str(exc))
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
            return error(400, str(exc))
        choices = []
        n_prompt = n_completion = 0
        for index, prompt in enumerate(prompts):
            result = local.complete(local.text_prompt_ids(prompt), fields, top_k)
            n_prompt += result["prompt_tokens"]
            n_completion += result["completion_tokens"]
            logprobs = None
            if body.get("logprobs") is not None:
                offsets, pos = [], len(prompt)
                for tok in result["tokens"]:
                    offsets.append(pos)
                    pos += len(tok)
                logprobs = {
                    "tokens": result["tokens"],
                    "token_logprobs": result["token_logprobs"],
                    "top_logprobs": [dict(top) for top in result["top"]],
                    "text_offset": offsets,
                }
            choices.append(
                {
                    "index": index,
                    "text": result["text"],
                    "logprobs": logprobs,
                    "finish_reason": result["finish_reason"],
                }
            )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": n_prompt,
                "completion_tokens": n_completion,
                "total_tokens": n_prompt + n_completion,
            },
        }

    @app.exception_handler(Exception)
    async def internal_error(
        request: Request, exc: Exception
    ) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("request to %s failed", request.url.path)
        return error(500, f"{type(exc).__name__}: {exc}")

    return app


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
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
