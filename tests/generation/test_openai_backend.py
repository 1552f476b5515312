"""The openai generation backend (for `vllm serve` and other OpenAI-compatible servers), run against
`selbench serve` on 127.0.0.1: same greedy outputs as the in-process HF backend, cached, with clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selbench.errors import InputError
from selbench.generation.base import GenerationConfig
from selbench.generation.cached import cached_generate
from selbench.generation.openai_server import OpenAIServerBackend
from selbench.generation.server import BackgroundServer, create_app

PROMPTS = [
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count to three, please."}],
    [{"role": "user", "content": "x"}],
]


@pytest.fixture(scope="module")
def tiny_server(tiny_model_dir):
    from selbench.assets import load_model

    model, tok = load_model(str(tiny_model_dir))
    with BackgroundServer(create_app(model, tok, "tiny")) as server:
        yield server


def test_greedy_outputs_equal_the_hf_backend(tiny_model_dir, tiny_server):
    config = GenerationConfig.greedy(max_new_tokens=12, batch_size=1)
    local = cached_generate(str(tiny_model_dir), "test", PROMPTS, config)
    served = cached_generate(str(tiny_model_dir), "test", PROMPTS, config, backend="openai",
                             backend_options={"base_url": tiny_server.base_url})
    assert served.outputs == local.outputs and any(served.outputs)
    assert served.key != local.key  # the backend is part of the key
    assert served.stats["new_tokens"] > 0 and served.stats["prompt_tokens"] > 0


def test_served_outputs_are_cached_when_the_server_is_gone(tiny_model_dir):
    from selbench.assets import load_model

    config = GenerationConfig.greedy(max_new_tokens=6)
    model, tok = load_model(str(tiny_model_dir))
    with BackgroundServer(create_app(model, tok, "tiny")) as server:
        first = cached_generate(str(tiny_model_dir), "test", PROMPTS, config, backend="openai",
                                backend_options={"base_url": server.base_url})
    again = cached_generate(str(tiny_model_dir), "test", PROMPTS, config, backend="openai",
                            backend_options={"base_url": server.base_url})
    assert again.cached and again.outputs == first.outputs


def test_request_fields_follow_the_decoding_config():
    greedy = OpenAIServerBackend.request_params(GenerationConfig.greedy(max_new_tokens=7, stop=("###",)))
    assert greedy == {"max_tokens": 7, "n": 1, "temperature": 0.0, "stop": ["###"]}
    study = OpenAIServerBackend.request_params(GenerationConfig.study(seed=3))
    assert study["temperature"] == 1.0 and study["top_p"] == 1.0 and study["seed"] == 3
    assert study["max_tokens"] == 1024
    padded = OpenAIServerBackend.request_params(GenerationConfig(max_new_tokens=8, min_new_tokens=4))
    assert padded["extra_body"] == {"min_tokens": 4}  # vLLM's extension field


def test_wrong_server_or_model_is_a_usage_error(tiny_server):
    with pytest.raises(InputError) as err:
        OpenAIServerBackend(tiny_server.base_url, "not-served")
    assert err.value.field == "served-model" and "tiny" in str(err.value)
    with pytest.raises(InputError) as err:
        OpenAIServerBackend("http://127.0.0.1:9/v1")  # nothing listens on the discard port
    assert err.value.field == "backend-url"
    backend = OpenAIServerBackend(tiny_server.base_url)
    assert backend.served_model == "tiny"
    with pytest.raises(InputError, match="raw text"):
        backend.generate(["plain text"], GenerationConfig.greedy(max_new_tokens=2))


def test_ifeval_cli_generates_through_a_server(tiny_model_dir, tiny_server):
    from selbench.cli.main import app

    args = ["eval", "ifeval", "--model", str(tiny_model_dir), "--limit", "2", "--max-new-tokens", "4", "--json"]
    result = CliRunner().invoke(app, [*args, "--backend", "openai", "--backend-url", tiny_server.base_url])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 2 and out["generation_cached"] is False
    missing = CliRunner().invoke(app, [*args, "--backend", "openai"])
    assert missing.exit_code == 2 and "--backend-url" in missing.output
    stray = CliRunner().invoke(app, [*args, "--backend-url", tiny_server.base_url])
    assert stray.exit_code == 2 and "--backend openai" in stray.output
