"""DEITA's complexity and quality scorers: prompts, expected score, multi-turn records, the cached step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.base import SCORERS, ScoreStep, compute_scores, read_scores
from selbench.scoring.deita import (
    COMPLEXITY_TEMPLATE,
    QUALITY_TEMPLATE,
    DeitaComplexityScorer,
    DeitaQualityScorer,
    conversation_pairs,
    expected_score,
    score_token_ids,
)

CONVERSATION = [
    {"role": "user", "content": "Write a haiku about autumn."},
    {"role": "assistant", "content": "Leaves drift on cold wind / amber light on quiet streams / the year exhales slow"},
    {"role": "user", "content": "Now one about winter, please, and explain the syllable count."},
    {"role": "assistant", "content": "Snow hushes the field / ... five, seven, five syllables."},
    {"role": "user", "content": "Thanks!"},
]


def _pool(folder: Path) -> Path:
    examples = [
        Example(instruction="What is 2+2?", output="4"),
        Example(instruction="Summarize the plot of Hamlet in two sentences.", input="",
                output="A prince avenges his father. Almost everyone dies."),
        Example(instruction=CONVERSATION[0]["content"], output=CONVERSATION[1]["content"], messages=CONVERSATION),
        Example(instruction="Translate to French", input="Good morning", output="Bonjour"),
    ]
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": len(examples)}))
    return folder


def _by_hand(model, tokenizer, text: str) -> float:
    """DEITA's infer_score, spelled out: encode, one unpadded forward pass, the six digit logits of the next
    token, softmax over them, expected value."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].double()
    digits = logits[[tokenizer.convert_tokens_to_ids(str(k)) for k in range(1, 7)]]
    probs = torch.softmax(digits, dim=0)
    return float((probs * torch.arange(1, 7, dtype=torch.float64)).sum())


def test_expected_score_by_hand():
    logits = np.array([[1.0, 2.0, 0.5, -1.0, 0.0, 3.0]])
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert expected_score(logits)[0] == pytest.approx(float((p * np.arange(1, 7)).sum()), abs=1e-12)
    assert expected_score(np.full((2, 6), 1000.0)).tolist() == [3.5, 3.5]  # no overflow


def test_templates_are_deitas():
    assert COMPLEXITY_TEMPLATE.format(instruction="Q") == (
        "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
        "##Query: Q  \n##Complexity: ")
    assert QUALITY_TEMPLATE.format(instruction="Q", output="R") == (
        "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
        "Question. \n #Question#:\nQ\n#Response#:\nR \n##Quality: ")


def test_conversation_pairs_as_deita_cuts_them():
    assert conversation_pairs(CONVERSATION) == [
        (CONVERSATION[0]["content"], CONVERSATION[1]["content"]),
        (CONVERSATION[2]["content"], CONVERSATION[3]["content"]),
        ("Thanks!", ""),
    ]
    system = [{"role": "system", "content": "be nice"}, *CONVERSATION[:2]]
    assert conversation_pairs(system) == [(CONVERSATION[0]["content"], CONVERSATION[1]["content"])]


@pytest.mark.parametrize("name", ["deita-quality", "deita-complexity"])
def test_scores_equal_a_hand_computation_from_the_logits(tmp_path, tiny_model_dir, tiny_model, name):
    model, tokenizer = tiny_model
    pool = _pool(tmp_path / "pool")
    # batch_size 3: rows of different lengths share a left-padded batch
    result = compute_scores(pool, name, {"model": str(tiny_model_dir), "batch_size": 3, "max_turns": 4})
    ids, columns = read_scores(result.path)
    kind = name.split("-")[1]
    template = QUALITY_TEMPLATE if kind == "quality" else COMPLEXITY_TEMPLATE
    turns = columns[f"{kind}_turns"]
    assert turns.shape == (4, 4)
    rows = [[(e["instruction"] + (f"\n\n{e['input']}" if e["input"] else ""), e["output"])] for e in (
        {"instruction": "What is 2+2?", "input": "", "output": "4"},
        {"instruction": "Summarize the plot of Hamlet in two sentences.", "input": "",
         "output": "A prince avenges his father. Almost everyone dies."},
    )]
    rows.append(conversation_pairs(CONVERSATION))
    rows.append([("Translate to French\n\nGood morning", "Bonjour")])
    for r, pairs in enumerate(rows):
        expected = [_by_hand(model, tokenizer, template.format(instruction=i, output=o)) for i, o in pairs]
        np.testing.assert_allclose(turns[r, : len(pairs)], expected, atol=2e-5)
        assert np.isnan(turns[r, len(pairs) :]).all()
        assert columns[kind][r] == pytest.approx(sum(expected), abs=1e-4)
        assert all(1.0 <= e <= 6.0 for e in expected)
    assert result.cost["tokens"] > 0
    again = compute_scores(pool, name, {"model": str(tiny_model_dir), "batch_size": 3, "max_turns": 4})
    assert again.cached and again.key == result.key


