"""`selbench serve`: the OpenAI-compatible server over a tiny local model, driven by the real openai client."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from scripted_model import ScriptedOutput
from selbench.generation.server import BackgroundServer, create_app


@pytest.fixture(scope="module")
def served(tiny_model):
    model, tok = tiny_model
    app = create_app(model, tok, "tiny")
    with BackgroundServer(app) as server:
        yield app, server, openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_binds_loopback_and_lists_the_model(served):
    app, server, client = served
    assert server.base_url.startswith("http://127.0.0.1:")
    assert [m.id for m in client.models.list().data] == ["tiny"]


def test_chat_completion_with_logprobs_and_usage(served):
    _, _, client = served
    messages = [{"role": "user", "content": "Name a color."}]
    resp = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3
    )
    choice = resp.choices[0]
    content = choice.logprobs.content
    assert 1 <= len(content) <= 4
    assert choice.message.content == "".join(c.token for c in content)
    for entry in content:
        assert len(entry.top_logprobs) == 3
        values = [t.logprob for t in entry.top_logprobs]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        # greedy: the chosen token is the most probable one
        assert entry.token == entry.top_logprobs[0].token and math.isclose(entry.logprob, values[0])
        assert entry.bytes == list(entry.token.encode())
    assert resp.usage.completion_tokens == len(content) or choice.finish_reason == "stop"
    assert resp.usage.prompt_tokens > 5
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    again = client.chat.completions.create(model="tiny", messages=messages, max_tokens=4, temperature=0)
    assert again.choices[0].message.content == choice.message.content
    assert again.choices[0].logprobs is None


def test_completions_with_logprobs(served):
    _, _, client = served
    resp = client.completions.create(
        model="tiny", prompt="The sky is", max_tokens=3, temperature=0, logprobs=2
    )
    lp = resp.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 3
    assert all(len(top) == 2 and lp.tokens[i] in top for i, top in enumerate(lp.top_logprobs))
    assert lp.text_offset[0] == len("The sky is")
    assert resp.choices[0].text == "".join(lp.tokens)
    assert resp.usage.completion_tokens == 3


def test_seeded_sampling_is_reproducible_and_stop_strings_cut(served):
    _, _, client = served
    kwargs = dict(model="tiny", prompt="Once", max_tokens=8, temperature=1.0, seed=7)
    first = client.completions.create(**kwargs).choices[0].text
    assert client.completions.create(**kwargs).choices[0].text == first
    full = client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=0).choices[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    if stop.strip():
        cut = client.completions.create(model="tiny", prompt="Once", max_tokens=8, temperature=0, stop=[stop])
        assert cut.choices[0].text == full[: full.find(stop)]
        assert cut.choices[0].finish_reason == "stop"


def test_bad_requests_are_400_naming_the_field(served):
    _, _, client = served
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x"}], logprobs=True, top_logprobs=99
        )
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model="tiny", prompt="x", max_tokens=0)


def test_concurrent_requests_queue_on_the_model_lock(served):
    app, server, _ = served
    before = app.state.counts["chat"]
    results: list[str] = []

    def ask(i: int) -> None:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        r = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": f"q{i}"}], max_tokens=2, temperature=0
        )
        results.append(r.choices[0].message.content)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert app.state.counts["chat"] == before + 4


@pytest.mark.integration
def test_serve_command_starts_a_real_server(tiny_model_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).with_name("selbench")
    proc = subprocess.Popen(
        [str(exe), "serve", "--model", str(tiny_model_dir), "--port", str(port), "--name", "tiny"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.time() < deadline, "selbench serve did not start"
                time.sleep(0.5)
        assert r.json()["data"][0]["id"] == "tiny"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


TOOLS = [{"type": "function", "function": {"name": "rank", "parameters": {"type": "object"}}}]


def test_tool_calls_are_read_from_the_completion(tiny_model_dir):
    from selbench.assets import load_model

    model, tok = load_model(str(tiny_model_dir))
    args = '{"ordered_models": [{"model": "m", "rank": 1}, {"model": "M", "rank": 2}]}'
    hook = ScriptedOutput(model, tok, "Sure: " + args)
    try:
        with BackgroundServer(create_app(model, tok, "tiny")) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
            messages = [{"role": "user", "content": "Rank them."}]
            forced = client.chat.completions.create(
                model="tiny", messages=messages, max_tokens=60, temperature=0, tools=TOOLS,
                tool_choice={"type": "function", "function": {"name": "rank"}},
            )
            plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=60, temperature=0)
            with pytest.raises(openai.BadRequestError, match="tool_choice"):
                client.chat.completions.create(
                    model="tiny", messages=messages, max_tokens=4, tools=TOOLS,
                    tool_choice={"type": "function", "function": {"name": "other"}},
                )
    finally:
        hook.remove()
    (call,) = forced.choices[0].message.tool_calls
    assert call.function.name == "rank" and json.loads(call.function.arguments) == json.loads(args)
    assert forced.choices[0].finish_reason == "tool_calls" and forced.choices[0].message.content is None
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content == "Sure: " + args
