"""The embed scorer: text formats, pooled causal-LM hidden states by hand, the packaged sentence embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.base import ScoreStep, compute_scores, read_scores
from selbench.scoring.embed import VICUNA_SYSTEM, EmbedScorer, conversation_text

MESSAGES = [{"role": "user", "content": " Hi there "}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"}]


def _pool(folder: Path) -> Path:
    examples = [Example(instruction="Name a colour.", output="Blue."),
                Example(instruction="Hi there", output="Hello!", messages=MESSAGES),
                Example(instruction="Write a long story about a lighthouse keeper and a storm.", output="Once " * 40)]
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": len(examples)}))
    return folder


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
    weights = torch.arange(1, length + 1, dtype=torch.float64) if pooling == "weighted_mean" else torch.ones(length, dtype=torch.float64)
    return (weights[:, None] * hidden).sum(0).numpy() / weights.sum().item()


@pytest.mark.parametrize("pooling, fmt", [("last", "vicuna"), ("weighted_mean", "tulu"), ("mean", "plain")])
def test_causal_lm_pooling_equals_a_hand_computation(tmp_path, tiny_model_dir, tiny_model, pooling, fmt):
    model, tokenizer = tiny_model
    options = {"model": str(tiny_model_dir), "pooling": pooling, "format": fmt, "max_length": 24, "batch_size": 2}
    result = compute_scores(_pool(tmp_path / "pool"), "embed", options)
    _, columns = read_scores(result.path)
    emb = columns["embedding"]
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    texts = [conversation_text(m, fmt, tokenizer.eos_token) for m in (
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}], MESSAGES,
        [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."},
         {"role": "assistant", "content": "Once " * 40}])]
    for row, text in enumerate(texts):  # the third one is cut at 24 tokens
        np.testing.assert_allclose(emb[row], _by_hand(model, tokenizer, text, pooling, 24), atol=2e-4)
    assert result.cost["tokens"] == sum(len(tokenizer(t, truncation=True, max_length=24)["input_ids"]) for t in texts)


def test_the_key_follows_model_and_options(tmp_path, tiny_model_dir):
    pool = _pool(tmp_path / "pool")
    base = {"model": str(tiny_model_dir)}
    keys = {ScoreStep.make(pool, "embed", {**base, **change}).key() for change in (
        {}, {"pooling": "mean"}, {"format": "tulu"}, {"max_length": 64}, {"dtype": "bfloat16"})}
    assert len(keys) == 5
    assert ScoreStep.make(pool, "embed", {**base, "batch_size": 3}).key() in keys


@pytest.mark.parametrize("options, field", [({"pooling": "max"}, "pooling"), ({"format": "chatml"}, "format"),
                                            ({"max_length": 0}, "max_length"), ({"dtype": "int4"}, "dtype")])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(InputError) as info:
        EmbedScorer(**options)
    assert info.value.field == field


def test_packaged_sentence_embedder_is_the_default(tmp_path):
    from selbench.assets import load_embedder

    result = compute_scores(_pool(tmp_path / "pool"), "embed", {})
    _, columns = read_scores(result.path)
    texts = ["Name a colour.\n\nBlue.", " Hi there \n\nHello!\n\nBye",
             "Write a long story about a lighthouse keeper and a storm.\n\n" + "Once " * 40]
    direct = load_embedder().encode(texts)
    assert columns["embedding"].shape == (3, 384)
    np.testing.assert_allclose(columns["embedding"], direct, atol=1e-5)
    assert result.config["kind"] == "sentence-transformers" and result.cost["tokens"] > 0
