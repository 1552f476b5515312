"""The judge client against real HTTP servers on 127.0.0.1: `selbench serve` and a deliberately flaky one."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from selbench.cost import CostMeter, PriceSheet
from selbench.errors import InputError
from selbench.evaluation.alpacaeval import parse_weighted_preference
from selbench.evaluation.judge import JudgeClient, JudgeConfig, request_key
from selbench.generation.server import BackgroundServer, create_app

SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tiny_model):
    model, tok = tiny_model
    app = create_app(model, tok, "tiny")
    with BackgroundServer(app) as server:
        yield app, server


def _text(response: dict) -> str:
    return response["choices"][0]["message"]["content"]


def test_second_call_is_served_from_cache_without_http(served, isolated_cache):
    app, server = served
    client = JudgeClient(JudgeConfig(model="tiny", base_url=server.base_url, max_workers=2))
    requests = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    params = {"max_tokens": 2, "temperature": 0}
    before = app.state.counts["chat"]
    first = client.judge_many(requests, params, _text)
    assert app.state.counts["chat"] == before + 3
    assert client.stats.prompt_tokens > 0 and client.stats.completion_tokens > 0
    again = JudgeClient(JudgeConfig(model="tiny", base_url=server.base_url)).judge_many(
        requests, params, _text
    )
    assert again == first
    assert app.state.counts["chat"] == before + 3  # no request reached the server
    assert len(list((isolated_cache / "judge").rglob("*.json"))) == 3


def test_cache_key_changes_with_every_input():
    config = JudgeConfig(model="judge-a", base_url="http://127.0.0.1:1/v1")
    messages = [{"role": "user", "content": "x"}]
    params = {"max_tokens": 1}
    base = request_key(config, messages, params)
    variants = [
        request_key(JudgeConfig(model="judge-b", base_url="http://127.0.0.1:1/v1"), messages, params),
        request_key(JudgeConfig(model="judge-a", base_url="http://127.0.0.1:2/v1"), messages, params),
        request_key(config, [{"role": "user", "content": "y"}], params),
        request_key(config, messages, {"max_tokens": 2}),
    ]
    assert len({base, *variants}) == 5


class _Flaky(BaseHTTPRequestHandler):
    """Fails `fail_first` chat requests with 500, then answers with a fixed completion."""

    fail_first = 2
    calls = 0
    seen_auth: list[str] = []
    content = "M"
    logprobs = {
        "content": [
            {
                "token": "M",
                "logprob": -0.1,
                "top_logprobs": [{"token": "M", "logprob": -0.1}, {"token": "m", "logprob": -2.4}],
            }
        ]
    }

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        cls = type(self)
        cls.calls += 1
        cls.seen_auth.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if cls.calls <= cls.fail_first:
            body, status = json.dumps({"error": {"message": "overloaded"}}).encode(), 500
        else:
            status = 200
            body = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "flaky",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "length",
                            "logprobs": cls.logprobs,
                            "message": {"role": "assistant", "content": cls.content},
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
                }
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky():
    handler = type("Flaky", (_Flaky,), {"calls": 0, "seen_auth": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_retries_with_backoff_then_succeeds(flaky):
    handler, url = flaky
    client = JudgeClient(JudgeConfig(model="flaky", base_url=url, max_retries=3, backoff_s=0.01))
    [pref] = client.judge_many(
        [[{"role": "user", "content": "q"}]],
        {"max_tokens": 1, "logprobs": True, "top_logprobs": 5},
        parse_weighted_preference,
    )
    assert handler.calls == 3
    assert client.stats.retries == 2 and client.stats.http_requests == 3
    assert 1.5 < pref < 2.0


def test_gives_up_after_max_retries(flaky):
    handler, url = flaky
    handler.fail_first = 10
    client = JudgeClient(JudgeConfig(model="flaky", base_url=url, max_retries=1, backoff_s=0.01))
    import openai

    with pytest.raises(openai.InternalServerError):
        client.complete([{"role": "user", "content": "q"}], {"max_tokens": 1})
    assert handler.calls == 2


def test_unparseable_answers_are_counted(flaky):
    handler, url = flaky
    handler.fail_first = 0
    handler.logprobs = {
        "content": [{"token": "Both", "logprob": -0.1, "top_logprobs": [{"token": "Both", "logprob": -0.1}]}]
    }
    client = JudgeClient(JudgeConfig(model="flaky", base_url=url))
    prefs = client.judge_many(
        [[{"role": "user", "content": f"q{i}"}] for i in range(3)],
        {"max_tokens": 1},
        parse_weighted_preference,
    )
    assert prefs == [None, None, None]
    assert client.stats.parse_failures == 3


def test_api_key_comes_from_env_and_is_never_written(flaky, monkeypatch, caplog, isolated_cache):
    handler, url = flaky
    handler.fail_first = 1
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    client = JudgeClient(JudgeConfig(model="flaky", base_url=url, api_key_env="MY_JUDGE_KEY", backoff_s=0.01))
    with CostMeter("judge-test", prices=PriceSheet()) as meter:
        client.judge_many([[{"role": "user", "content": "q"}]], {"max_tokens": 1}, _text)
        client.charge(meter)
    assert handler.seen_auth[-1] == f"Bearer {SECRET}"
    files = list(isolated_cache.rglob("*"))
    assert files and not any(SECRET in f.read_text() for f in files if f.is_file())
    assert SECRET not in caplog.text
    assert meter.record.api_input_tokens == 100 and meter.record.api_output_tokens == 1
    assert SECRET not in json.dumps(meter.record.to_dict())


def test_remote_endpoint_without_key_is_an_input_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = JudgeClient(JudgeConfig(model="gpt-4-1106-preview"))
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        client.complete([{"role": "user", "content": "q"}], {"max_tokens": 1})


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="max_workers"):
        JudgeConfig(model="x", max_workers=0)
    with pytest.raises(ValueError, match="base_url"):
        JudgeConfig(model="x", base_url="ftp://host")
