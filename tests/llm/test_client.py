"""The shared LLM client against real HTTP servers on 127.0.0.1: `selbench serve` and a faulty judge of the
test's own (429 with Retry-After, 500, timeouts, dropped connections, refused connections)."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from faulty_judge import FaultyJudge
from selbench.cost import CostMeter, PriceSheet
from selbench.errors import InputError
from selbench.evaluation.alpacaeval import parse_weighted_preference
from selbench.generation.server import BackgroundServer, create_app
from selbench.llm.client import (
    EndpointUnreachable,
    LLMClient,
    LLMConfig,
    LLMRequestError,
    RequestRejected,
    request_key,
    retry_after_seconds,
)

SECRET = "sk-test-SECRET-0123456789abcdef"
Q = [{"role": "user", "content": "q"}]


@pytest.fixture(scope="module")
def served(tiny_model):
    model, tok = tiny_model
    app = create_app(model, tok, "tiny")
    with BackgroundServer(app) as server:
        yield app, server


def _text(response: dict) -> str:
    return response["choices"][0]["message"]["content"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_second_call_is_served_from_the_store_without_http(served, isolated_cache):
    app, server = served
    client = LLMClient(LLMConfig(model="tiny", base_url=server.base_url, max_workers=2))
    requests = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    params = {"max_tokens": 2, "temperature": 0}
    before = app.state.counts["chat"]
    first = client.judge_many(requests, params, _text)
    assert app.state.counts["chat"] == before + 3
    assert client.stats.prompt_tokens > 0 and client.stats.completion_tokens > 0
    again_client = LLMClient(LLMConfig(model="tiny", base_url=server.base_url))
    again = again_client.judge_many(requests, params, _text)
    assert again == first and again_client.stats.cached == 3 and again_client.stats.http_requests == 0
    assert app.state.counts["chat"] == before + 3  # no request reached the server
    # inside the step store, one file per request
    assert client.cache_dir.parent == isolated_cache / "partial" / "llm-requests"
    assert len(list(client.cache_dir.rglob("*.json"))) == 3


def test_cache_key_changes_with_every_input():
    config = LLMConfig(model="judge-a", base_url="http://127.0.0.1:1/v1")
    params = {"max_tokens": 1}
    base = request_key(config, Q, params)
    variants = [
        request_key(LLMConfig(model="judge-b", base_url="http://127.0.0.1:1/v1"), Q, params),
        request_key(LLMConfig(model="judge-a", base_url="http://127.0.0.1:2/v1"), Q, params),
        request_key(config, [{"role": "user", "content": "y"}], params),
        request_key(config, Q, {"max_tokens": 2}),
        request_key(config, Q, {"max_tokens": 1, "temperature": 0}),
    ]
    assert len({base, *variants}) == 6
    # limits and the key's variable do not change the answer, so they do not change the key
    assert request_key(LLMConfig(model="judge-a", base_url="http://127.0.0.1:1/v1", max_workers=9,
                                 api_key_env="OTHER"), Q, params) == base


def test_retries_500_then_succeeds():
    with FaultyJudge(["500", "500"]) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, max_retries=3, backoff_s=0.01))
        assert client.judge_many([Q], {"max_tokens": 1}, _text) == ["4"]
        assert judge.chat_requests == 3
    assert client.stats.retries == 2 and client.stats.http_requests == 3


def test_429_waits_what_retry_after_says():
    with FaultyJudge(["429"], retry_after="1") as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, backoff_s=0.01))
        assert client.judge_many([Q], {"max_tokens": 1}, _text) == ["4"]
        assert judge.chat_requests == 2
        gap = judge.times[1] - judge.times[0]
    assert client.stats.retries == 1
    assert client.stats.backoff_seconds == pytest.approx(1.0)  # the header's 1 s, not backoff_s = 0.01
    assert gap >= 0.95  # and the server saw it: the retry came no earlier


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None


def test_timeouts_and_dropped_connections_are_retried():
    with FaultyJudge(["timeout", "close"], slow_s=3.0) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, timeout_s=0.5, backoff_s=0.01))
        assert client.judge_many([Q], {"max_tokens": 1}, _text) == ["4"]
        assert judge.chat_requests == 3
    assert client.stats.retries == 2


def test_gives_up_after_max_retries_and_keeps_finished_answers():
    with FaultyJudge(["500"] * 10) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, max_retries=1, backoff_s=0.01))
        with pytest.raises(LLMRequestError, match="HTTP 500 after 2 attempts"):
            client.complete(Q, {"max_tokens": 1})
        assert judge.chat_requests == 2
        judge.faults.clear()
        client.complete([{"role": "user", "content": "other"}], {"max_tokens": 1})
    assert len(list(client.cache_dir.rglob("*.json"))) == 1


def test_connection_refused_fails_at_once_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    client = LLMClient(LLMConfig(model="x", base_url=url, max_retries=5, backoff_s=10))
    with pytest.raises(EndpointUnreachable) as err:
        client.judge_many([Q] * 3, {"max_tokens": 1}, _text)
    assert err.value.exit_code == 2 and err.value.path == url.rstrip("/") and err.value.field == "judge-base-url"
    assert client.stats.retries == 0 and client.stats.backoff_seconds == 0


def test_client_errors_are_not_retried():
    with FaultyJudge(["401", "400"]) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, max_retries=3))
        with pytest.raises(InputError) as err:
            client.complete(Q, {"max_tokens": 1})
        assert err.value.field == "judge-api-key-env" and "HTTP 401" in str(err.value)
        with pytest.raises(RequestRejected, match="HTTP 400.*on purpose"):
            client.complete(Q, {"max_tokens": 1})
        assert judge.chat_requests == 2
    with FaultyJudge() as judge:  # a wrong base URL answers 404: named, not retried
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url + "/nowhere", max_retries=3))
        with pytest.raises(InputError) as err:
            client.complete(Q, {"max_tokens": 1})
        assert "HTTP 404" in str(err.value) and client.stats.http_requests == 1 and judge.chat_requests == 0


def test_a_rejected_request_is_skipped_and_counted_not_fatal():
    with FaultyJudge(["400"], answer=lambda m: m[-1]["content"]) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, max_workers=1))
        requests = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
        assert client.judge_many(requests, {"max_tokens": 1}, _text) == [None, "q1", "q2"]
        assert judge.chat_requests == 3
    assert client.stats.rejected == 1 and client.stats.retries == 0


def test_unparseable_answers_are_counted():
    with FaultyJudge(answer=lambda messages: "Both") as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url))
        prefs = client.judge_many(
            [[{"role": "user", "content": f"q{i}"}] for i in range(3)], {"max_tokens": 1}, parse_weighted_preference
        )
    assert prefs == [None, None, None]
    assert client.stats.parse_failures == 3


def test_results_keep_the_requests_order_under_concurrency():
    with FaultyJudge(["500", "429", "500"], answer=lambda m: m[-1]["content"].upper()) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, max_workers=4, backoff_s=0.01))
        requests = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
        assert client.judge_many(requests, {"max_tokens": 1}, _text) == [f"Q{i}" for i in range(12)]
        assert judge.chat_requests == 15
    assert client.stats.requests == 12 and client.stats.retries == 3


def test_api_key_comes_from_env_and_is_never_written(monkeypatch, caplog, isolated_cache):
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with FaultyJudge(["500"]) as judge:
        client = LLMClient(LLMConfig(model="faulty", base_url=judge.base_url, api_key_env="MY_JUDGE_KEY",
                                     backoff_s=0.01))
        with CostMeter("judge-test", prices=PriceSheet()) as meter:
            client.judge_many([Q], {"max_tokens": 1}, _text)
            client.charge(meter)
    assert judge.auth == [f"Bearer {SECRET}"] * 2  # sent as the bearer token, on every attempt
    files = [f for f in isolated_cache.rglob("*") if f.is_file()]
    assert files and not any(SECRET in f.read_text() for f in files)
    assert SECRET not in caplog.text
    assert meter.record.api_input_tokens == 1 and meter.record.api_output_tokens == 1
    assert SECRET not in json.dumps(meter.record.to_dict()) and SECRET not in json.dumps(client.stats.to_dict())


def test_remote_endpoint_without_key_is_an_input_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = LLMClient(LLMConfig(model="gpt-4o"))
    with pytest.raises(InputError, match="OPENAI_API_KEY") as err:
        client.complete(Q, {"max_tokens": 1})
    assert err.value.field == "judge-api-key-env"
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        client.judge_many([Q], {"max_tokens": 1}, _text)


def test_config_validation_names_the_flag():
    for kwargs, flag in (
        ({"model": ""}, "judge"),
        ({"model": "x", "max_workers": 0}, "judge-workers"),
        ({"model": "x", "base_url": "ftp://host"}, "judge-base-url"),
        ({"model": "x", "api_key_env": ""}, "judge-api-key-env"),
    ):
        with pytest.raises(InputError) as err:
            LLMConfig(**kwargs)
        assert err.value.field == flag, kwargs


def test_old_import_path_still_works():
    from selbench.evaluation import judge

    assert judge.JudgeClient is LLMClient and judge.JudgeConfig is LLMConfig


def test_the_llm_layer_imports_no_stage():
    import subprocess
    import sys

    code = ("import sys, selbench.llm; stages = ('evaluation', 'generation', 'scoring', 'selection', 'training', "
            "'data', 'runner', 'cli'); print([m for m in sys.modules if m.split('.')[:2][-1] in stages "
            "and m.startswith('selbench.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
