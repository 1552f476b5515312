"""`selbench serve` cannot be stalled or misused by one request (issue 10, item 1).

Each bad request goes over real HTTP to a server on 127.0.0.1 and is followed by a valid request that
must still be answered. Models are tiny random-init Llamas whose context is set in their config.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from selbench.generation.server import BackgroundServer, ServeOptions, create_app

SHORT_CONTEXT = 64


def _valid_request_works(base_url: str, api_key: str = "unused") -> None:
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
    resp = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=3, temperature=0
    )
    assert resp.usage.completion_tokens >= 1 or resp.choices[0].finish_reason == "stop"


def _wait_for(predicate, what: str, limit_s: float = 120.0) -> None:
    deadline = time.time() + limit_s
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def short_server():
    """A tiny model with a 64-token context behind a server with a 20 kB body limit."""
    from selbench.assets.tiny import build_tiny_model

    model, tok = build_tiny_model()
    model.config.max_position_embeddings = SHORT_CONTEXT
    app = create_app(model, tok, "tiny", ServeOptions(max_body_bytes=20_000))
    with BackgroundServer(app) as server:
        yield app, server, openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def long_context_model_dir(tmp_path_factory) -> Path:
    """A saved tiny model whose context (10^6 tokens) is longer than any test would wait for."""
    from selbench.assets.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-long-context")
    model, tok = build_tiny_model()
    model.config.max_position_embeddings = 10**6
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_max_and_min_tokens_are_capped_at_the_context(short_server):
    app, server, client = short_server
    assert app.state.context == SHORT_CONTEXT
    resp = client.completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=10**9, temperature=0, extra_body={"min_tokens": 10**9}
    )
    assert resp.usage.prompt_tokens + resp.usage.completion_tokens == SHORT_CONTEXT
    assert resp.choices[0].finish_reason == "length"
    assert [m["max_model_len"] for m in httpx.get(server.base_url + "/models").json()["data"]] == [SHORT_CONTEXT]
    _valid_request_works(server.base_url)


def test_a_prompt_longer_than_the_context_is_400(short_server):
    _, server, client = short_server
    long_prompt = "hello " * 2000  # ~2000 tokens, under the body limit
    with pytest.raises(openai.BadRequestError, match="context is 64 tokens") as info:
        client.completions.create(model="tiny", prompt=long_prompt, max_tokens=1)
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="context is 64 tokens"):
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": long_prompt}])
    with pytest.raises(openai.BadRequestError, match=r"prompt\[1\]"):
        client.completions.create(model="tiny", prompt=["short", long_prompt], max_tokens=1)
    _valid_request_works(server.base_url)


def test_a_100k_token_prompt_is_refused_before_generation(tiny_model):
    model, tok = tiny_model
    with BackgroundServer(create_app(model, tok, "tiny")) as server:  # default limits: 4 MiB, context 2048
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)
        with pytest.raises(openai.BadRequestError, match=r"context is 2048 tokens; the prompt has 100\d\d\d tokens"):
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hello " * 100_000}], max_tokens=1
            )
        _valid_request_works(server.base_url)


def test_malformed_json_is_400_in_openai_error_shape(short_server):
    _, server, _ = short_server
    url = server.base_url + "/chat/completions"
    for body, message in (
        (b'{"model": "tiny", "messages": [', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 5000 + b"]" * 5000, "JSON"),  # nested past the parser's recursion limit
        (b"\xff\xfe", "not valid JSON"),
    ):
        r = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert message in error["message"] and error["type"] == "invalid_request_error"
        assert set(error) == {"message", "type", "param", "code"}
    r = httpx.get(server.base_url + "/nowhere", timeout=60)
    assert r.status_code == 404 and "error" in r.json()
    _valid_request_works(server.base_url)


def test_a_body_over_the_limit_is_413(short_server):
    _, server, _ = short_server
    body = json.dumps({"model": "tiny", "prompt": "x" * 30_000, "max_tokens": 1}).encode()
    r = httpx.post(server.base_url + "/completions", content=body, timeout=60)
    assert r.status_code == 413 and "limit of 20000 bytes" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit holds while reading
        for i in range(0, len(body), 4096):
            yield body[i: i + 4096]

    r = httpx.post(server.base_url + "/completions", content=chunks(), timeout=60)
    assert r.status_code == 413
    _valid_request_works(server.base_url)


def test_a_model_it_does_not_serve_is_404(short_server):
    _, server, client = short_server
    with pytest.raises(openai.NotFoundError, match="'gpt-4'") as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")
    assert client.models.retrieve("tiny").id == "tiny"
    _valid_request_works(server.base_url)


def test_an_api_key_guards_every_route(tiny_model):
    model, tok = tiny_model
    app = create_app(model, tok, "tiny", ServeOptions(api_key="s3cret"))
    with BackgroundServer(app) as server:
        for key in ("unused", "s3cret-not"):
            client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
            with pytest.raises(openai.AuthenticationError, match="API key"):
                client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        assert httpx.post(server.base_url + "/completions", json={"prompt": "x"}).status_code == 401
        _valid_request_works(server.base_url, api_key="s3cret")
    assert "s3cret" not in repr(app.state.options)


def test_a_client_that_disconnects_stops_its_generation(long_context_model_dir):
    """A request for 10^6 tokens whose client leaves must not hold the model: the next request is answered."""
    from selbench.assets import load_model

    model, tok = load_model(str(long_context_model_dir))
    app = create_app(model, tok, "tiny")
    assert app.state.context == 10**6
    with BackgroundServer(app) as server:
        body = json.dumps({"model": "tiny", "prompt": "Once", "max_tokens": 10**6, "min_tokens": 10**6}).encode()
        with socket.create_connection((server.host, server.port)) as sock:
            sock.sendall(
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            _wait_for(app.state.local.lock.locked, "the generation to start")
        # the socket is closed: the server notices and stops generating
        _wait_for(lambda: app.state.counts["cancelled"] == 1, "the generation to be cancelled")
        _valid_request_works(server.base_url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
def test_sigterm_stops_the_server_during_a_generation(long_context_model_dir):
    port = _free_port()
    exe = Path(sys.executable).with_name("selbench")
    proc = subprocess.Popen(
        [str(exe), "serve", "--model", str(long_context_model_dir), "--port", str(port), "--name", "tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ),
    )
    outcome: dict[str, object] = {}

    def endless() -> None:
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=600,
                           json={"model": "tiny", "prompt": "Once", "max_tokens": 10**6, "min_tokens": 10**6})
            outcome["status"] = r.status_code
        except httpx.TransportError as exc:
            outcome["status"] = type(exc).__name__

    try:
        def ready() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(ready, "selbench serve to start")
        thread = threading.Thread(target=endless)
        thread.start()
        time.sleep(2.0)  # let the generation run
        assert "status" not in outcome, "the endless request finished on its own"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # without the shutdown event this waits for 10^6 tokens
        thread.join(timeout=60)
        assert outcome.get("status") != 200, outcome
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bind_beyond_loopback_without_a_key_warns(tmp_path):
    exe = Path(sys.executable).with_name("selbench")
    missing = str(tmp_path / "no-model")
    run = subprocess.run(
        [str(exe), "serve", "--model", missing, "--host", "0.0.0.0", "--port", str(_free_port())],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2 and "without an API key" in run.stderr, run.stderr
    env = dict(os.environ, MY_SERVE_KEY="k")
    run = subprocess.run(
        [str(exe), "serve", "--model", missing, "--host", "0.0.0.0", "--api-key-env", "MY_SERVE_KEY"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert run.returncode == 2 and "without an API key" not in run.stderr, run.stderr
    run = subprocess.run(
        [str(exe), "serve", "--model", missing, "--api-key-env", "UNSET_SERVE_KEY_VAR"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2 and "UNSET_SERVE_KEY_VAR" in run.stderr, run.stderr
