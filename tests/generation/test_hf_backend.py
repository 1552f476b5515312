"""HFBackend with a tiny random-init Llama: batching is invisible, stopping and ordering are right."""

from __future__ import annotations

import pytest

from selbench.generation.base import GenerationConfig
from selbench.generation.hf import HFBackend

PROMPTS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "a much longer prompt with many more words in it, so the batch needs padding"}],
    "plain text prompt",
    [{"role": "user", "content": "medium length prompt"}],
    "x",
]


@pytest.fixture(scope="module")
def spread_model():
    """The tiny model with larger random weights, so different prompts give different, non-repeating text."""
    import torch

    from selbench.assets.tiny import build_tiny_model

    model, tok = build_tiny_model(seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    return model.eval(), tok


def test_batched_left_padded_equals_one_at_a_time_in_order(spread_model):
    backend = HFBackend(*spread_model)
    batched = backend.generate(PROMPTS, GenerationConfig.greedy(max_new_tokens=10, batch_size=5))
    single = [backend.generate([p], GenerationConfig.greedy(max_new_tokens=10, batch_size=1))[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) == len(PROMPTS)  # distinct outputs, so a mixed-up order would show
    assert backend.stats["padded_tokens"] > 0


def test_chat_template_applied_only_to_chat_prompts(spread_model):
    backend = HFBackend(*spread_model)
    text, templated = backend.render([{"role": "user", "content": "hi"}])
    assert templated and text.startswith("<|im_start|>user\nhi<|im_end|>") and text.endswith("<|im_start|>assistant\n")
    assert backend.render("plain") == ("plain", False)


def test_stops_at_the_chat_end_token(spread_model):
    import torch

    model, tok = spread_model
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    original = model.lm_head.weight[end_id].clone()
    with torch.no_grad():  # make <|im_end|> the most likely next token everywhere
        model.lm_head.weight[end_id] = model.lm_head.weight.abs().max(dim=0).values * 50
    try:
        backend = HFBackend(model, tok)
        out = backend.generate(PROMPTS[:2], GenerationConfig.greedy(max_new_tokens=20, batch_size=2))
    finally:
        with torch.no_grad():
            model.lm_head.weight[end_id] = original
    assert out == ["", ""]
    assert backend.stats["new_tokens"] == 0  # stopped at once, the end token itself is not counted


def test_stop_strings_cut_the_text(spread_model):
    backend = HFBackend(*spread_model)
    config = GenerationConfig.greedy(max_new_tokens=12, batch_size=2)
    full = backend.generate(PROMPTS[:1], config)[0]
    stop = full.strip().split()[2]
    cut = backend.generate(PROMPTS[:1], GenerationConfig.greedy(max_new_tokens=12, batch_size=2, stop=(stop,)))[0]
    assert cut == full[: full.index(stop)]


def test_sampling_is_reproducible_with_a_seed(spread_model):
    backend = HFBackend(*spread_model)
    config = GenerationConfig(max_new_tokens=8, do_sample=True, seed=5, batch_size=2)
    first = backend.generate(PROMPTS[:3], config)
    assert backend.generate(PROMPTS[:3], config) == first
    other = backend.generate(PROMPTS[:3], GenerationConfig(max_new_tokens=8, do_sample=True, seed=6, batch_size=2))
    assert other != first


def test_empty_prompt_is_refused(spread_model):
    with pytest.raises(ValueError, match="prompt 2 is empty"):
        HFBackend(*spread_model).generate(["a", ""], GenerationConfig.greedy(max_new_tokens=2))
