"""Conversation text formats (DEITA's vicuna, RDS+'s tulu), pooled hidden states by hand, embed text="vicuna"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.scoring.base import compute_scores, read_scores
from selbench.scoring.causal_lm import pooled_embeddings
from selbench.scoring.chat_text import VICUNA_SYSTEM, conversation_text

MESSAGES = [{"role": "user", "content": " Hi there "}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"}]


def test_vicuna_format_is_deitas_template():
    # FastChat vicuna_v1.1 (ADD_COLON_TWO, sep " ", sep2 "</s>") as DEITA's preprocess renders it
    assert conversation_text(MESSAGES, "vicuna") == (
        f"{VICUNA_SYSTEM} USER:  Hi there  ASSISTANT: Hello!</s>USER: Bye ")


def test_tulu_format_is_rds_template():
    system = [{"role": "system", "content": "Be brief."}, *MESSAGES]
    assert conversation_text(system, "tulu", eos="</s>") == (
        "<|system|>\nBe brief.\n<|user|>\nHi there\n<|assistant|>\nHello!</s>\n<|user|>\nBye")


def _by_hand(model, tokenizer, text: str, pooling: str, max_length: int) -> np.ndarray:
    import torch

    ids = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].double()
    if pooling == "last":
        return hidden[-1].numpy()
    length = hidden.shape[0]
    weights = (torch.arange(1, length + 1, dtype=torch.float64) if pooling == "weighted_mean"
               else torch.ones(length, dtype=torch.float64))
    return (weights[:, None] * hidden).sum(0).numpy() / weights.sum().item()


@pytest.mark.parametrize("pooling", ["last", "weighted_mean", "mean"])
def test_pooled_embeddings_equal_a_hand_computation(tiny_model, pooling):
    model, tokenizer = tiny_model
    texts = ["short", conversation_text(MESSAGES, "tulu", tokenizer.eos_token), "Once " * 40]
    vectors, tokens = pooled_embeddings(model, tokenizer, texts, pooling, max_length=24, batch_size=2)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    for row, text in enumerate(texts):  # the last one is cut at 24 tokens; rows share left-padded batches
        np.testing.assert_allclose(vectors[row], _by_hand(model, tokenizer, text, pooling, 24), atol=2e-4)
    assert tokens == sum(len(tokenizer(t, truncation=True, max_length=24)["input_ids"]) for t in texts)


def test_embed_scorer_vicuna_text_is_deitas_embedding(tmp_path, tiny_model_dir, tiny_model):
    model, tokenizer = tiny_model
    examples = [Example(instruction="Name a colour.", output="Blue."),
                Example(instruction="Hi there", output="Hello!", messages=MESSAGES)]
    write_examples(examples, tmp_path / "data.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": 2}))
    options = {"model": str(tiny_model_dir), "text": "vicuna", "pooling": "last", "max_length": 512}
    _, columns = read_scores(compute_scores(Path(tmp_path), "embed", options).path)
    first = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
    for row, messages in enumerate([first, MESSAGES]):
        expected = _by_hand(model, tokenizer, conversation_text(messages, "vicuna"), "last", 512)
        np.testing.assert_allclose(columns["embedding"][row], expected, atol=2e-4)
