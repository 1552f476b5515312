"""`selbench serve` answers `/v1/completions` with `echo: true, max_tokens: 0` with the prompt's log-probabilities."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from selbench.generation.server import BackgroundServer, create_app


@pytest.fixture(scope="module")
def served(tiny_model):
    model, tok = tiny_model
    with BackgroundServer(create_app(model, tok, "tiny")) as server:
        yield server.base_url, model, tok


def _expected(model, ids):
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return [float(logprobs[p - 1, ids[p]]) for p in range(1, len(ids))]


def test_text_prompt_is_scored_token_by_token(served):
    url, model, tok = served
    text = "The quick brown fox jumps."
    answer = httpx.post(f"{url}/completions", json={"model": "tiny", "prompt": text, "echo": True,
                                                    "max_tokens": 0, "logprobs": 2}).json()
    choice = answer["choices"][0]
    ids = tok(text)["input_ids"]
    assert choice["text"] == text and "".join(choice["logprobs"]["tokens"]) == text
    values = choice["logprobs"]["token_logprobs"]
    assert values[0] is None and len(values) == len(ids)
    np.testing.assert_allclose(values[1:], _expected(model, ids), atol=1e-5)
    tops = choice["logprobs"]["top_logprobs"]
    assert tops[0] is None and all(2 <= len(t) <= 3 for t in tops[1:])  # top 2, plus the prompt token if not in it
    assert choice["logprobs"]["text_offset"][1] == len(choice["logprobs"]["tokens"][0])
    assert answer["usage"] == {"prompt_tokens": len(ids), "completion_tokens": 0, "total_tokens": len(ids)}


def test_token_id_prompts_are_used_as_given(served):
    url, model, _ = served
    prompts = [[464, 2068, 7586, 21831], [40, 588]]
    answer = httpx.post(f"{url}/completions", json={"model": "tiny", "prompt": prompts, "echo": True,
                                                    "max_tokens": 0, "logprobs": 0}).json()
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    for choice, ids in zip(answer["choices"], prompts, strict=True):
        np.testing.assert_allclose(choice["logprobs"]["token_logprobs"][1:], _expected(model, ids), atol=1e-5)


@pytest.mark.parametrize("body, field", [
    ({"prompt": [[1, 10**9]]}, "prompt[0]"),
    ({"prompt": [[]]}, "prompt[0]"),
    ({"prompt": "hi", "logprobs": 99}, "logprobs"),
    ({"prompt": 5}, "prompt"),
])
def test_bad_requests_are_400_naming_the_field(served, body, field):
    url, _, _ = served
    response = httpx.post(f"{url}/completions", json={"model": "tiny", "echo": True, "max_tokens": 0, **body})
    assert response.status_code == 400
    assert f"field '{field}'" in response.json()["error"]["message"]


def test_generation_requests_are_unchanged(served):
    url, _, _ = served
    response = httpx.post(f"{url}/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 0})
    assert response.status_code == 400 and "max_tokens" in response.json()["error"]["message"]
    response = httpx.post(f"{url}/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2, "temperature": 0})
    assert response.status_code == 200 and response.json()["choices"][0]["logprobs"] is None
