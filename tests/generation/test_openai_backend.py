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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_new_model_at_the_same_address_and_name_is_asked_again(tmp_path):
    """Review finding: per-request answers were cached by URL and served name only, so a retrained model
    served the same way got its predecessor's outputs. They now belong to the generation step (the model)."""
    from selbench.assets import load_model
    from selbench.assets.tiny import build_tiny_model

    port, config, outputs = _free_port(), GenerationConfig.greedy(max_new_tokens=8, batch_size=1), {}
    for seed in (0, 7):
        folder = tmp_path / f"m{seed}"
        build_tiny_model(folder, seed=seed)
        model, tok = load_model(str(folder))
        with BackgroundServer(create_app(model, tok, "out/model"), port=port) as server:
            served = cached_generate(str(folder), "test", PROMPTS, config, backend="openai",
                                     backend_options={"base_url": server.base_url})
        local = cached_generate(str(folder), "test", PROMPTS, config)
        assert served.outputs == local.outputs
        outputs[seed] = served.outputs
    assert outputs[0] != outputs[7]


def test_server_stops_where_the_hf_backend_stops(tiny_model_dir, tmp_path):
    """A model whose EOS is not its chat template's end-of-turn token: both paths stop at `<|im_end|>` and
    neither leaks special tokens into the text."""
    import shutil

    from selbench.assets import load_model

    folder = tmp_path / "base-eos"
    shutil.copytree(tiny_model_dir, folder)
    model, tok = load_model(str(folder))
    tok.eos_token = "<|endoftext|>"
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id != im_end

    calls = {"n": 0}

    def end_turn_after_two(module, args, output):  # two ordinary tokens, then <|im_end|>
        calls["n"] += 1
        if calls["n"] > 2:
            output = output.clone()
            output[..., im_end] += 1000.0
        return output

    from selbench.generation.hf import HFBackend

    config = GenerationConfig.greedy(max_new_tokens=6, batch_size=1)
    hook = model.lm_head.register_forward_hook(end_turn_after_two)
    try:
        local = HFBackend(model, tok).generate(PROMPTS[:1], config)
        calls["n"] = 0
        with BackgroundServer(create_app(model, tok, "base")) as server:
            served = OpenAIServerBackend(server.base_url).generate(PROMPTS[:1], config)
    finally:
        hook.remove()
    assert served == local and "<|im_end|>" not in served[0]


def test_min_new_tokens_reaches_the_server(tiny_model_dir, tiny_server):
    """`min_new_tokens` travels as vLLM's `min_tokens`, which `selbench serve` honours like the HF backend."""
    config = GenerationConfig(max_new_tokens=8, min_new_tokens=6, batch_size=1)
    local = cached_generate(str(tiny_model_dir), "test", PROMPTS, config)
    served = cached_generate(str(tiny_model_dir), "test", PROMPTS, config, backend="openai",
                             backend_options={"base_url": tiny_server.base_url})
    assert served.outputs == local.outputs


def test_backend_url_errors_name_the_flag(tiny_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for url, message in (("ftp://x/v1", "http(s) URL"), ("http://example.com/v1", "API key"),
                         (tiny_server.base_url.removesuffix("/v1"), "/v1")):
        with pytest.raises(InputError) as err:
            OpenAIServerBackend(url)
        assert err.value.field == "backend-url" and message in str(err.value), str(err.value)