def test_max_turns_scores_the_first_pairs_only(tmp_path, tiny_model_dir):
    pool = _pool(tmp_path / "pool")
    full = read_scores(compute_scores(pool, "deita-complexity", {"model": str(tiny_model_dir)}).path)[1]
    first = read_scores(compute_scores(pool, "deita-complexity", {"model": str(tiny_model_dir), "max_turns": 1}).path)[1]
    assert first["complexity_turns"].shape == (4, 1)
    np.testing.assert_allclose(first["complexity_turns"][:, 0], full["complexity_turns"][:, 0], atol=2e-5)
    assert first["complexity"][2] < full["complexity"][2]  # the conversation lost two turns' scores


def test_long_prompts_are_cut_inside_the_fields(tiny_model):
    _, tokenizer = tiny_model
    scorer = DeitaQualityScorer(model="unused", max_length=64)
    ids = scorer.encode(tokenizer, {"instruction": "why " * 200, "output": "because " * 300})
    assert len(ids) <= 64
    text = tokenizer.decode(ids)
    assert text.endswith(" \n##Quality: ") and "#Response#:\n" in text and "why why" in text
    with pytest.raises(InputError) as info:
        DeitaQualityScorer(model="unused", max_length=16).encode(tokenizer, {"instruction": "a", "output": "b"})
    assert info.value.field == "max_length"


def test_score_tokens_are_the_digit_entries(tiny_model):
    _, tokenizer = tiny_model
    assert score_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids(str(k)) for k in range(1, 7)]


def test_the_key_follows_model_and_options(tmp_path, tiny_model_dir):
    from selbench.assets.tiny import build_tiny_model

    pool = _pool(tmp_path / "pool")
    other = tmp_path / "other-model"
    build_tiny_model(other, seed=1)
    base = {"model": str(tiny_model_dir)}
    keys = {ScoreStep.make(pool, "deita-quality", {**base, **change}).key() for change in (
        {}, {"model": str(other)}, {"max_turns": 2}, {"max_length": 512}, {"dtype": "bfloat16"})}
    assert len(keys) == 5
    assert ScoreStep.make(pool, "deita-complexity", base).key() not in keys
    # speed-only options keep the key: the same scores are reused
    assert ScoreStep.make(pool, "deita-quality", {**base, "batch_size": 1}).key() in keys


@pytest.mark.parametrize("options, field", [({"max_turns": 0}, "max_turns"), ({"batch_size": 0}, "batch_size"),
                                            ({"dtype": "int8"}, "dtype"), ({"device": "tpu"}, "device")])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(InputError) as info:
        SCORERS.get("deita-quality")(**options)
    assert info.value.field == field


def test_official_scorers_are_the_defaults():
    assert DeitaComplexityScorer().model_spec == "hf://hkust-nlp/deita-complexity-scorer"
    assert DeitaQualityScorer().model_spec == "hf://hkust-nlp/deita-quality-scorer"


@pytest.mark.slow
def test_smollm2_stands_in(tmp_path):
    result = compute_scores(_pool(tmp_path / "pool"), "deita-quality", {"model": "smollm2-135m-instruct", "max_turns": 2})
    _, columns = read_scores(result.path)
    first = columns["quality_turns"][:, 0]
    assert np.isfinite(first).all() and ((first >= 1) & (first <= 6)).all()
    assert np.isnan(columns["quality_turns"][0, 1]) and np.isfinite(columns["quality_turns"][2, 1])
