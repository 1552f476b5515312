"""The embed scorer: a causal LM's pooled last hidden state (Cherry's --mod pre) or a sentence-transformers model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.base import compute_scores, read_scores
from selbench.scoring.embed import EmbedScorer, example_texts
from selbench.scoring.ifd_text import cherry_prompt
from selbench.store import StepStore

EXAMPLES = [
    Example(instruction="Name a colour.", output="Blue."),
    Example(instruction="Add the numbers.", input="2 and 3", output="5"),
    Example(instruction="Write a long story about a lighthouse keeper and the sea. " * 3, output="Once..."),
    Example(instruction="hi", output="hello!", messages=[
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"},
        {"role": "user", "content": "more"}, {"role": "assistant", "content": "sure"}]),
]


def _pool(folder: Path) -> Path:
    write_examples(EXAMPLES, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(EXAMPLES), "n": len(EXAMPLES)}))
    return folder


def test_causal_lm_embedding_is_cherrys_mean_hidden_state_and_perplexity(tmp_path, tiny_model_dir, tiny_model):
    model, tok = tiny_model
    options = {"model": str(tiny_model_dir), "text": "cherry_prompt", "perplexity": True, "max_length": 40}
    result = compute_scores(_pool(tmp_path), "embed", options)
    _, columns = read_scores(result.path)
    assert columns["embedding"].shape == (4, 32) and isinstance(columns["embedding"], np.memmap)
    for i, example in enumerate(EXAMPLES):  # Cherry: model(ids, labels=ids) per example, hidden_states[-1].mean(1)
        ids = torch.tensor([tok.encode(cherry_prompt(example.instruction, example.input), truncation=True,
                                       max_length=40)])
        with torch.no_grad():
            out = model(ids, labels=ids, output_hidden_states=True)
        np.testing.assert_allclose(columns["embedding"][i], out.hidden_states[-1].mean(dim=1)[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(columns["ppl"][i], float(torch.exp(out.loss)), rtol=1e-5)
    assert result.cost["tokens"] > 0


def test_float16_storage_and_last_token_pooling(tmp_path, tiny_model_dir, tiny_model):
    model, tok = tiny_model
    store = StepStore(tmp_path / "cache")
    data = _pool(tmp_path / "pool")
    base = {"model": str(tiny_model_dir), "pooling": "last"}
    full = compute_scores(data, "embed", base, store)
    half = compute_scores(data, "embed", {**base, "dtype": "float16"}, store)
    assert half.key != full.key
    _, a = read_scores(full.path)
    _, b = read_scores(half.path)
    assert a["embedding"].dtype == np.float32 and b["embedding"].dtype == np.float16
    np.testing.assert_allclose(b["embedding"], a["embedding"], rtol=2e-3, atol=2e-3)
    ids = torch.tensor([tok.encode("Add the numbers.\n\n2 and 3")])
    with torch.no_grad():
        last = model.model(ids).last_hidden_state[0, -1].numpy()
    np.testing.assert_allclose(a["embedding"][1], last, atol=1e-5)
    assert compute_scores(data, "embed", {**base, "batch_tokens": 16}, store).cached


def test_chat_text_formats_the_whole_conversation(tiny_model):
    _, tok = tiny_model
    rows = {"instruction": [e.instruction for e in EXAMPLES], "input": [e.input for e in EXAMPLES],
            "output": [e.output for e in EXAMPLES], "messages": [e.messages for e in EXAMPLES]}
    texts = example_texts(rows, "chat", tok)
    assert texts[3].count("<|im_start|>") == 4 and "sure" in texts[3]
    assert texts[0] == "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"


def test_packaged_sentence_transformer(tmp_path):
    from selbench.assets import load_embedder

    result = compute_scores(_pool(tmp_path), "embed", {"normalize": True, "text": "pair"})
    _, columns = read_scores(result.path)
    assert columns["embedding"].shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(columns["embedding"], axis=1), 1.0, atol=1e-5)
    texts = [e.instruction + ("\n\n" + e.input if e.input else "") + "\n\n" + e.output for e in EXAMPLES]
    expected = load_embedder().encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(columns["embedding"], expected, atol=1e-5)


def test_bad_options_name_their_field(tiny_model_dir):
    for options, field in (({"text": "everything"}, "text"), ({"pooling": "max"}, "pooling"),
                           ({"dtype": "int8"}, "dtype"), ({"perplexity": True}, "perplexity"),
                           ({"model": str(tiny_model_dir), "max_length": 0}, "max_length")):
        with pytest.raises(InputError, match=field):
            EmbedScorer(**options)
